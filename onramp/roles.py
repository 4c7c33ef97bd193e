"""The developer roles onramp knows; any other role is stored as given and read as `unknown`.

dbt staging reads the same list from the `developer_roles` var in dbt_project.yml (a test keeps
the two equal). The order matters only to the sample-data generator, whose role weights follow it.
"""

from __future__ import annotations

ROLES: tuple[str, ...] = (
    "engineering",
    "product",
    "marketing",
    "customer_success",
    "developer_relations",
    "sales",
    "support",
    "executive",
)
