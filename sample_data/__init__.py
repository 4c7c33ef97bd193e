"""Deterministic sample data: developers, an endpoint catalog, incidents and API traffic.

The data exists so every later stage (loader, dbt segments, email) can be exercised and checked
without a real product behind it. Three properties matter more than realism:

* Determinism: the same (seed, as_of, sizes) gives byte-identical files, so a failing test or a
  surprising segment can be reproduced anywhere. One `random.Random(seed)` drives everything in a
  fixed order, nothing iterates a set, and the gzip header carries mtime 0.
* Coverage: developers are drawn from archetypes (never integrates, hello world only, sandbox,
  production, dormant, stopped traffic, quota, rate limited, incident, ...) plus boundary cases
  (a signup exactly at the window edge, exactly 7000 events in 7 days, exactly 20 429s, ...), so
  every segment of docs/segments.md has members, and its edges are tested, on the as-of day.
* Trustworthy truth: `archetypes.csv` and `expected_members.csv` are computed by
  `SegmentEvaluator`, a small pure-Python restatement of the funnel and segment rules of
  docs/segments.md, fed with the events exactly as written (duplicates once, late events after
  as-of ignored), not by what an archetype was meant to do.

Output is streamed: a day of traffic is generated, sorted and written before the next, so memory
is bounded by one day's volume whatever `days` is.

Files written to out_dir:

* developers.csv, endpoints.csv, incidents.jsonl: reference data (a few developers appear twice;
  the later row wins, as docs/raw-formats.md says).
* api_events.jsonl.gz (most events, canonical JSONL; ~3% of timestamps carry a non-UTC offset),
  api_events.csv (canonical CSV, timestamps without zone, some rows without event_id),
  moesif_events.json (a Moesif JSON array; the canonical event id is in `transaction_id`) and
  access.log (Apache combined; remote user = developer_id, or "-" with an `api_key` query
  parameter holding it). Each event is in exactly one file, apart from deliberate duplicates
  (identical record again, except in access.log where an identical line is another call, or a
  JSONL event repeated in the CSV with the same event_id).
* manifest.json: as_of, seed, sizes, `files` (path, kind, format, caller, rows) in load order,
  `truth`, event counts and expected member counts per segment.
* archetypes.csv (developer_id, archetype, expected_segments: space-separated, in the order of
  docs/segments.md) and expected_members.csv (segment, developer_id, detail: the promoted route
  for unused_feature, the incident_id for incident_affected, top_route for stopped_traffic, the
  month start for quota segments, the as-of date for rate_limited).

Modules: `catalog` (the sample API), `archetypes` (who does what), `generator` (the seeded run),
`writers` (the files), `reference` (the independent evaluator that computes the truth),
`timestamps`, and `commands` (`onramp generate`). This package may import the core and nothing
imports it but tests, benchmarks, the demo and the command line.
"""

from sample_data.archetypes import LATE_DAY_ARCHETYPES
from sample_data.catalog import ROUTES
from sample_data.commands import generate_command
from sample_data.generator import default_as_of, generate
from sample_data.reference import SEGMENTS, SegmentEvaluator, normalize_route

__all__ = [
    "LATE_DAY_ARCHETYPES",
    "ROUTES",
    "SEGMENTS",
    "SegmentEvaluator",
    "default_as_of",
    "generate",
    "generate_command",
    "normalize_route",
]
