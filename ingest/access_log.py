"""Apache / NGINX combined access logs: one event per request line."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ingest.copy_encoding import Reject, fromiso
from ingest.event_rows import EVENT_COPY_COLUMNS, event_line
from ingest.sources import RejectFn, Source
from onramp.redaction import SECRET_QUERY_PARAMS, hash_api_key, strip_secret_params

COMBINED = re.compile(
    r'(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+|"[^"]*") \[(?P<time>[^\]]+)\] '
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\S+) (?P<bytes>\S+)'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?(?P<rest>.*)\Z'
)
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    )
}
_CLF_TIME = re.compile(
    r"(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))? ([+-])(\d\d)(\d\d)\Z"
)
_REST_KV = re.compile(r'([A-Za-z_][\w.-]*)[=:]\s*("(?:[^"\\]|\\.)*"|\S+)')
_REST_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*\Z")
_LATENCY_KEYS = ("request_time", "rt", "upstream_response_time", "urt", "duration")


class RepeatNumbers:
    """Numbers identical lines of one file 1, 2, 3... wherever they are, in bounded memory.

    A log line has no id, and identical lines are distinct calls (two requests in one second),
    so a line's number goes into its event id. The number depends only on the lines before it:
    a reload, or a grown copy of the file, gives every line the id it had. An exact count of
    every distinct line would grow with the file; instead a fixed Bloom filter remembers which
    lines were seen, and only lines it reports as seen get an exact counter. A false positive
    numbers a first occurrence 2 instead of 1: still distinct, still the same on every reload
    (the filter's size is fixed for that reason).
    """

    BITS = 1 << 27  # 16 MiB; about 1% false positives at ten million lines

    def __init__(self) -> None:
        self.filter = bytearray(self.BITS >> 3)
        self.counts: dict[bytes, int] = {}

    def number(self, line: str) -> int:
        digest = hashlib.blake2b(line.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        bits = self.filter
        seen = True
        for i in (0, 4, 8):
            index = int.from_bytes(digest[i : i + 4], "little") & (self.BITS - 1)
            byte, mask = index >> 3, 1 << (index & 7)
            if not bits[byte] & mask:
                bits[byte] |= mask
                seen = False
        if not seen:
            return 1
        count = self.counts.get(digest, 1) + 1
        self.counts[digest] = count
        return count


def _clf_time(text: str) -> str:
    """`10/Oct/2000:13:55:36 -0700` -> ISO 8601 with offset."""
    match = _CLF_TIME.match(text)
    if not match or match.group(2) not in _MONTHS:
        raise Reject("unparsable timestamp")
    day, mon, year, hh, mm, ss, frac, sign, oh, om = match.groups()
    iso = f"{year}-{_MONTHS[mon]:02d}-{day}T{hh}:{mm}:{ss}"
    if frac:
        iso += f".{frac}"
    iso += f"{sign}{oh}:{om}"
    try:
        fromiso(iso)
    except ValueError:
        raise Reject("unparsable timestamp") from None
    return iso


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _norm_key(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    return key[5:] if key.startswith("http_") else key


def validate_caller(caller: str | None) -> str | None:
    """Check a --caller rule early so a typo is one clear error, not a file of rejects."""
    if caller in (None, "", "auto"):
        return None
    if caller in ("remote-user", "ip"):
        return caller
    for prefix in ("query:", "header:"):
        if caller.startswith(prefix) and caller[len(prefix) :].strip():
            return caller
    raise ValueError(
        f"unknown --caller {caller!r}: use remote-user, ip, query:PARAM or header:NAME"
    )


def parse_combined_events(
    source: Source, reject: RejectFn, batch: str, caller: str | None = None
) -> Iterator[str]:
    """Access-log lines -> events. The caller rule picks developer_id (see docs/raw-formats.md)."""
    caller = validate_caller(caller)
    yield EVENT_COPY_COLUMNS
    repeats = RepeatNumbers()
    for lineno, line in source.lines():
        if not line.strip():
            continue
        match = COMBINED.match(line)
        if match is None:
            reject(lineno, "unparsable log line", line)
            continue
        try:
            ts = _clf_time(match.group("time"))
            request = match.group("request")
            pieces = request.split(" ")
            if len(pieces) == 3 and pieces[2].startswith("HTTP/"):
                method, path = pieces[0], pieces[1]
            elif len(pieces) == 2 and pieces[0].isalpha():
                method, path = pieces[0], pieces[1]
            else:
                raise Reject("unparsable log line")
            query = parse_qs(urlsplit(path).query) if "?" in path else {}
            user = _unquote(match.group("user"))
            user = None if user in ("-", "") else user
            ip = match.group("ip")
            agent = match.group("agent")
            referer = match.group("referer")
            rest = match.group("rest") or ""
            kv = {_norm_key(k): _unquote(v) for k, v in _REST_KV.findall(rest)} if rest else {}
            developer = _caller(caller, user, ip, query, kv, agent, referer)
            latency = None
            for key in _LATENCY_KEYS:
                if key in kv:
                    latency = kv[key]
                    break
            else:
                bare = _REST_NUMBER.match(rest) if rest else None
                if bare:
                    latency = bare.group(1)
            if latency not in (None, "", "-"):
                try:
                    latency = float(str(latency).split(",")[0]) * 1000.0
                except ValueError:
                    raise Reject("bad latency_ms") from None
            else:
                latency = None
            size = match.group("bytes")
            # An API key in the query string is a secret: stored hashed, never in `path`.
            api_key = hash_api_key(
                next((query[k][0] for k in SECRET_QUERY_PARAMS if query.get(k)), None)
            )
            values = [
                None,
                ts,
                developer,
                None,
                method,
                strip_secret_params(path),
                match.group("status"),
                latency,
                None,
                None if size == "-" else size,  # %b is the response size
                kv.get("environment") or kv.get("env"),
                api_key,
                None if agent in (None, "-") else agent,
                ip,
            ]
            extras: dict[str, Any] = {}
            if referer and referer != "-":
                extras["referer"] = strip_secret_params(referer)
            if rest.strip():
                extras["log_rest"] = rest.strip()
            yield event_line(values, extras or None, True, batch, repeats.number(line))
        except Reject as exc:
            reject(lineno, exc.reason, line)


def _caller(
    rule: str | None,
    user: str | None,
    ip: str,
    query: dict[str, list[str]],
    kv: dict[str, str],
    agent: str | None,
    referer: str | None,
) -> str | None:
    if rule is None:
        return user or (query.get("api_key") or [None])[0] or (ip if ip != "-" else None)
    if rule == "remote-user":
        return user
    if rule == "ip":
        return ip if ip != "-" else None
    if rule.startswith("query:"):
        return (query.get(rule[6:]) or [None])[0] or None
    name = _norm_key(rule[7:])
    if name == "user_agent":
        return None if agent in (None, "-") else agent
    if name in ("referer", "referrer"):
        return None if referer in (None, "-") else referer
    value = kv.get(name)
    return None if value in (None, "-", "") else value
