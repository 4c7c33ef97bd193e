"""HubSpot's CRM API through the official `hubspot-api-client`, with HubSpot's limits:

- Batches of at most 100 records (contacts / companies upsert, default associations).
- 429: wait what `Retry-After` says (else the `X-HubSpot-RateLimit-Interval-Milliseconds`
  window), then retry, bounded by hits and total wait; a response saying
  `X-HubSpot-RateLimit-Remaining: 0` pauses before the next call instead of earning a 429.
- 5xx, connection failures and timeouts: exponential backoff, bounded. Upserts are idempotent
  (keyed on email or the company's unique property), so resending after a timeout is safe.
- A 4xx for the whole batch is split in halves until the record HubSpot refuses is alone; it is
  reported with HubSpot's message and the others land. Per-record errors of a 207 multi-status
  answer are mapped back through each input's `objectWriteTraceId`.
- 401 / 403 stop the push with one line: every later call would fail the same way.

The token goes only into the client's configuration. The library's own loggers are kept at INFO
(their DEBUG lines carry request and response bodies), exceptions are never logged whole (their
text carries the response headers and body), and HubSpot's messages are reduced to one line with
addresses hashed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicDefaultAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
    PublicObjectId,
)
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiException
from hubspot.crm.companies.exceptions import ApiException as CompaniesApiException
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.properties import (
    BatchInputPropertyCreate,
    OptionInput,
    PropertyCreate,
    PropertyGroupCreate,
    PropertyUpdate,
)
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from urllib3.util.retry import Retry

from crm_sync.errors import CrmError, one_line
from crm_sync.hashing import hash_key, redact_addresses
from crm_sync.specs import GROUP_LABEL, GROUP_NAME, PropertySpec

log = logging.getLogger(__name__)
# DEBUG lines of the generated client carry whole request and response bodies (addresses).
logging.getLogger("hubspot").setLevel(logging.INFO)

MAX_BATCH = 100
API_ERRORS = (
    ContactsApiException,
    CompaniesApiException,
    PropertiesApiException,
    AssociationsApiException,
)


@dataclass
class RetryPolicy:
    """Bounds on waiting: HubSpot's limits are per portal, shared with every other integration."""

    max_retries: int = 5  # 5xx / connection failures, per call
    base_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_rate_limit_hits: int = 20  # 429s per call
    max_rate_limit_wait_s: float = 300.0  # total waiting on 429s per call
    sleep: Callable[[float], None] = time.sleep


@dataclass
class UpsertOutcome:
    """What HubSpot did with a batch: confirmed ids by record key, rejections with HubSpot's
    message, and records it neither confirmed nor rejected (sent again next time)."""

    confirmed: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, tuple[int, str]] = field(default_factory=dict)
    unconfirmed: list[str] = field(default_factory=list)


class HubSpotRejected(Exception):
    """A 4xx for a whole request (not 401/403/429): the caller decides what to split."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _header(headers: Any, name: str) -> str | None:
    """A header of an exception's HTTPHeaderDict or of the library's RESTResponse."""
    if headers is None:
        return None
    getter = getattr(headers, "getheader", None) or getattr(headers, "get", None)
    value = getter(name) if getter else None
    return str(value) if value is not None else None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def error_message(exc: Any) -> str:
    """HubSpot's own message from an error body, one line, addresses hashed."""
    status = int(getattr(exc, "status", 0) or 0)
    text = ""
    body = getattr(exc, "body", None)
    if body:
        try:
            data = json.loads(body.decode() if isinstance(body, bytes) else body)
            text = str(data.get("message") or "")
            details = [str(e.get("message")) for e in data.get("errors") or [] if e.get("message")]
            if details and details[0] not in text:
                text = f"{text}: {details[0]}" if text else details[0]
        except (ValueError, AttributeError):
            text = ""
    reason = text or str(getattr(exc, "reason", "") or "")
    return redact_addresses(f"{status} {reason}".strip().splitlines()[0])[:400]


def _without_key(message: str, key: str) -> str:
    """HubSpot quotes the refused value (an invalid address is no address to the redaction
    pattern): the record's own key is replaced by its hash."""
    return message.replace(key, f"<key:{hash_key(key)}>") if key else message


