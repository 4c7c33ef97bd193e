"""Who entered and who left a segment, worked out in SQL (set-based, never pulled into Python).

`email_sync.segment_membership` holds each member's entered / exited times. The diff runs inside
the caller's decision transaction and leaves `_entered` / `_exited` temp tables (dropped on
commit) for the ledger and guardrails to join against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from email_sync.errors import SegmentMissing
from email_sync.hashing import hash_key
from email_sync.specs import SegmentSpec

REQUIRED_COLUMNS = ("member_key", "developer_id", "email", "marketing_opt_in")
WORK_MEM = "256MB"


def segment_columns(conn: sa.Connection, spec: SegmentSpec) -> dict[str, str]:
    """Column name -> PostgreSQL data type of the segment table."""
    return dict(
        conn.execute(
            sa.text(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = :schema and table_name = :table"
            ),
            {"schema": spec.schema, "table": spec.table},
        ).all()
    )


def require_segment_table(conn: sa.Connection, spec: SegmentSpec) -> None:
    """One line instead of a SQL error when dbt has not built the segment table yet."""
    exists = conn.execute(
        sa.text("select to_regclass(:rel) is not null"), {"rel": spec.relation}
    ).scalar_one()
    if not exists:
        raise SegmentMissing(
            f"segment table {spec.schema}.{spec.table} not found: run `onramp build` first"
        )


def check_segment_table(conn: sa.Connection, spec: SegmentSpec) -> None:
    """One line instead of a SQL error when the table is missing or breaks the contract."""
    require_segment_table(conn, spec)
    present = segment_columns(conn, spec)
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        raise SegmentMissing(
            f"segment table {spec.schema}.{spec.table} lacks column(s) {', '.join(missing)} "
            "(every seg_ table needs member_key, developer_id, email, marketing_opt_in)"
        )


@dataclass(frozen=True)
class Diff:
    """How a segment's membership changed since its last sync."""

    members: int
    entered: int
    exited: int
    first_sync: bool
    sample_member_hashes: list[str]

    @property
    def previous_active(self) -> int:
        return self.members - self.entered + self.exited


def diff_membership(conn: sa.Connection, spec: SegmentSpec) -> Diff:
    """Fill the `_entered` / `_exited` temp tables and count them (inside the caller's tx)."""
    rel = spec.relation
    params = {"seg": spec.name}
    # The anti-joins hash a whole segment; the 4 MB default makes a million keys spill to
    # disk. This transaction only, so the server's setting stays as the operator left it.
    conn.execute(sa.text(f"set local work_mem = '{WORK_MEM}'"))
    # A row without an address is no member to email_sync: an API caller the warehouse knows only
    # from its events (no developer record yet) stays in the segment table for BI, and enters
    # here, with its first email, once a record with an address arrives.
    members = conn.execute(
        sa.text(f"select count(*) from {rel} where email is not null")
    ).scalar_one()
    first_sync = not conn.execute(
        sa.text("select exists (select 1 from email_sync.segment_membership where segment = :seg)"),
        params,
    ).scalar_one()
    # One pass over both sides: a full join of the segment with the active membership keeps
    # only the unmatched rows, i.e. who entered and who exited.
    conn.execute(
        sa.text(
            f"""
            create temp table _diff on commit drop as
            select coalesce(s.member_key, m.member_key) as member_key,
                   s.developer_id, s.email, m.member_key is null as entered
            from (select member_key, developer_id, email from {rel} where email is not null) as s
            full join (
                select member_key from email_sync.segment_membership
                where segment = :seg and exited_at is null
            ) as m on m.member_key = s.member_key
            where s.member_key is null or m.member_key is null
            """
        ),
        params,
    )
    conn.execute(
        sa.text(
            "create temp table _entered on commit drop as "
            "select member_key, developer_id, email from _diff where entered"
        )
    )
    conn.execute(
        sa.text(
            "create temp table _exited on commit drop as "
            "select member_key from _diff where not entered"
        )
    )
    conn.execute(sa.text("analyze _entered"))  # temp tables have no statistics otherwise
    conn.execute(sa.text("analyze _exited"))
    sample = (
        conn.execute(sa.text("select member_key from _entered order by member_key limit 5"))
        .scalars()
        .all()
    )
    return Diff(
        members=members,
        entered=conn.execute(sa.text("select count(*) from _entered")).scalar_one(),
        exited=conn.execute(sa.text("select count(*) from _exited")).scalar_one(),
        first_sync=first_sync,
        sample_member_hashes=[hash_key(k) for k in sample],
    )


def write_membership(conn: sa.Connection, spec: SegmentSpec, as_of: date, clock: datetime) -> None:
    """Apply the diff: entries (re-entries count up `entry_count`) and exits. With a list, the
    address is kept and `list_status` queues the change for the list mirror."""
    params = {"seg": spec.name, "as_of": as_of, "now": clock}
    conn.execute(
        sa.text(
            """
            insert into email_sync.segment_membership as m (
                segment, member_key, developer_id, email, entered_at, entered_as_of,
                entry_count, list_status
            )
            select :seg, e.member_key, e.developer_id,
                   case when :has_list then lower(btrim(e.email)) end,
                   :now, :as_of, 1,
                   case when :has_list then 'pending_add' end
            from _entered as e
            on conflict (segment, member_key) do update set
                developer_id = excluded.developer_id,
                email = coalesce(excluded.email, m.email),
                entered_at = excluded.entered_at,
                entered_as_of = excluded.entered_as_of,
                previous_exited_as_of = m.exited_as_of,
                exited_at = null,
                exited_as_of = null,
                entry_count = m.entry_count + 1,
                list_status = excluded.list_status
            """
        ),
        {**params, "has_list": spec.list_name is not None},
    )
    conn.execute(
        sa.text(
            """
            update email_sync.segment_membership as m set
                exited_at = :now,
                exited_as_of = :as_of,
                list_status = case when m.list_status in ('synced', 'pending_add', 'pending_import')
                                   then 'pending_remove' else m.list_status end
            from _exited as x
            where m.segment = :seg and m.member_key = x.member_key
            """
        ),
        params,
    )


def refresh_statistics(conn: sa.Connection, entered: int, exited: int, members: int) -> None:
    """After a large change (a first sync of a big segment) the planner is blind until
    autovacuum catches up; fresh statistics keep the next diff on hash joins."""
    if entered + exited > max(10_000, members // 10):
        conn.execute(sa.text("analyze email_sync.segment_membership"))
        conn.commit()
