{# Developer x month: month-to-date events at or above var quota_warning_share (80%) and at most 100% of the monthly quota. #}
{% call quota_segment() %}
    quota.month_to_date_events >= {{ var('quota_warning_share') }} * quota.monthly_quota
    and quota.month_to_date_events <= quota.monthly_quota
{% endcall %}
