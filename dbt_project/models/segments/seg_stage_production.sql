{# Developers whose funnel stage on the as-of day is production: the stage_segment macro. #}
{{ stage_segment('production') }}