class HubSpotClient:
    """The calls crm_sync makes, each through `_call` with the retry rules; counts requests."""

    def __init__(
        self,
        access_token: str,
        host: str | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not access_token:
            raise CrmError("HUBSPOT_ACCESS_TOKEN is not set (a HubSpot private app token)")
        config: dict[str, Any] = {
            "access_token": access_token,
            # onramp retries itself (bounded, Retry-After aware); urllib3 must not retry too
            "retry": Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
        }
        if host:
            config["host"] = host.rstrip("/")
        client = HubSpot(**config)
        # each `*_api` property builds a new ApiClient (and connection pool): build them once
        self.contacts = client.crm.contacts.batch_api
        self.companies = client.crm.companies.batch_api
        self.properties = client.crm.properties.core_api
        self.property_batches = client.crm.properties.batch_api
        self.groups = client.crm.properties.groups_api
        self.associations = client.crm.associations.v4.batch_api
        self.host = host or "https://api.hubapi.com"
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.requests = 0
        self.rate_limited = 0
        self.seconds = 0.0  # time spent in HubSpot calls, waits included
        self._pause_until = 0.0

    def __repr__(self) -> str:  # never the token
        return f"HubSpotClient(host={self.host!r})"

    # --- the one place HTTP happens ------------------------------------------------------------

    def _call(self, what: str, api: Any, fn: Callable[[], Any]) -> Any:
        policy = self.retry
        attempt = 0
        rate_hits = 0
        rate_waited = 0.0
        started = time.perf_counter()
        try:
            while True:
                pause = self._pause_until - time.monotonic()
                if pause > 0:
                    policy.sleep(pause)
                self.requests += 1
                try:
                    result = fn()
                    self._note_limits(getattr(api.api_client, "last_response", None))
                    return result
                except API_ERRORS as exc:
                    status = int(exc.status or 0)
                    if status == 429:
                        rate_hits += 1
                        self.rate_limited += 1
                        wait = self._rate_limit_wait(exc.headers)
                        if (
                            rate_hits > policy.max_rate_limit_hits
                            or rate_waited + wait > policy.max_rate_limit_wait_s
                        ):
                            raise CrmError(
                                f"{what}: HubSpot still rate limits after {rate_hits} tries and "
                                f"{rate_waited:.0f}s of waiting; the next push sends the rest"
                            ) from None
                        log.info("%s: 429 from HubSpot, waiting %.2fs", what, wait)
                        rate_waited += wait
                        policy.sleep(wait)
                        continue
                    if status in (401, 403):
                        raise CrmError(
                            f"{what}: HubSpot refused the access token ({error_message(exc)}); "
                            "check HUBSPOT_ACCESS_TOKEN and the private app's scopes"
                        ) from None
                    if status and status < 500:
                        raise HubSpotRejected(status, error_message(exc)) from None
                    reason = error_message(exc)
                except urllib3.exceptions.HTTPError as exc:
                    reason = f"connection failed ({type(exc).__name__})"
                if attempt >= policy.max_retries:
                    raise CrmError(
                        f"{what}: HubSpot failed {attempt + 1} times ({reason}); "
                        "the next push sends the rest"
                    ) from None
                wait = min(policy.base_backoff_s * 2**attempt, policy.max_backoff_s)
                attempt += 1
                log.info("%s: %s, retrying in %.1fs", what, one_line(reason), wait)
                policy.sleep(wait)
        finally:
            self.seconds += time.perf_counter() - started

    def _rate_limit_wait(self, headers: Any) -> float:
        retry_after = _float(_header(headers, "Retry-After"))
        if retry_after is None:
            interval_ms = _float(_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds"))
            retry_after = interval_ms / 1000 if interval_ms else 1.0
        return max(0.0, min(retry_after, self.retry.max_rate_limit_wait_s))

    def _note_limits(self, response: Any) -> None:
        """Pause before the next call when HubSpot says this window is used up."""
        if response is None:
            return
        remaining = _float(_header(response, "X-HubSpot-RateLimit-Remaining"))
        if remaining is not None and remaining <= 0:
            interval_ms = _float(_header(response, "X-HubSpot-RateLimit-Interval-Milliseconds"))
            self._pause_until = time.monotonic() + min((interval_ms or 1000) / 1000, 10.0)

    # --- properties ----------------------------------------------------------------------------

    def ensure_properties(self, object_type: str, specs: Sequence[PropertySpec]) -> list[str]:
        """Create the missing properties (in group `onramp`, with their types and options) and add
        missing options to existing enumerations. One GET when everything exists. Returns the
        names created."""
        existing = {
            p.name: p
            for p in self._call(
                f"read {object_type} properties",
                self.properties,
                lambda: self.properties.get_all(object_type, _request_timeout=self.timeout_s),
            ).results
        }
        missing: list[PropertySpec] = []
        for spec in specs:
            have = existing.get(spec.name)
            if have is None:
                if spec.hubspot_defined and spec.name != "email":
                    log.warning("HubSpot %s property %s not found", object_type, spec.name)
                if not spec.hubspot_defined:
                    missing.append(spec)
                continue
            if spec.hubspot_defined:
                continue
            if have.type != spec.hubspot_type:
                raise CrmError(
                    f"HubSpot {object_type} property {spec.name} is of type {have.type}, onramp "
                    f"pushes {spec.hubspot_type}: rename it in HubSpot or in the pump's YAML"
                )
            if spec.options:
                known = {o.value for o in have.options or []}
                if not set(spec.options) <= known:
                    self._add_options(object_type, spec, have)
        if missing:
            self._ensure_group(object_type)
            self._create(object_type, missing)
        return [s.name for s in missing]

    def _add_options(self, object_type: str, spec: PropertySpec, have: Any) -> None:
        options = [
            OptionInput(
                label=o.label, value=o.value, display_order=o.display_order, hidden=o.hidden
            )
            for o in have.options or []
        ]
        known = {o.value for o in options}
        options += [
            OptionInput(label=v, value=v, display_order=len(options) + i, hidden=False)
            for i, v in enumerate(v for v in spec.options if v not in known)
        ]
        try:
            self._call(
                f"update {object_type} property {spec.name}",
                self.properties,
                lambda: self.properties.update(
                    object_type,
                    spec.name,
                    PropertyUpdate(options=options),
                    _request_timeout=self.timeout_s,
                ),
            )
        except HubSpotRejected as exc:
            raise CrmError(f"cannot add options to {spec.name}: {exc.message}") from None

    def _ensure_group(self, object_type: str) -> None:
        try:
            self._call(
                f"create {object_type} property group",
                self.groups,
                lambda: self.groups.create(
                    object_type,
                    PropertyGroupCreate(name=GROUP_NAME, label=GROUP_LABEL, display_order=-1),
                    _request_timeout=self.timeout_s,
                ),
            )
        except HubSpotRejected as exc:
            if exc.status != 409:  # 409: the group exists, as wanted
                raise CrmError(
                    f"cannot create property group {GROUP_NAME}: {exc.message}"
                ) from None

    def _create(self, object_type: str, specs: Sequence[PropertySpec]) -> None:
        inputs = [
            PropertyCreate(
                name=s.name,
                label=s.label or s.name,
                description=s.description or None,
                group_name=GROUP_NAME,
                type=s.hubspot_type,
                field_type=s.field_type,
                has_unique_value=True if s.unique else None,
                options=[
                    OptionInput(label=v, value=v, display_order=i, hidden=False)
                    for i, v in enumerate(s.options)
                ]
                or None,
            )
            for s in specs
        ]
        try:
            response = self._call(
                f"create {object_type} properties",
                self.property_batches,
                lambda: self.property_batches.create(
                    object_type,
                    BatchInputPropertyCreate(inputs=inputs),
                    _request_timeout=self.timeout_s,
                ),
            )
        except HubSpotRejected as exc:
            raise CrmError(f"cannot create {object_type} properties: {exc.message}") from None
        errors = getattr(response, "errors", None) or []
        if errors:
            raise CrmError(
                f"cannot create {object_type} properties: "
                + redact_addresses(str(errors[0].message or errors[0].category))
            )
        log.info("created %d HubSpot %s properties", len(inputs), object_type)

    # --- records -------------------------------------------------------------------------------

    def upsert(
        self,
        object_type: str,
        id_property: str,
        records: Sequence[tuple[str, dict[str, str]]],
    ) -> UpsertOutcome:
        """Upsert (record key, properties) pairs, at most MAX_BATCH per request; a batch HubSpot
        refuses as a whole is split until the refused records are alone."""
        outcome = UpsertOutcome()
        for start in range(0, len(records), MAX_BATCH):
            self._upsert_split(
                object_type, id_property, list(records[start : start + MAX_BATCH]), outcome
            )
        return outcome

    def _upsert_split(
        self,
        object_type: str,
        id_property: str,
        records: list[tuple[str, dict[str, str]]],
        outcome: UpsertOutcome,
    ) -> None:
        try:
            response = self._upsert_once(object_type, id_property, records)
        except HubSpotRejected as exc:
            if len(records) == 1:
                key = records[0][0]
                outcome.rejected[key] = (exc.status, _without_key(exc.message, key))
                return
            half = len(records) // 2
            log.info(
                "upsert %s: HubSpot refused a batch of %d (%s); splitting",
                object_type,
                len(records),
                exc.message,
            )
            self._upsert_split(object_type, id_property, records[:half], outcome)
            self._upsert_split(object_type, id_property, records[half:], outcome)
            return
        self._read_upsert(records, id_property, response, outcome)

    def _upsert_once(
        self, object_type: str, id_property: str, records: list[tuple[str, dict[str, str]]]
    ) -> Any:
        api = self.contacts if object_type == "contacts" else self.companies
        # a model built without a configuration builds its own (logging set-up and all): reuse
        # the client's, which is most of the Python time of a large push otherwise
        config = api.api_client.configuration
        body = BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id=key,
                    id_property=id_property,
                    # the trace id maps a 207's per-record errors back; the position, not the key,
                    # so no address travels twice
                    object_write_trace_id=str(i),
                    properties={**props, id_property: key},
                    local_vars_configuration=config,
                )
                for i, (key, props) in enumerate(records)
            ],
            local_vars_configuration=config,
        )
        return self._call(
            f"upsert {object_type}",
            api,
            lambda: api.upsert(body, _request_timeout=self.timeout_s),
        )

    @staticmethod
    def _read_upsert(
        records: list[tuple[str, dict[str, str]]],
        id_property: str,
        response: Any,
        outcome: UpsertOutcome,
    ) -> None:
        by_trace = {str(i): key for i, (key, _) in enumerate(records)}
        by_value = {key.lower(): key for key, _ in records}
        done: set[str] = set()
        for result in getattr(response, "results", None) or []:
            key = by_trace.get(str(getattr(result, "object_write_trace_id", None)))
            if key is None:
                value = (getattr(result, "properties", None) or {}).get(id_property)
                key = by_value.get(str(value or "").lower())
            if key is not None and result.id:
                outcome.confirmed[key] = str(result.id)
                done.add(key)
        for error in getattr(response, "errors", None) or []:
            context = getattr(error, "context", None) or {}
            traces = context.get("objectWriteTraceId") or []
            message = redact_addresses(str(error.message or error.category or "rejected"))[:400]
            for trace in traces:
                key = by_trace.get(str(trace))
                if key is not None and key not in done:
                    outcome.rejected[key] = (400, _without_key(message, key))
                    done.add(key)
        outcome.unconfirmed.extend(key for key, _ in records if key not in done)

    def associate(
        self, from_type: str, to_type: str, pairs: Sequence[tuple[str, str, str]]
    ) -> tuple[set[str], dict[str, str]]:
        """Default (unlabelled) associations for (record key, from id, to id), MAX_BATCH per
        request. Returns the keys associated and the errors by key."""
        done: set[str] = set()
        failed: dict[str, str] = {}
        for start in range(0, len(pairs), MAX_BATCH):
            chunk = list(pairs[start : start + MAX_BATCH])
            config = self.associations.api_client.configuration
            body = BatchInputPublicDefaultAssociationMultiPost(
                inputs=[
                    PublicDefaultAssociationMultiPost(
                        _from=PublicObjectId(id=from_id, local_vars_configuration=config),
                        to=PublicObjectId(id=to_id, local_vars_configuration=config),
                        local_vars_configuration=config,
                    )
                    for _, from_id, to_id in chunk
                ],
                local_vars_configuration=config,
            )
            try:
                response = self._call(
                    f"associate {from_type} with {to_type}",
                    self.associations,
                    lambda body=body: self.associations.create_default(
                        from_type, to_type, body, _request_timeout=self.timeout_s
                    ),
                )
            except HubSpotRejected as exc:
                failed.update({key: exc.message for key, _, _ in chunk})
                continue
            linked = {
                (str(r._from.id), str(r.to.id))
                for r in getattr(response, "results", None) or []
                if getattr(r, "_from", None) is not None and getattr(r, "to", None) is not None
            }
            for key, from_id, to_id in chunk:
                if (from_id, to_id) in linked:
                    done.add(key)
                else:
                    failed[key] = "HubSpot did not confirm the association"
        return done, failed
