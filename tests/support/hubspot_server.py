"""A local HubSpot CRM API server on 127.0.0.1 keeping HubSpot's contract for what onramp uses.

Why: crm_sync's tests and benchmark must drive the *official* ``hubspot-api-client`` over real
HTTP, so paths, bodies, status codes, the 100-input batch limit, 429s with ``Retry-After`` and
the ``X-HubSpot-RateLimit-*`` headers, and per-record errors in a 207 multi-status answer behave
like HubSpot's, without the network or a portal. Stdlib only, one lock.

Usage::

    with HubSpotServer() as hs:            # ephemeral port; the Bearer token must be hs.token
        os.environ.update(hs.env())        # HUBSPOT_ACCESS_TOKEN / HUBSPOT_API_HOST for Settings
        hs.records("contacts")             # {unique value: {"id", "properties"}} (email lowered)
        hs.property_names("contacts")      # names of the properties defined
        hs.associations                    # {(contact id, company id)}
        hs.count("POST", "/crm/v3/objects/contacts/batch/upsert")  # fnmatch patterns allowed
        hs.upserted("contacts")            # every upsert input received, in order

Faults: ``hs.fail_next(n=1, status=429, path=None, method=None, retry_after=0.01)`` - the next n
matching requests answer ``status`` (a 429 carries HubSpot's RATE_LIMIT body, ``Retry-After``
and ``X-HubSpot-RateLimit-Remaining: 0``; a 5xx an internal error body) without being applied.
``hs.reject_value(property_name, value)``
makes a value invalid, as a portal's validation would; ``hs.property_def(object_type, name)``
gives a property as defined.
``hs.reset(state=False)`` drops traffic and faults (``state=True``: records and properties too).

Contract kept:
- ``Authorization: Bearer <token>`` or 401 (category ``INVALID_AUTHENTICATION``).
- Every answer carries ``X-HubSpot-RateLimit-Max`` / ``-Remaining`` / ``-Interval-Milliseconds``
  (a 10 s rolling window, ``rate_limit`` requests) and ``-Secondly`` / ``-Secondly-Remaining``;
  with ``enforce_rate_limit=True`` going over answers 429 like HubSpot.
- Errors: ``{"status":"error","message","correlationId","category","errors"?,"context"?}``.
- Properties: GET|POST /crm/v3/properties/{objectType}, POST .../batch/create (201, or 207 with
  per-input errors), GET|PATCH .../{propertyName}; groups GET|POST
  /crm/v3/properties/{objectType}/groups (409 when the name exists), GET .../groups/{name}.
  A property needs an existing group, a valid type/fieldType pair, options for enumerations; a
  unique (``hasUniqueValue``) property can be an upsert ``idProperty``.
- POST /crm/v3/objects/{contacts|companies}/batch/upsert: 1..100 inputs (else 400), each with
  ``id`` and a unique ``idProperty`` (``email`` for contacts), no id twice; an invalid email as
  contact id fails the whole batch (400 ``VALIDATION_ERROR`` quoting the address, as HubSpot
  does); an unknown property or a value of the wrong type / outside an enumeration's options
  fails that input: a 207 with the error's ``context.objectWriteTraceId`` when every input carries
  an ``objectWriteTraceId``, else a 400 for the batch. Results carry ``id``, ``new``,
  ``properties``, ``objectWriteTraceId``, ``createdAt``/``updatedAt``.
- POST /crm/v4/associations/{from}/{to}/batch/associate/default: 1..100 inputs of
  ``{"from":{"id"},"to":{"id"}}`` naming existing records (else 400); 200 with the results.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

MAX_INPUTS = 100
WINDOW_MS = 10_000
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FIELD_TYPES = {
    "number": {"number"},
    "datetime": {"date"},
    "date": {"date"},
    "string": {"text", "textarea", "phonenumber", "html", "file"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "bool": {"booleancheckbox"},
}
DEFAULT_PROPERTIES = {
    "contacts": [("email", "string", "text", True), ("firstname", "string", "text", False)],
    "companies": [("name", "string", "text", False), ("domain", "string", "text", False)],
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ApiError(Exception):
    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR", **extra: Any):
        super().__init__(message)
        self.status = status
        self.body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            **extra,
        }
        self.headers: dict[str, str] = {}


@dataclass
class RecordedRequest:
    method: str
    path: str
    status: int
    body: Any
    seconds: float = 0.0


@dataclass
class _Rule:
    remaining: int
    status: int
    path: str | None
    method: str | None
    retry_after: float

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or fnmatch.fnmatchcase(path, self.path)
        )


@dataclass
class _State:
    properties: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    groups: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # by id
    # object type -> unique property -> lower-cased value -> record id (upserts look up here)
    unique: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    next_id: int = 1000
    associations: set[tuple[str, str]] = field(default_factory=set)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _go(self) -> None:
        self.server.hub._serve(self)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _go


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    hub: HubSpotServer


class HubSpotServer:
    def __init__(
        self,
        token: str = "pat-na1-local-test-token-0000",
        rate_limit: int = 100_000,
        enforce_rate_limit: bool = False,
    ) -> None:
        self.token = token
        self.rate_limit = rate_limit
        self.enforce_rate_limit = enforce_rate_limit
        self._lock = threading.Lock()
        self._state = _State()
        self._rules: list[_Rule] = []
        self._window: list[float] = []
        self._rejected_values: set[tuple[str, str]] = set()
        self.requests: list[RecordedRequest] = []
        self._upserts: dict[str, list[dict[str, Any]]] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._seed()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> HubSpotServer:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.hub = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubSpotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def env(self) -> dict[str, str]:
        return {"HUBSPOT_ACCESS_TOKEN": self.token, "HUBSPOT_API_HOST": self.url}

    # --- faults and inspection ----------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        path: str | None = None,
        method: str | None = None,
        retry_after: float = 0.01,
    ) -> None:
        with self._lock:
            self._rules.append(_Rule(n, status, path, method, retry_after))

    def reject_value(self, property_name: str, value: str) -> None:
        """Make `value` invalid for `property_name` (a portal-side validation rule)."""
        with self._lock:
            self._rejected_values.add((property_name, value))

    def reset(self, state: bool = False) -> None:
        with self._lock:
            self.requests = []
            self._rules = []
            self._upserts = {}
            self._window = []
            self._rejected_values = set()
            if state:
                self._state = _State()
                self._seed()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method)
                and (path is None or fnmatch.fnmatchcase(r.path, path))
            )

    def server_seconds(self) -> float:
        with self._lock:
            return sum(r.seconds for r in self.requests)

    def upserted(self, object_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._upserts.get(object_type, []))

    def records(self, object_type: str, by: str | None = None) -> dict[str, dict[str, Any]]:
        """Records keyed by `by` (default: email for contacts, the id otherwise)."""
        by = by or ("email" if object_type == "contacts" else None)
        with self._lock:
            out = {}
            for rid, rec in self._state.records.get(object_type, {}).items():
                key = rec["properties"].get(by) if by else rid
                out[str(key)] = json.loads(json.dumps(rec))
            return out

    def property_names(self, object_type: str) -> set[str]:
        with self._lock:
            return set(self._state.properties.get(object_type, {}))

    def property_def(self, object_type: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            prop = self._state.properties.get(object_type, {}).get(name)
            return json.loads(json.dumps(prop)) if prop else None

    def group_names(self, object_type: str) -> set[str]:
        with self._lock:
            return set(self._state.groups.get(object_type, {}))

    @property
    def associations(self) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._state.associations)

    # --- serving ------------------------------------------------------------------------------

    def _seed(self) -> None:
        for object_type, props in DEFAULT_PROPERTIES.items():
            info = f"{object_type[:-1]}information"
            self._state.groups[object_type] = {
                info: {"name": info, "label": "Information", "displayOrder": 0, "archived": False}
            }
            self._state.properties[object_type] = {
                name: self._property_body(
                    {
                        "name": name,
                        "label": name,
                        "type": kind,
                        "fieldType": ftype,
                        "groupName": info,
                        "hasUniqueValue": unique,
                    },  # fmt: skip
                    hubspot_defined=True,
                )
                for name, kind, ftype, unique in props
            }
            self._state.records[object_type] = {}

    def _rate_headers(self, now: float) -> dict[str, str]:
        self._window = [t for t in self._window if now - t < WINDOW_MS / 1000]
        remaining = max(self.rate_limit - len(self._window), 0)
        return {
            "X-HubSpot-RateLimit-Max": str(self.rate_limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(WINDOW_MS),
            "X-HubSpot-RateLimit-Secondly": str(max(self.rate_limit // 10, 1)),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(remaining // 10, 0)),
        }

    def _serve(self, handler: _Handler) -> None:
        started = time.perf_counter()
        method = handler.command
        path = handler.path.split("?", 1)[0]
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body: Any = None
        status, payload, headers = 500, {}, {}
        try:
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    raise ApiError(400, f"Invalid input JSON: {exc}") from None
            with self._lock:
                now = time.monotonic()
                self._window.append(now)
                headers = self._rate_headers(now)
                if handler.headers.get("Authorization") != f"Bearer {self.token}":
                    raise ApiError(
                        401,
                        "Authentication credentials not found. This API supports OAuth 2.0 "
                        "authentication.",
                        category="INVALID_AUTHENTICATION",
                    )
                rule = next((r for r in self._rules if r.matches(method, path)), None)
                if rule is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    raise self._fault(rule.status, rule.retry_after)
                if self.enforce_rate_limit and len(self._window) > self.rate_limit:
                    raise self._fault(429, WINDOW_MS / 1000)
                status, payload = self._route(method, path, body)
        except ApiError as exc:
            status, payload = exc.status, exc.body
            headers = {**headers, **exc.headers}
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json;charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
        with self._lock:
            self.requests.append(
                RecordedRequest(method, path, status, body, time.perf_counter() - started)
            )

    def _fault(self, status: int, retry_after: float) -> ApiError:
        if status == 429:
            err = ApiError(
                429,
                "You have reached your ten_secondly_rolling limit.",
                category="RATE_LIMITS",
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
            )
            err.headers = {
                "Retry-After": f"{retry_after:g}",
                "X-HubSpot-RateLimit-Remaining": "0",
            }
            return err
        return ApiError(status, "internal error", category="INTERNAL_ERROR")

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[:3] == ["crm", "v3", "properties"] and len(parts) >= 4:
            object_type = self._object_type(parts[3])
            rest = parts[4:]
            if rest[:1] == ["groups"]:
                return self._groups(method, object_type, rest[1:], body)
            if rest == ["batch", "create"] and method == "POST":
                return self._create_properties(object_type, body)
            if not rest and method == "GET":
                props = self._state.properties[object_type].values()
                return 200, {"results": [p for p in props if not p["archived"]]}
            if not rest and method == "POST":
                prop, error = self._new_property(object_type, body or {})
                if error:
                    raise ApiError(409 if "exists" in error else 400, error)
                return 201, prop
            if len(rest) == 1:
                return self._one_property(method, object_type, rest[0], body)
        if (
            parts[:3] == ["crm", "v3", "objects"]
            and len(parts) == 6
            and parts[4:] == ["batch", "upsert"]
            and method == "POST"
        ):
            return self._upsert(self._object_type(parts[3]), body)
        if (
            parts[:3] == ["crm", "v4", "associations"]
            and len(parts) == 8
            and parts[5:] == ["batch", "associate", "default"]
            and method == "POST"
        ):
            return self._associate(self._object_type(parts[3]), self._object_type(parts[4]), body)
        raise ApiError(404, f"Unable to route {method} {path}", category="OBJECT_NOT_FOUND")

    @staticmethod
    def _object_type(name: str) -> str:
        aliases = {
            "contact": "contacts",
            "company": "companies",
            "0-1": "contacts",
            "0-2": "companies",
        }
        name = aliases.get(name.lower(), name.lower())
        if name not in ("contacts", "companies"):
            raise ApiError(400, f"Unable to infer object type from: {name}")
        return name

    # --- properties and groups ----------------------------------------------------------------

    def _groups(self, method: str, object_type: str, rest: list[str], body: Any) -> tuple[int, Any]:
        groups = self._state.groups[object_type]
        if not rest and method == "GET":
            return 200, {"results": list(groups.values())}
        if not rest and method == "POST":
            body = body or {}
            name, label = body.get("name"), body.get("label")
            if not name or not label:
                raise ApiError(400, "Property group name and label are required")
            if name in groups:
                raise ApiError(
                    409,
                    f"A property group with name '{name}' already exists",
                    category="OBJECT_ALREADY_EXISTS",
                )
            groups[name] = {
                "name": name,
                "label": label,
                "displayOrder": int(body.get("displayOrder", -1)),
                "archived": False,
            }
            return 201, groups[name]
        if len(rest) == 1 and method == "GET":
            if rest[0] not in groups:
                raise ApiError(404, f"Property group {rest[0]} does not exist", "OBJECT_NOT_FOUND")
            return 200, groups[rest[0]]
        raise ApiError(405, "Method not allowed")

    def _property_body(self, body: dict[str, Any], hubspot_defined: bool = False) -> dict[str, Any]:
        now = _now()
        return {
            "name": body["name"],
            "label": body.get("label") or body["name"],
            "type": body["type"],
            "fieldType": body["fieldType"],
            "description": body.get("description") or "",
            "groupName": body["groupName"],
            "options": [
                {
                    "label": o.get("label") or o["value"],
                    "value": o["value"],
                    "displayOrder": o.get("displayOrder", i),
                    "hidden": bool(o.get("hidden", False)),
                }
                for i, o in enumerate(body.get("options") or [])
            ],
            "displayOrder": body.get("displayOrder", -1),
            "hasUniqueValue": bool(body.get("hasUniqueValue", False)),
            "hidden": False,
            "formField": bool(body.get("formField", False)),
            "hubspotDefined": hubspot_defined,
            "calculated": False,
            "externalOptions": False,
            "archived": False,
            "createdAt": now,
            "updatedAt": now,
            "modificationMetadata": {
                "archivable": not hubspot_defined,
                "readOnlyDefinition": hubspot_defined,
                "readOnlyValue": False,
            },
        }

    def _new_property(self, object_type: str, body: dict[str, Any]) -> tuple[Any, str | None]:
        props = self._state.properties[object_type]
        name = body.get("name")
        for key in ("name", "label", "type", "fieldType", "groupName"):
            if not body.get(key):
                return None, f"Property {key} is required"
        if not re.match(r"^[a-z][a-z0-9_]*$", name):
            return None, f"Property name {name} must be lowercase letters, digits and _"
        if name in props:
            return None, f"Property {name} already exists"
        if body["type"] not in FIELD_TYPES or body["fieldType"] not in FIELD_TYPES[body["type"]]:
            return None, f"Invalid type {body['type']} / fieldType {body['fieldType']} for {name}"
        if body["groupName"] not in self._state.groups[object_type]:
            return None, f"Property group {body['groupName']} does not exist"
        if body["type"] == "enumeration" and not body.get("options"):
            return None, f"Enumeration property {name} needs options"
        props[name] = self._property_body(body)
        return props[name], None

    def _create_properties(self, object_type: str, body: Any) -> tuple[int, Any]:
        inputs = (body or {}).get("inputs") or []
        if not inputs:
            raise ApiError(400, "inputs are required")
        started = _now()
        results, errors = [], []
        for item in inputs:
            prop, error = self._new_property(object_type, item)
            if error:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": error,
                        "context": {"name": [str(item.get("name"))]},
                        "errors": [],
                        "links": {},
                    }  # fmt: skip
                )
            else:
                results.append(prop)
        answer = {"status": "COMPLETE", "results": results, "startedAt": started,
                  "completedAt": _now()}  # fmt: skip
        if errors:
            answer.update(numErrors=len(errors), errors=errors)
            return 207, answer
        return 201, answer

    def _one_property(self, method: str, object_type: str, name: str, body: Any) -> tuple[int, Any]:
        props = self._state.properties[object_type]
        if name not in props:
            raise ApiError(404, f"Property {name} does not exist", category="OBJECT_NOT_FOUND")
        if method == "GET":
            return 200, props[name]
        if method == "PATCH":
            prop = props[name]
            body = body or {}
            if "options" in body:
                prop["options"] = self._property_body({**prop, "options": body["options"]})[
                    "options"
                ]
            for key in ("label", "description", "groupName", "displayOrder"):
                if key in body:
                    prop[key] = body[key]
            prop["updatedAt"] = _now()
            return 200, prop
        raise ApiError(405, "Method not allowed")

    # --- records ------------------------------------------------------------------------------

    def _invalid_value(self, object_type: str, name: str, value: Any) -> str | None:
        prop = self._state.properties[object_type].get(name)
        if prop is None:
            return f'Property "{name}" does not exist'
        if value is None or value == "":
            return None  # clears the property
        text = str(value)
        if (name, text) in self._rejected_values:
            return f"{text} was not a valid value for {name}"
        kind = prop["type"]
        if kind == "number":
            try:
                float(text)
            except ValueError:
                return f"{text} was not a valid number for property {name}"
        elif kind == "datetime":
            try:
                datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                if not text.isdigit():
                    return f"{text} was not a valid datetime for property {name}"
        elif kind == "date":
            if not re.match(r"^\d{4}-\d{2}-\d{2}$", text) and not text.isdigit():
                return f"{text} was not a valid date for property {name}"
        elif kind == "enumeration":
            allowed = {o["value"] for o in prop["options"]}
            values = text.split(";") if prop["fieldType"] == "checkbox" else [text]
            bad = [v for v in values if v not in allowed]
            if bad:
                return f"{bad[0]} was not one of the allowed options for property {name}"
        return None

    def _upsert(self, object_type: str, body: Any) -> tuple[int, Any]:
        inputs = (body or {}).get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise ApiError(400, "Invalid input JSON: inputs is required")
        if len(inputs) > MAX_INPUTS:
            raise ApiError(
                400, f"Too many inputs: {len(inputs)} (the limit is {MAX_INPUTS} per batch)"
            )
        props = self._state.properties[object_type]
        seen: set[str] = set()
        for item in inputs:
            id_property = item.get("idProperty")
            if not item.get("id") or not id_property:
                raise ApiError(400, "Each input needs an id and an idProperty for upsert")
            prop = props.get(id_property)
            if prop is None or not prop["hasUniqueValue"]:
                raise ApiError(400, f"{id_property} is not a unique property of {object_type}")
            key = str(item["id"]).lower() if id_property == "email" else str(item["id"])
            if key in seen:
                raise ApiError(400, f"Duplicate IDs found in batch input: [{item['id']}]")
            seen.add(key)
            if id_property == "email" and not EMAIL_RE.match(str(item["id"])):
                raise ApiError(
                    400,
                    'Property values were not valid: [{"isValid":false,"message":"Email address '
                    f'{item["id"]} is invalid","error":"INVALID_EMAIL","name":"email"}}]',
                )
        traced = all(item.get("objectWriteTraceId") for item in inputs)
        started = _now()
        results, errors = [], []
        self._upserts.setdefault(object_type, []).extend(json.loads(json.dumps(inputs)))
        records = self._state.records[object_type]
        for item in inputs:
            values = dict(item.get("properties") or {})
            invalid = [
                e for e in (self._invalid_value(object_type, k, v) for k, v in values.items()) if e
            ]
            if invalid:
                message = f"Property values were not valid: {invalid[0]}"
                if not traced:
                    raise ApiError(400, message)
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": message,
                        "context": {"objectWriteTraceId": [str(item["objectWriteTraceId"])]},
                        "errors": [{"message": invalid[0]}],
                        "links": {},
                    }  # fmt: skip
                )
                continue
            id_property = item["idProperty"]
            key = str(item["id"]).lower() if id_property == "email" else str(item["id"])
            unique = self._state.unique.setdefault(object_type, {})
            rid = unique.get(id_property, {}).get(key.lower())
            record = records.get(rid) if rid else None
            now = _now()
            new = record is None
            if record is None:
                self._state.next_id += 1
                rid = str(self._state.next_id)
                record = {"id": rid, "properties": {"hs_object_id": rid, "createdate": now},
                          "createdAt": now}  # fmt: skip
                records[rid] = record
            values[id_property] = key
            record["properties"].update(values)
            for name, value in values.items():
                if props[name]["hasUniqueValue"] and value:
                    unique.setdefault(name, {})[str(value).lower()] = record["id"]
            record["properties"]["lastmodifieddate"] = now
            record["updatedAt"] = now
            result = {
                "id": record["id"],
                "new": new,
                "archived": False,
                "properties": dict(record["properties"]),
                "createdAt": record["createdAt"],
                "updatedAt": now,
            }
            if item.get("objectWriteTraceId"):
                result["objectWriteTraceId"] = item["objectWriteTraceId"]
            results.append(result)
        answer = {"status": "COMPLETE", "results": results, "startedAt": started,
                  "completedAt": _now()}  # fmt: skip
        if errors:
            answer.update(numErrors=len(errors), errors=errors)
            return 207, answer
        return 200, answer

    def _associate(self, from_type: str, to_type: str, body: Any) -> tuple[int, Any]:
        inputs = (body or {}).get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise ApiError(400, "Invalid input JSON: inputs is required")
        if len(inputs) > MAX_INPUTS:
            raise ApiError(400, f"Too many inputs: {len(inputs)} (limit {MAX_INPUTS})")
        started = _now()
        results = []
        for item in inputs:
            from_id = str((item.get("from") or {}).get("id", ""))
            to_id = str((item.get("to") or {}).get("id", ""))
            if from_id not in self._state.records[from_type]:
                raise ApiError(400, f"No {from_type} with ID {from_id} exist")
            if to_id not in self._state.records[to_type]:
                raise ApiError(400, f"No {to_type} with ID {to_id} exist")
            self._state.associations.add((from_id, to_id))
            results.append(
                {
                    "from": {"id": from_id},
                    "to": {"id": to_id},
                    "associationSpec": {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": 279,
                    },
                }  # fmt: skip
            )
        return 200, {"status": "COMPLETE", "results": results, "startedAt": started,
                     "completedAt": _now()}  # fmt: skip


@pytest.fixture
def hubspot_server() -> Iterator[HubSpotServer]:
    """A fresh local HubSpot server per test."""
    with HubSpotServer() as server:
        yield server
