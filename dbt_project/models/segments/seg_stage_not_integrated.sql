{# Developers whose funnel stage on the as-of day is not_integrated: the stage_segment macro. #}
{{ stage_segment('not_integrated') }}
