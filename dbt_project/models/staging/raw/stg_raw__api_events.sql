{#
    A view: the usage models read it with a time filter that PostgreSQL pushes down to
    raw.api_events, so an incremental run scans only the days it rebuilds. Deduplication by
    event_id is the loader's unique index on raw.api_events (an event loaded twice is stored
    once); the `unique` test on event_id below proves it holds, without paying a sort of every
    event on every build. Events after the as-of day are filtered out by each consumer.
#}
select
    event_id,
    occurred_at,
    {{ raw_event_date() }} as occurred_date,
    developer_id,
    company_id,
    upper(method) as http_method,
    path as request_path,
    coalesce({{ normalize_route('path') }}, '(none)') as route,
    status_code,
    status_code < {{ var('success_status_below') }} as is_successful,
    latency_ms,
    request_bytes,
    response_bytes,
    environment,
    api_key_id,
    user_agent,
    batch_id
from {{ source('raw', 'api_events') }}
