"""The list mirror: a segment's membership copied into a provider contact list (SendGrid Marketing).

Work is queued in `segment_membership.list_status` (`pending_add` / `pending_remove`) by the diff,
so a list call that fails is simply picked up by the next run. Members without consent or with an
invalid or suppressed address are never added (`skipped`), and every run takes off the list the
current members who lost consent or became suppressed since they were added, not only those who
left the segment (`_requeue_consent_changes`); a member who gives consent again is added back.

A contact upsert is an asynchronous import job. The run waits for it only briefly
(ONRAMP_IMPORT_WAIT_S); a job still running is recorded in `email_sync.contact_imports` with its
members `pending_import`, and a later run confirms it (`_confirm_imports`): completed -> synced,
errored/failed -> back to `pending_add` with the reason, at most MAX_IMPORT_ATTEMPTS times.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from email_sync.errors import one_line
from email_sync.guardrails import INVALID_ADDRESS_SQL
from email_sync.membership import segment_columns
from email_sync.providers import (
    Contact,
    ImportJob,
    ListOutcome,
    ListsUnsupported,
    Provider,
    ProviderError,
)
from email_sync.render import EMAIL_RE
from email_sync.result import SyncResult
from email_sync.specs import SegmentSpec
from onramp.errors import OnrampError

# Failed or errored import jobs an address may have in a segment before it is left
# `import_failed`, and how long a job may stay pending before it is treated as lost.
MAX_IMPORT_ATTEMPTS = 3
IMPORT_ABANDON_AFTER = "1 day"
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
                  and m.list_status in ('synced', 'pending_add', 'pending_import')
                """
            ),
            {"seg": spec.name, "emails": emails},
        ).scalars()
    )


def _settle_import(conn: sa.Connection, spec: SegmentSpec, job: ImportJob) -> int:
    """Record a finished import job and move its `pending_import` members on: confirmed ones to
    `synced`, failed ones back to `pending_add` (or `import_failed` once they used up their
    attempts). Returns how many members were confirmed."""
    conn.execute(
        sa.text(
            "update email_sync.contact_imports set status = :status, reason = :reason, "
            "confirmed_at = now() where job_id = :job"
        ),
        {"job": job.job_id, "status": job.status, "reason": job.reason},
    )
    failed = sorted(job.failed)
    confirmed = conn.execute(
        sa.text(
            "update email_sync.segment_membership set list_status = 'synced', "
            "list_synced_at = now() where segment = :seg and list_status = 'pending_import' "
            "and email = any(cast(:emails as text[])) and email <> all(cast(:failed as text[]))"
        ),
        {"seg": spec.name, "emails": job.emails, "failed": failed},
    ).rowcount
    if failed:
        conn.execute(
            sa.text(
                """
                update email_sync.segment_membership as m set list_status = case
                    when (select count(*) from email_sync.contact_imports as j
                          where j.segment = m.segment and j.status in ('errored', 'failed',
                                'abandoned') and m.email = any(j.emails)) >= :max
                    then 'import_failed' else 'pending_add' end
                where m.segment = :seg and m.list_status = 'pending_import'
                  and m.email = any(cast(:failed as text[]))
                """
            ),
            {"seg": spec.name, "failed": failed, "max": MAX_IMPORT_ATTEMPTS},
        )
    return confirmed


def _confirm_imports(
    conn: sa.Connection, spec: SegmentSpec, provider: Provider, r: SyncResult
) -> int:
    """Ask the provider about the import jobs earlier runs left pending. Returns how many members
    they confirmed; a job still running stays pending for the next run."""
    with conn.begin():
        rows = conn.execute(
            sa.text(
                "select job_id, emails, requested_at < now() - cast(:abandon as interval) as lost "
                "from email_sync.contact_imports where segment = :seg and status = 'pending' "
                "order by requested_at"
            ),
            {"seg": spec.name, "abandon": IMPORT_ABANDON_AFTER},
        ).all()
    confirmed = 0
    for row in rows:
        job = ImportJob(row.job_id, list(row.emails))
        try:
            provider.check_import(job)
        except (ListsUnsupported, ProviderError) as exc:
            r.notes.append(
                f"import job {row.job_id} not confirmed, retried next run: {one_line(exc)}"
            )
            continue
        if job.status == "pending":
            if not row.lost:
                continue
            job.status, job.reason = "abandoned", "import job never finished"
            job.failed = {e: job.reason for e in job.emails}
        with conn.begin():
            confirmed += _settle_import(conn, spec, job)
    return confirmed


def _record_imports(conn: sa.Connection, spec: SegmentSpec, jobs: list[ImportJob]) -> None:
    """Record this run's import jobs; members of one still running become `pending_import`."""
    for job in jobs:
        conn.execute(
            sa.text(
                "insert into email_sync.contact_imports (job_id, segment, emails, status, reason, "
                "confirmed_at) values (:job, :seg, :emails, :status, :reason, "
                "case when cast(:status as text) <> 'pending' then now() end) "
                "on conflict (job_id) do nothing"
            ),
            {
                "job": job.job_id,
                "seg": spec.name,
                "emails": job.emails,
                "status": job.status,
                "reason": job.reason,
            },
        )
        if job.status == "pending":
            conn.execute(
                sa.text(
                    "update email_sync.segment_membership set list_status = 'pending_import' "
                    "where segment = :seg and list_status = 'pending_add' and exited_at is null "
                    "and email = any(cast(:emails as text[]))"
                ),
                {"seg": spec.name, "emails": job.emails},
            )
        elif job.failed:
            # Count this failure towards the bound: members still pending_add are retried.
            conn.execute(
                sa.text(
                    """
                    update email_sync.segment_membership as m set list_status = 'import_failed'
                    where m.segment = :seg and m.list_status = 'pending_add'
                      and m.email = any(cast(:failed as text[]))
                      and (select count(*) from email_sync.contact_imports as j
                           where j.segment = m.segment and j.status in ('errored', 'failed',
                                 'abandoned') and m.email = any(j.emails)) >= :max
                    """
                ),
                {"seg": spec.name, "failed": sorted(job.failed), "max": MAX_IMPORT_ATTEMPTS},
            )


def sync_list(conn: sa.Connection, spec: SegmentSpec, provider: Provider, r: SyncResult) -> None:
    """Push queued additions and removals to the provider's list. Rows the provider did not
    confirm stay pending for the next run; import jobs still running after the short wait are
    confirmed by a later run."""
    confirmed = _confirm_imports(conn, spec, provider, r)
    r.list_added = confirmed
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
        _record_imports(conn, spec, outcome.jobs)
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
    r.list_added = confirmed + len(outcome.upserted)
    r.list_removed = len(outcome.removed)
    r.list_pending = len(adds) + len(removes) - added - removed
    if outcome.failed:
        r.notes.append(f"{len(outcome.failed)} list contact(s) failed, retried next run")
    waiting = sum(len(j.emails) for j in outcome.jobs if j.status == "pending")
    if waiting:
        r.notes.append(
            f"{waiting} list contact(s) in a SendGrid import job still running, confirmed next run"
        )
