{# Developers whose funnel stage on the as-of day is sandbox: the stage_segment macro. #}
{{ stage_segment('sandbox') }}
