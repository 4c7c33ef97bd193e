"""The change set of a pump, worked out in SQL: each pump row becomes the exact property values
HubSpot will hold (strings, formatted per type), compared with the values HubSpot last confirmed
(`crm_sync.confirmed`). Only the rows that differ leave the warehouse.

The change set is a session temp table `_crm_changes` (record_key, properties, association_key)
that the push reads in keyset batches, so a first push of a million contacts never sits in
Python memory at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from crm_sync.errors import PumpMissing
from crm_sync.specs import PropertySpec, PumpSpec

# to_char formats as bind parameters: a literal "HH24:MI" would read as bind names in sa.text
FORMATS = {"ts_fmt": 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"', "date_fmt": "YYYY-MM-DD"}


def _value_sql(prop: PropertySpec) -> str:
    """The SQL of one property value as HubSpot takes it; null becomes '' (HubSpot clears it)."""
    col = f'p."{prop.column}"'
    if prop.type == "number":
        return f"coalesce(cast(trim_scale(cast({col} as numeric)) as text), '')"
    if prop.type == "datetime":
        return (
            f"coalesce(to_char(cast({col} as timestamp with time zone) at time zone 'UTC', "
            ":ts_fmt), '')"
        )
    if prop.type == "date":
        return f"coalesce(to_char(cast({col} as date), :date_fmt), '')"
    return f"coalesce(cast({col} as text), '')"


def key_sql(spec: PumpSpec) -> str:
    """SQL for a row's record key, normalised the way HubSpot matches it."""
    col = f'p."{spec.id_column}"'
    if spec.id_property == "email":  # HubSpot matches addresses case-insensitively
        return f"lower(btrim(cast({col} as text)))"
    return f"btrim(cast({col} as text))"


def current_rows_sql(spec: PumpSpec) -> str:
    """One row per record key: the properties as they should be in HubSpot."""
    pairs = ", ".join(f"'{p.name}', {_value_sql(p)}" for p in spec.properties)
    assoc = f'cast(p."{spec.associate_column}" as text)' if spec.associate_column else "null"
    key = key_sql(spec)
    return f"""
        select distinct on (record_key) record_key, properties, association_key
        from (
            select {key} as record_key,
                   jsonb_build_object({pairs}) as properties,
                   nullif(btrim({assoc}), '') as association_key
            from {spec.relation} as p
        ) as rows
        where record_key is not null and record_key <> ''
        order by record_key
    """


def check_pump_table(conn: sa.Connection, spec: PumpSpec) -> None:
    """One line instead of a SQL error when dbt has not built the pump or a column is missing."""
    present = set(
        conn.execute(
            sa.text(
                "select column_name from information_schema.columns "
                "where table_schema = :schema and table_name = :table"
            ),
            {"schema": spec.schema, "table": spec.table},
        ).scalars()
    )
    if not present:
        raise PumpMissing(
            f"pump table {spec.schema}.{spec.table} not found: run `onramp build` first"
        )
    wanted = [spec.id_column, *(p.column for p in spec.properties)]
    if spec.associate_column:
        wanted.append(spec.associate_column)
    missing = [c for c in wanted if c not in present]
    if missing:
        raise PumpMissing(
            f"pump table {spec.schema}.{spec.table} lacks column(s) {', '.join(missing)} "
            "that its meta.onramp.crm maps"
        )


@dataclass(frozen=True)
class Diff:
    """What one pump's diff found: rows in the model, changes to send, held rejects."""

    rows: int
    changed: int
    held_rejected: int
    confirmed_before: int

    @property
    def first_push(self) -> bool:
        return self.confirmed_before == 0


def build_changes(conn: sa.Connection, spec: PumpSpec) -> Diff:
    """Fill the `_crm_changes` temp table (dropped first) and count it."""
    conn.execute(sa.text("drop table if exists _crm_changes"))
    conn.execute(sa.text("set local work_mem = '256MB'"))
    params = {"pump": spec.model, **FORMATS}
    conn.execute(
        sa.text(
            f"""
            create temp table _crm_changes as
            with current_rows as ({current_rows_sql(spec)})
            select c.record_key, c.properties, c.association_key,
                   r.record_key is not null and r.properties = c.properties as held_rejected
            from current_rows as c
            left join crm_sync.confirmed as s
                on s.pump = :pump and s.record_key = c.record_key
            left join crm_sync.rejected as r
                on r.pump = :pump and r.record_key = c.record_key
            where s.record_key is null or s.properties <> c.properties
            """
        ),
        params,
    )
    held = conn.execute(sa.text("delete from _crm_changes where held_rejected")).rowcount
    conn.execute(sa.text("create index on _crm_changes (record_key)"))
    conn.execute(sa.text("analyze _crm_changes"))
    rows = conn.execute(sa.text(f"select count(*) from {spec.relation}")).scalar_one()
    changed = conn.execute(sa.text("select count(*) from _crm_changes")).scalar_one()
    confirmed = conn.execute(
        sa.text("select count(*) from crm_sync.confirmed where pump = :pump"), params
    ).scalar_one()
    return Diff(rows=rows, changed=changed, held_rejected=held, confirmed_before=confirmed)


def sample_changes(conn: sa.Connection, spec: PumpSpec, limit: int) -> list[tuple[str, dict, dict]]:
    """(record key, new properties, confirmed properties) of the first `limit` changed records."""
    rows = conn.execute(
        sa.text(
            """
            select c.record_key, c.properties, coalesce(s.properties, '{}'::jsonb)
            from _crm_changes as c
            left join crm_sync.confirmed as s on s.pump = :pump and s.record_key = c.record_key
            order by c.record_key
            limit :n
            """
        ),
        {"pump": spec.model, "n": limit},
    ).all()
    return [(r[0], dict(r[1]), dict(r[2])) for r in rows]


def pending_associations_sql(spec: PumpSpec, dry: bool) -> str:
    """Contacts whose company differs from the one HubSpot last confirmed associating, with both
    HubSpot ids known (a dry run counts them even before the ids exist)."""
    join = "left join" if dry else "join"
    return f"""
        select cur.record_key, ct.hubspot_id as from_id, co.hubspot_id as to_id,
               cur.association_key
        from (
            select {key_sql(spec)} as record_key,
                   nullif(btrim(cast(p."{spec.associate_column}" as text)), '') as association_key
            from {spec.relation} as p
        ) as cur
        {join} crm_sync.confirmed as ct on ct.pump = :pump and ct.record_key = cur.record_key
        {join} crm_sync.confirmed as co on co.pump = :target and co.record_key = cur.association_key
        where cur.association_key is not null
          and ct.association_key is distinct from cur.association_key
          {"" if dry else "and ct.hubspot_id is not null and co.hubspot_id is not null"}
        order by cur.record_key
    """
