"""The sample API and its users: routes, features, statuses, plans, names, zones, SDKs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

# One weight per onramp.roles.ROLES entry, in its order; the last: an empty role (unknown).
ROLE_WEIGHTS = (40, 12, 6, 5, 6, 6, 5, 8, 12)

PLAN_QUOTAS = {"free": 10_000, "startup": 100_000, "growth": 1_000_000, "enterprise": None}

API_HOST = "https://api.onramp.example"
DOCS = "https://docs.onramp.example/api"

# (IANA zone, standard UTC offset in minutes, weight). The offset shapes the working-hours curve
# and is used to write some timestamps with a non-UTC offset; it need not follow DST to be valid.
TIMEZONES = (
    ("America/New_York", -300, 14),
    ("America/Los_Angeles", -480, 12),
    ("America/Chicago", -360, 6),
    ("America/Toronto", -300, 3),
    ("America/Sao_Paulo", -180, 4),
    ("Europe/London", 0, 8),
    ("Europe/Berlin", 60, 7),
    ("Europe/Paris", 60, 4),
    ("Europe/Madrid", 60, 3),
    ("Europe/Warsaw", 60, 2),
    ("Africa/Lagos", 60, 2),
    ("Asia/Kolkata", 330, 9),
    ("Asia/Singapore", 480, 4),
    ("Asia/Shanghai", 480, 3),
    ("Asia/Tokyo", 540, 4),
    ("Australia/Sydney", 600, 3),
    ("UTC", 0, 2),
)

FIRST_NAMES = (
    "Ava", "Noah", "Mia", "Liam", "Sofia", "Mateo", "Aisha", "Kenji", "Priya", "Lucas", "Chloé",
    "José", "Zoë", "Søren", "Amara", "Diego", "Hana", "Omar", "Ingrid", "Wei", "Fatima", "Ethan",
    "Nia", "Rahul", "Elena", "Tomás", "Yuki", "Olivia", "Kwame", "Leila", "Marta", "Arjun", "Grace",
    "Björn", "Camila", "Dmitri", "Emeka", "Freya", "Gabriel", "Ines",
)  # fmt: skip
LAST_NAMES = (
    "Nguyen", "Smith", "García", "Müller", "Okafor", "Tanaka", "Patel", "Rossi", "Kowalski",
    "Johansson", "Silva", "Chen", "O'Brien", "Dubois", "Haddad", "Kim", "Novak", "Mensah",
    "Ivanova", "Fernández", "Larsen", "Sato", "Brown", "Cohen", "Adeyemi", "Schmidt", "Moreau",
    "Singh",
)  # fmt: skip
COMPANY_WORDS = (
    "Acme", "Northwind", "Bluebird", "Lumen", "Parcel", "Kite", "Harbor", "Quanta", "Fable",
    "Orbit", "Cedar", "Nimbus", "Sparrow", "Tandem", "Vertex", "Willow", "Zephyr", "Ember",
)  # fmt: skip
COMPANY_KINDS = (
    "Logistics", "Health", "Labs", "Payments", "Commerce", "Analytics", "Travel", "Robotics",
    "Media", "Finance", "Foods", "Learning",
)  # fmt: skip
COMPANY_SUFFIXES = ("Inc.", "Ltd", "GmbH", "", "", "", "Co.", "SAS")

SDKS = (
    ("onramp-python/{v} (CPython 3.12)", ("2.4.1", "2.5.0", "2.6.3")),
    ("onramp-node/{v} (Node.js v20.11.1)", ("1.9.0", "1.10.2", "1.11.0")),
    ("onramp-go/{v}", ("0.14.2", "0.15.0")),
    ("onramp-ruby/{v}", ("1.3.0",)),
    ("onramp-java/{v} (OpenJDK 21)", ("3.2.1", "3.3.0")),
    ("curl/{v}", ("8.5.0", "7.88.1")),
    ("PostmanRuntime/{v}", ("7.36.3", "7.39.0")),
)
SDK_WEIGHTS = (30, 25, 10, 5, 8, 12, 10)


@dataclass(frozen=True)
class Route:
    """A route template of the sample API and how callers use it."""

    template: str
    methods: tuple[str, ...]
    id_kinds: tuple[str, ...]  # one per {id}: num | uuid | hex32 | hex40
    feature: str | None  # None: not in the endpoint catalog
    weight: int
    promoted: bool = False
    queries: tuple[str, ...] = ()


ROUTES: tuple[Route, ...] = (
    Route("/v1/me", ("GET",), (), "Account", 5),
    Route("/v1/oauth/token", ("POST",), (), "Authentication", 3),
    Route(
        "/v1/users", ("GET", "GET", "POST"), (), "Users", 6,
        queries=("limit=50", "page=2&per_page=100", "email=someone%40example.com"),
    ),
    Route("/v1/users/{id}", ("GET", "GET", "PATCH", "DELETE"), ("num",), "Users", 8),
    Route("/v1/users/{id}/keys/{id}", ("GET", "DELETE"), ("num", "hex32"), "API keys", 2),
    Route(
        "/v1/messages", ("POST", "POST", "GET"), (), "Messaging", 10,
        queries=("limit=20", "status=failed&limit=100"),
    ),
    Route("/v1/messages/{id}", ("GET",), ("uuid",), "Messaging", 8),
    Route("/v1/messages/{id}/events", ("GET",), ("uuid",), "Message events", 3),
    Route("/v1/payments", ("POST", "GET"), (), "Payments", 5,
          queries=("created_after=2024-01-01",)),
    Route("/v1/payments/{id}", ("GET",), ("num",), "Payments", 5),
    Route("/v1/payments/{id}/refunds", ("POST",), ("num",), "Refunds", 1),
    Route("/v1/webhooks", ("GET", "POST"), (), "Webhooks", 2, promoted=True),
    Route("/v1/webhooks/{id}", ("GET", "PUT", "DELETE"), ("uuid",), "Webhooks", 2),
    Route("/v1/webhooks/{id}/deliveries", ("GET",), ("uuid",), "Webhook deliveries", 1,
          queries=("status=failed",)),
    Route("/v1/files", ("POST",), (), "Files", 2),
    Route("/v1/files/{id}", ("GET",), ("hex40",), "Files", 3),
    Route("/v1/search", ("GET",), (), "Search", 5,
          queries=("q=invoice+overdue&limit=20", "q=refund", "q=user%3A42&sort=desc")),
    Route("/v1/sessions/{id}", ("GET", "DELETE"), ("hex32",), "Sessions", 2),
    Route("/v1/batch", ("POST",), (), "Batch API", 2, promoted=True),
    Route("/v1/reports/{id}/export", ("POST", "GET"), ("num",), "Report exports", 1, promoted=True),
    Route("/v1/usage", ("GET",), (), "Usage", 2, queries=("month=current",)),
    Route("/v0/status", ("GET",), (), None, 1),  # legacy, not in the catalog
)  # fmt: skip
ROUTE_INDEX = {r.template: i for i, r in enumerate(ROUTES)}
TEMPLATES = tuple(r.template for r in ROUTES)
PROMOTED = tuple(r.template for r in ROUTES if r.promoted)
ME, OAUTH = ROUTE_INDEX["/v1/me"], ROUTE_INDEX["/v1/oauth/token"]
# Route groups a developer picks from: a feature area uses all its routes.
FEATURE_GROUPS = (
    ("/v1/users", "/v1/users/{id}"),
    ("/v1/users/{id}/keys/{id}",),
    ("/v1/messages", "/v1/messages/{id}", "/v1/messages/{id}/events"),
    ("/v1/payments", "/v1/payments/{id}", "/v1/payments/{id}/refunds"),
    ("/v1/webhooks/{id}", "/v1/webhooks/{id}/deliveries"),
    ("/v1/files", "/v1/files/{id}"),
    ("/v1/search",),
    ("/v1/sessions/{id}",),
    ("/v1/usage",),
    ("/v0/status",),
)

# Status mixes: (status, weight per 1000); status 0 = the success status of the method.
BASE_STATUSES = ((0, 925), (400, 15), (401, 10), (403, 5), (404, 25), (409, 3), (422, 7),
                  (500, 5), (502, 2), (503, 3))  # fmt: skip
BUSY_STATUSES = BASE_STATUSES + ((429, 3),)
SUCCESS = {"GET": 200, "POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}


DEVELOPER_COLUMNS = (
    "developer_id", "email", "name", "company_id", "company_name", "role", "signed_up_at", "plan",
    "monthly_quota", "timezone", "marketing_opt_in",
)  # fmt: skip
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def cumulative(weights: Iterable[float]) -> list[float]:
    """Running totals of `weights`, for weighted picks by bisection."""
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def csv_field(value: str) -> str:
    """One CSV field as csv.writer's QUOTE_MINIMAL writes it (faster for one row at a time)."""
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value
