{# Developer x month: month-to-date events above 100% of the monthly quota (developers without a quota are never in it). #}
{% call quota_segment() %}
    quota.month_to_date_events > quota.monthly_quota
{% endcall %}
