"""The list mirror: a segment's membership copied into a provider contact list (SendGrid Marketing).

Work is queued in `segment_membership.list_status` (`pending_add` / `pending_remove`) by the diff,
so a list call that fails is simply picked up by the next run. Members without consent or with an
invalid or suppressed address are never added (`skipped`), and every run takes off the list the
current members who lost consent or became suppressed since they were added, not only those who
left the segment (`_requeue_consent_changes`); a member who gives consent again is added back.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from email_sync.errors import one_line
from email_sync.guardrails import INVALID_ADDRESS_SQL
from email_sync.membership import segment_columns
from email_sync.providers import Contact, ListOutcome, ListsUnsupported, Provider, ProviderError
from email_sync.render import EMAIL_RE
from email_sync.result import SyncResult
from email_sync.specs import SegmentSpec
from onramp.errors import OnrampError

_NUMBER_TYPES = {"smallint", "integer", "bigint", "numeric", "real", "double precision"}
_DATE_TYPES = {"date", "timestamp without time zone", "timestamp with time zone"}
_UNLISTABLE = f"""(
    not coalesce(s.marketing_opt_in, false) or {INVALID_ADDRESS_SQL.format(col="m.email")}
    or exists (select 1 from email_sync.suppressions as x where x.email = m.email)
)"""


def _skip_unlistable(conn: sa.Connection, spec: SegmentSpec) -> int:
    """Mark queued additions that must not reach the list `skipped`; SendGrid would reject the
    whole upsert request for one invalid address."""
    return conn.execute(
        sa.text(
            f"""
            update email_sync.segment_membership as m set list_status = 'skipped'
            from {spec.relation} as s
            where m.segment = :seg and m.list_status = 'pending_add' and m.exited_at is null
              and s.member_key = m.member_key and {_UNLISTABLE}
            """
        ),
        {"seg": spec.name, "email_re": EMAIL_RE},
    ).rowcount


def _requeue_consent_changes(conn: sa.Connection, spec: SegmentSpec) -> tuple[int, int]:
    """Queue removal of listed members who are no longer listable, and re-adding of skipped or
    removed current members who are listable again. Returns (to remove, to add)."""
    params = {"seg": spec.name, "email_re": EMAIL_RE}
    removing = conn.execute(
        sa.text(
            f"""
            update email_sync.segment_membership as m set list_status = 'pending_remove'
            from {spec.relation} as s
            where m.segment = :seg and m.exited_at is null and m.list_status = 'synced'
              and s.member_key = m.member_key and {_UNLISTABLE}
            """
        ),
        params,
    ).rowcount
    adding = conn.execute(
        sa.text(
            f"""
            update email_sync.segment_membership as m set list_status = 'pending_add'
            from {spec.relation} as s
            where m.segment = :seg and m.exited_at is null
              and m.list_status in ('skipped', 'removed')
              and s.member_key = m.member_key and not {_UNLISTABLE}
            """
        ),
        params,
    ).rowcount
    return removing, adding


def count_list_changes(conn: sa.Connection, spec: SegmentSpec, r: SyncResult) -> None:
    """For a dry run, inside its rolled-back transaction: what the list mirror would do."""
    _requeue_consent_changes(conn, spec)
    r.list_skipped = _skip_unlistable(conn, spec)
    r.list_added, r.list_removed = conn.execute(
        sa.text(
            "select count(*) filter (where list_status = 'pending_add' and exited_at is null), "
            "count(*) filter (where list_status = 'pending_remove') "
            "from email_sync.segment_membership where segment = :seg"
        ),
        {"seg": spec.name},
    ).one()


def _field_types(conn: sa.Connection, spec: SegmentSpec) -> dict[str, str]:
    """SendGrid field type (Text, Number, Date) of each custom field, from the column types."""
    types = segment_columns(conn, spec)
    out = {}
    for column in spec.custom_fields:
        if column not in types:
            raise OnrampError(
                f"segment {spec.name}: custom field {column!r} is not a column of {spec.table}"
            )
        data_type = types[column]
        out[column] = (
            "Number"
            if data_type in _NUMBER_TYPES
            else "Date"
            if data_type in _DATE_TYPES
            else "Text"
        )
    return out


def _field_value(value: Any) -> Any:
    """SendGrid field values: Text as str, Number as int/float, Date as MM/DD/YYYY."""
    if value is None or type(value) in (str, int, float):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):  # datetime too
        return value.strftime("%m/%d/%Y")
    if isinstance(value, Decimal):
        return float(value)
    return value


def _still_listed(conn: sa.Connection, spec: SegmentSpec, emails: list[str]) -> set[str]:
    """Those of `emails` that another current member of the segment still holds on the list
    (segments keyed by developer and feature or month share one address across members)."""
    if not emails:
        return set()
    return set(
        conn.execute(
            sa.text(
                """
                select distinct m.email
                from email_sync.segment_membership as m
                join unnest(cast(:emails as text[])) as r(email) on r.email = m.email
                where m.segment = :seg and m.exited_at is null
                  and m.list_status in ('synced', 'pending_add')
                """
            ),
            {"seg": spec.name, "emails": emails},
        ).scalars()
    )


def sync_list(conn: sa.Connection, spec: SegmentSpec, provider: Provider, r: SyncResult) -> None:
    """Push queued additions and removals to the provider's list. Rows the provider did not
    confirm stay pending for the next run."""
    with conn.begin():
        _requeue_consent_changes(conn, spec)
        r.list_skipped = _skip_unlistable(conn, spec)
        field_types = _field_types(conn, spec)
        columns = ", ".join(f's."{c}"' for c in spec.custom_fields)
        adds = conn.execute(
            sa.text(
                f"""
                select m.member_key, m.email, s.name{", " + columns if columns else ""}
                from email_sync.segment_membership as m
                join {spec.relation} as s on s.member_key = m.member_key
                where m.segment = :seg and m.list_status = 'pending_add' and m.exited_at is null
                """
            ),
            {"seg": spec.name},
        ).all()
        removes = conn.execute(
            sa.text(
                "select member_key, email from email_sync.segment_membership "
                "where segment = :seg and list_status = 'pending_remove'"
            ),
            {"seg": spec.name},
        ).all()
        contacts: dict[str, Contact] = {}
        n_fields = len(spec.custom_fields)
        for row in adds:
            name = (row.name or "").strip()
            values = row[3 : 3 + n_fields]
            fields = {c: _field_value(v) for c, v in zip(spec.custom_fields, values, strict=True)}
            contacts[row.email] = Contact(row.email, name.split()[0] if name else None, fields)
        # An address still (or again) wanted by another member is not removed from the list.
        candidates = sorted({row.email for row in removes if row.email} - set(contacts))
        wanted = _still_listed(conn, spec, candidates)
        removal_emails = [e for e in candidates if e not in wanted]
    if not adds and not removes:
        return
    try:
        outcome = (
            provider.sync_list(
                spec.list_name or spec.name, field_types, list(contacts.values()), removal_emails
            )
            if contacts or removal_emails
            else ListOutcome()  # only leavers whose address another member keeps listed
        )
    except ListsUnsupported as exc:
        r.list_pending = len(adds) + len(removes)
        r.notes.append(str(exc))
        return
    except ProviderError as exc:
        r.list_pending = len(adds) + len(removes)
        r.notes.append(f"list sync failed, retried next run: {one_line(exc)}")
        return
    # Mark done by exclusion: the usual case is "all confirmed", and a million-key array would
    # cost more than the update itself. We hold the segment lock, so nothing else moved these rows.
    add_missing = [e for e in contacts if e not in outcome.upserted]
    remove_missing = [e for e in removal_emails if e not in outcome.removed]
    with conn.begin():
        added = conn.execute(
            sa.text(
                "update email_sync.segment_membership set list_status = 'synced', "
                "list_synced_at = now() where segment = :seg and list_status = 'pending_add' "
                "and exited_at is null and email <> all(cast(:missing as text[]))"
            ),
            {"seg": spec.name, "missing": add_missing},
        ).rowcount
        removed = conn.execute(
            sa.text(
                "update email_sync.segment_membership set list_status = 'removed', "
                "list_synced_at = now() where segment = :seg and list_status = 'pending_remove' "
                "and (email is null or email <> all(cast(:missing as text[])))"
            ),
            {"seg": spec.name, "missing": remove_missing},
        ).rowcount
    r.list_added = len(outcome.upserted)
    r.list_removed = len(outcome.removed)
    r.list_pending = len(adds) + len(removes) - added - removed
    if outcome.failed:
        r.notes.append(f"{len(outcome.failed)} list contact(s) failed, retried next run")
