"""With the Spark warehouse, copy the tables a sync reads from Spark into the state PostgreSQL.

email_sync's correctness lives in PostgreSQL: the diff, the ledger, every guardrail and the list
mirror are set-based SQL joining the segment table to `email_sync.*` in one transaction. Rather
than teach each of those statements a second engine, the sync reads the Spark-built relations it
joins (each synced segment's `seg_*` table and the goal segments its campaigns end on) into the
state database under the same schema and table names first; every statement then runs unchanged,
so exactly-once and the guardrails hold as they do on PostgreSQL.

How a table crosses (in bounded memory, swapped in one transaction, skipped when unchanged) is
`onramp.spark_copy`; here a synced segment's table is swapped under that segment's sync lock, so
it never changes under a running sync of the same segment.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from email_sync.errors import SegmentBusy
from email_sync.segment_lock import segment_lock
from email_sync.specs import SegmentSpec
from onramp.errors import OnrampError
from onramp.settings import Settings
from onramp.spark_copy import SparkCopyError, copy_table, is_current

log = logging.getLogger(__name__)

_QUOTED = re.compile(r'^"([A-Za-z_][A-Za-z0-9_]*)"\."([A-Za-z_][A-Za-z0-9_]*)"$')


class MirrorError(OnrampError):
    """A segment's relations cannot be told or copied; the previous copy stands."""


@dataclass(frozen=True)
class Relation:
    """One Spark table the sync reads; `segment` names the synced segment that owns it, if any."""

    schema: str
    table: str
    segment: str | None = None

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass
class MirrorResult:
    """What one mirror pass copied: tables, rows and seconds, and what it could not."""

    tables: dict[str, int] = field(default_factory=dict)  # schema.table -> rows copied
    unchanged: list[str] = field(default_factory=list)  # same Spark files as the copy: not read
    missing: list[str] = field(default_factory=list)  # not on Spark: the stale copy was dropped
    busy: list[str] = field(default_factory=list)  # segments a running sync holds: left as they are
    failed: dict[str, str] = field(default_factory=dict)  # schema.table -> why (old copy stands)
    seconds: float = 0.0

    def unusable(self, specs: Iterable[SegmentSpec]) -> dict[str, str]:
        """Segment name -> why it must not sync now: its table, or its campaign's goal table,
        failed to copy (syncing would decide on yesterday's members)."""
        out = {}
        for spec in specs:
            for rel in relations_for([spec]):
                if rel.name in self.failed:
                    out.setdefault(spec.name, self.failed[rel.name])
        return out

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def describe(self) -> str:
        """The one progress line `onramp sync` prints."""
        line = (
            f"read {self.rows:,} segment rows from Spark in {self.seconds:.1f} s "
            f"({len(self.tables)} table{'s' if len(self.tables) != 1 else ''})"
        )
        if self.unchanged:
            line += f"; unchanged since the last copy: {', '.join(self.unchanged)}"
        if self.missing:
            line += f"; not on Spark: {', '.join(self.missing)}"
        if self.busy:
            line += f"; being synced, not refreshed: {', '.join(self.busy)}"
        if self.failed:
            line += f"; failed: {', '.join(self.failed)}"
        return line


def relations_for(specs: Iterable[SegmentSpec]) -> list[Relation]:
    """Every warehouse relation a sync of `specs` reads: each segment's table (diff, guardrails,
    list mirror, notifications, preview) and each campaign's goal segment (sequences)."""
    found: dict[tuple[str, str], Relation] = {}
    specs = list(specs)
    for spec in specs:
        table = spec.table or f"seg_{spec.name}"
        found[(spec.schema, table)] = Relation(spec.schema, table, spec.name)
    for spec in specs:
        goal = spec.sequence.goal_relation if spec.sequence else None
        if goal:
            match = _QUOTED.match(goal)
            if match is None:  # specs only ever build `"schema"."table"` from checked names
                raise MirrorError(f"segment {spec.name}: unexpected goal relation {goal}")
            found.setdefault((match[1], match[2]), Relation(match[1], match[2]))
    return list(found.values())


def mirror_for_sync(
    engine: sa.Engine,
    settings: Settings,
    specs: Iterable[SegmentSpec],
    *,
    wait: bool = False,
    spark: Any = None,
) -> MirrorResult:
    """Copy what a sync of `specs` reads from Spark into the state database (see the module
    docstring). A segment whose sync is running elsewhere is left as it is (its own sync then
    says it is busy, or, with `wait`, the copy waits for it)."""
    if spark is None:
        from onramp.spark import spark_session

        spark = spark_session(settings)
    result = MirrorResult()
    started = time.perf_counter()
    for rel in relations_for(specs):
        if is_current(engine, spark, rel.schema, rel.table):
            result.unchanged.append(rel.name)
            continue
        try:
            rows = mirror_relation(engine, spark, rel, wait=wait)
        except SegmentBusy:
            result.busy.append(rel.segment or rel.name)
            continue
        except (MirrorError, SparkCopyError) as exc:  # one table's failure does not stop the others
            log.error("%s", exc)
            result.failed[rel.name] = str(exc)
            continue
        if rows is None:
            result.missing.append(rel.name)
        else:
            result.tables[rel.name] = rows
    result.seconds = time.perf_counter() - started
    log.info("%s", result.describe())
    return result


def mirror_relation(
    engine: sa.Engine, spark: Any, rel: Relation, *, wait: bool = False
) -> int | None:
    """Replace the state database's copy of `rel` with Spark's table in one transaction; the
    number of rows, or None when Spark has no such table (then the stale copy is dropped, so the
    sync says the segment is missing instead of reading yesterday's members)."""
    with engine.connect() as conn:
        if rel.segment is None:
            return copy_table(conn, spark, rel.schema, rel.table)
        with segment_lock(conn, rel.segment, wait):
            return copy_table(conn, spark, rel.schema, rel.table)
