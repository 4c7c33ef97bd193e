"""Writing the sample files: events in four formats, reference data, truth and the manifest.

`FileWriters` is mixed into the generator; it reads the generator's developers, events and
evaluator and writes them out, streamed one day of traffic at a time.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import re
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path

from sample_data.archetypes import Developer
from sample_data.catalog import (
    API_HOST,
    COMPACT_JSON,
    DEVELOPER_COLUMNS,
    DOCS,
    MONTHS,
    ROUTES,
    TEMPLATES,
    csv_field,
)
from sample_data.reference import SEGMENTS
from sample_data.timestamps import iso_ms, offset_str


class FileWriters:
    """Record formats and file writers (a mixin of the generator)."""

    @staticmethod
    def _context(e: tuple) -> tuple[str, str, str]:
        """Environment, API key and client IP of an event (derived, so no random draws)."""
        dev = e[1]
        ip = dev.ips[len(e[4]) % len(dev.ips)]
        return (
            ("production", dev.keys[1], ip) if e[0] >= dev.prod_ts else ("sandbox", dev.keys[0], ip)
        )

    def _jsonl(self, e: tuple, zone: str = "Z") -> str:
        ts, dev, _, method, path, status, _, lat, rq, rs, eid = e
        env, key, ip = self._context(e)
        extra = f',"region":"{dev.region}"' if dev.region else ""
        return (
            f'{{"event_id":"{eid}","occurred_at":"{iso_ms(ts, zone)}",'
            f'"developer_id":"{dev.developer_id}","company_id":"{dev.company_id}",'
            f'"method":"{method}","path":"{path}","status_code":{status},"latency_ms":{lat},'
            f'"request_bytes":{rq},"response_bytes":{rs},"environment":"{env}",'
            f'"api_key_id":"{key}","user_agent":"{dev.ua}","ip":"{ip}"{extra}}}\n'
        )

    def _csv(self, e: tuple, with_id: bool) -> str:
        ts, dev, _, method, path, status, _, lat, rq, rs, eid = e
        env, key, ip = self._context(e)
        fields = (eid if with_id else "", iso_ms(ts, ""), dev.developer_id, dev.company_id, method,
                  path, str(status), str(lat), str(rq), str(rs), env, key, dev.ua, ip,
                  dev.region or "")  # fmt: skip
        return ",".join(csv_field(f) for f in fields) + "\n"

    def _moesif(self, e: tuple) -> str:
        ts, dev, _, method, path, status, _, lat, rq, rs, eid = e
        env, key, ip = self._context(e)
        rng = self.rng
        obj = {
            "request": {
                "time": iso_ms(ts),
                "uri": API_HOST + path,
                "verb": method,
                "headers": {
                    "Host": API_HOST.removeprefix("https://"),
                    "User-Agent": dev.ua,
                    "Accept": "application/json",
                    **(
                        {"Content-Type": "application/json", "Content-Length": str(rq)}
                        if rq
                        else {}
                    ),
                },
                "ip_address": ip,
                "api_version": "2024-06-01",
            },
            "response": {
                "time": iso_ms(ts + lat),
                "status": status,
                "headers": {"Content-Type": "application/json", "Content-Length": str(rs)},
            },
            "user_id": dev.developer_id,
            "company_id": dev.company_id,
            "session_token": f"{key}.{rng.getrandbits(32):08x}",
            "transaction_id": eid,
            "direction": "Incoming",
            "metadata": {"environment": env, "api_key_id": key},
        }
        return COMPACT_JSON.encode(obj)

    def _access(self, e: tuple) -> str:
        ts, dev, _, method, path, status, _, lat, rq, rs, eid = e
        env, key, ip = self._context(e)
        dt = datetime.fromtimestamp(ts // 1000, UTC)
        stamp = f"{dt.day:02d}/{MONTHS[dt.month - 1]}/{dt:%Y:%H:%M:%S} +0000"
        user = dev.developer_id
        if int(eid[-4:], 16) % 20 == 0:  # no remote user: the caller is the api_key parameter
            user = "-"
            path += ("&" if "?" in path else "?") + f"api_key={dev.developer_id}"
        size = str(rs) if rs else "-"
        return (
            f'{ip} - {user} [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "-" "{dev.ua}"\n'
        )

    def _write_events(self) -> None:
        """Generate, sort and write one day at a time; late and duplicate records are held back
        in `deferred` (a few per day) and written with a later day."""
        with contextlib.ExitStack() as stack:

            def text(name: str) -> io.TextIOWrapper:
                return stack.enter_context(open(self.out / name, "w", encoding="utf-8", newline=""))

            gz_raw = stack.enter_context(open(self.out / "api_events.jsonl.gz", "wb"))
            gz = stack.enter_context(
                gzip.GzipFile(filename="api_events.jsonl", mode="wb", fileobj=gz_raw, mtime=0,
                              compresslevel=3)
            )  # fmt: skip
            jsonl = stack.enter_context(io.TextIOWrapper(gz, encoding="utf-8", newline="\n"))
            csv_f, moesif_f, access_f = (
                text("api_events.csv"), text("moesif_events.json"), text("access.log")
            )  # fmt: skip
            self._stream_events(jsonl, csv_f, moesif_f, access_f)

    def _stream_events(
        self,
        jsonl: io.TextIOWrapper,
        csv_f: io.TextIOWrapper,
        moesif_f: io.TextIOWrapper,
        access_f: io.TextIOWrapper,
    ) -> None:
        rng = self.rng
        csv_f.write(
            "event_id,occurred_at,developer_id,company_id,method,path,status_code,latency_ms,"
            "request_bytes,response_bytes,environment,api_key_id,user_agent,ip,region\n"
        )
        moesif_f.write("[\n")
        moesif_first = True
        deferred: dict[int, list[tuple[str, str]]] = {}
        for off in range(self.first_off, 2):
            batch: list[tuple] = []
            for dev in self.devs:
                plan = dev.days.get(off)
                if plan is not None:
                    batch.extend(self._day_events(dev, off, plan))
            batch.sort(key=itemgetter(0))
            lines: dict[str, list[str]] = {"jsonl": [], "csv": [], "moesif": [], "access": []}
            access_seen: set[str] = set()
            add = self.evaluator.add
            rand = rng.random
            for e in batch:
                ts, dev, r, _m, _p, status, sink, *_ = e
                if off <= 0:
                    add(dev.developer_id, ts, TEMPLATES[r], status)
                else:
                    self.after_as_of += 1
                x = rand()
                line = ""
                if sink == "access":
                    line = self._access(e)
                    if line in access_seen:  # identical line = same derived event_id
                        sink, line = "jsonl", ""
                    access_seen.add(line)
                if sink == "jsonl" or sink == "exact":
                    sink = "jsonl"
                    zone = offset_str(dev.tz_offset) if 0.004 <= x < 0.034 else "Z"
                    line = self._jsonl(e, zone)
                elif sink == "csv":
                    line = self._csv(e, with_id=int(e[10][-2:], 16) < 205)
                elif sink == "moesif":
                    line = self._moesif(e)
                if x < 0.004 and off < 1:  # arrives one to three days late
                    self.late_out_of_order += 1
                    deferred.setdefault(off + rng.randint(1, 3), []).append((sink, line))
                else:
                    lines[sink].append(line)
                if x > 0.997:  # delivered twice: identical record, maybe a day later
                    day = off + rng.randint(0, 1)
                    # Not in an access log: an identical log line there is another call.
                    if sink != "access":
                        self.duplicates += 1
                        deferred.setdefault(day, []).append((sink, line))
                elif x > 0.9968 and sink == "jsonl":
                    self.duplicates += 1  # the same event_id again, in the CSV file
                    lines["csv"].append(self._csv(e, with_id=True))
            self.distinct_events += len(batch)
            for sink, line in deferred.pop(off, []):
                lines[sink].append(line)
            if off == 1:  # whatever is still late arrives with the last file chunk
                for key in sorted(deferred):
                    for sink, line in deferred.pop(key):
                        lines[sink].append(line)
            jsonl.write("".join(lines["jsonl"]))
            csv_f.write("".join(lines["csv"]))
            access_f.write("".join(lines["access"]))
            for obj in lines["moesif"]:
                moesif_f.write(obj if moesif_first else ",\n" + obj)
                moesif_first = False
            self.rows["api_events.jsonl.gz"] += len(lines["jsonl"])
            self.rows["api_events.csv"] += len(lines["csv"])
            self.rows["moesif_events.json"] += len(lines["moesif"])
            self.rows["access.log"] += len(lines["access"])
        moesif_f.write("\n]\n")

    def _write_reference(self) -> None:
        rows = []
        for dev in self.devs:
            if dev.earlier_row is not None:
                rows.append(self._dev_row(dev, dev.earlier_row))
        for dev in self.devs:
            rows.append(self._dev_row(dev, {}))
        with open(self.out / "developers.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(DEVELOPER_COLUMNS)
            w.writerows(rows)
        self.developer_rows = len(rows)
        with open(self.out / "endpoints.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["route", "feature_name", "promoted", "docs_url"])
            for r in ROUTES:
                if r.feature is not None:
                    slug = re.sub(r"[^a-z0-9]+", "-", r.feature.lower()).strip("-")
                    w.writerow([r.template, r.feature, "true" if r.promoted else "false",
                                f"{DOCS}/{slug}"])  # fmt: skip
        with open(self.out / "incidents.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for inc in self.incidents:
                f.write(
                    json.dumps({
                        "incident_id": inc.incident_id, "title": inc.title,
                        "started_at": iso_ms(inc.started_ms), "ended_at": iso_ms(inc.ended_ms),
                        "affected_route": inc.affected_route,
                    }) + "\n"
                )  # fmt: skip

    def _dev_row(self, dev: Developer, override: dict[str, str]) -> list[str]:
        quota = "" if dev.quota is None else str(dev.quota)
        return [
            dev.developer_id, override.get("email", dev.email), dev.name, dev.company_id,
            dev.company_name, override.get("role", dev.role), iso_ms(dev.signup_ms),
            override.get("plan", dev.plan), override.get("monthly_quota", quota), dev.tz,
            "true" if dev.opt_in else "false",
        ]  # fmt: skip

    def _write_truth(self) -> None:
        members = self.evaluator.members((d.developer_id, d.signup_ms, d.quota) for d in self.devs)
        per_dev: dict[str, list[str]] = {}
        for segment, dev_id, _ in members:
            names = per_dev.setdefault(dev_id, [])
            if segment not in names:
                names.append(segment)
        with open(self.out / "archetypes.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["developer_id", "archetype", "expected_segments"])
            for dev in self.devs:
                w.writerow(
                    [dev.developer_id, dev.archetype, " ".join(per_dev.get(dev.developer_id, []))]
                )
        with open(self.out / "expected_members.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["segment", "developer_id", "detail"])
            w.writerows(members)
        self.members = members

    def _write_manifest(self) -> Path:
        files = [
            ("developers.csv", "developers", "csv", self.developer_rows),
            ("endpoints.csv", "endpoints", "csv", sum(1 for r in ROUTES if r.feature)),
            ("incidents.jsonl", "incidents", "jsonl", len(self.incidents)),
            ("api_events.jsonl.gz", "api_events", "jsonl", self.rows["api_events.jsonl.gz"]),
            ("api_events.csv", "api_events", "csv", self.rows["api_events.csv"]),
            ("moesif_events.json", "api_events", "moesif", self.rows["moesif_events.json"]),
            ("access.log", "api_events", "combined", self.rows["access.log"]),
        ]
        counts: dict[str, int] = {name: 0 for name in SEGMENTS}
        for segment, _, _ in self.members:
            counts[segment] += 1
        manifest = {
            "as_of": self.as_of.isoformat(),
            "seed": self.seed,
            "developers": self.n,
            "days": self.days,
            "files": [
                {"path": p, "kind": k, "format": fmt, "caller": None, "rows": rows}
                for p, k, fmt, rows in files
            ],
            "truth": ["archetypes.csv", "expected_members.csv"],
            "events": {
                "distinct": self.distinct_events,
                "after_as_of": self.after_as_of,
                "duplicates": self.duplicates,
                "out_of_order": self.late_out_of_order,
                "first_day": (self.as_of - timedelta(days=self.days - 1)).isoformat(),
            },
            "expected_members": counts,
        }
        path = self.out / "manifest.json"
        path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return path
