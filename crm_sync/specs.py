"""Which models are pushed to the CRM and how, read from the dbt manifest
(`config.meta.onramp.crm` of each pump model).

The manifest is the one place a pump says what goes where, so adding a HubSpot property is a YAML
entry plus its column, not Python.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_sync.errors import PumpMissing
from onramp.errors import OnrampError

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
OBJECTS = ("contacts", "companies")
# onramp type -> HubSpot (type, fieldType); `multiple` enumerations are checkboxes.
TYPES = {
    "number": ("number", "number"),
    "datetime": ("datetime", "date"),
    "date": ("date", "date"),
    "string": ("string", "text"),
    "enumeration": ("enumeration", "select"),
}
GROUP_NAME = "onramp"
GROUP_LABEL = "onramp"


class SpecError(OnrampError):
    """A pump's `config.meta.onramp.crm` block cannot be used."""


@dataclass(frozen=True)
class PropertySpec:
    """One pushed column and the HubSpot property it lands in."""

    column: str
    name: str
    type: str = "string"
    label: str = ""
    description: str = ""
    options: tuple[str, ...] = ()
    multiple: bool = False
    hubspot_defined: bool = False  # a HubSpot default property (e.g. company `name`): never created
    unique: bool = False

    @property
    def hubspot_type(self) -> str:
        return TYPES[self.type][0]

    @property
    def field_type(self) -> str:
        return "checkbox" if self.multiple else TYPES[self.type][1]


@dataclass(frozen=True)
class PumpSpec:
    """One pump model and the HubSpot object its rows become."""

    model: str
    schema: str
    table: str
    object_type: str
    id_column: str
    id_property: str
    properties: tuple[PropertySpec, ...]
    associate_object: str | None = None
    associate_column: str | None = None

    @property
    def relation(self) -> str:
        """Quoted `schema.table`; both parts are validated identifiers."""
        return f'"{self.schema}"."{self.table}"'

    @property
    def id_property_spec(self) -> PropertySpec:
        """The property the upsert matches on. email is HubSpot's own; any other is created as a
        unique text property when missing."""
        return PropertySpec(
            column=self.id_column,
            name=self.id_property,
            type="string",
            label="onramp company id" if self.object_type == "companies" else self.id_property,
            description="The record's id in onramp (unique); upserts match on it.",
            hubspot_defined=self.id_property == "email",
            unique=self.id_property != "email",
        )

    def with_id_property(self, name: str) -> PumpSpec:
        if not _NAME.match(name):
            raise SpecError(f"HubSpot id property must be a lowercase identifier, got {name!r}")
        return PumpSpec(**{**self.__dict__, "id_property": name})


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise SpecError(f"{where} must be a list of values")
    return tuple(str(v) for v in value)


def _property(raw: Any, where: str) -> PropertySpec:
    if not isinstance(raw, dict) or not raw.get("column"):
        raise SpecError(f"{where}: every property needs a column")
    column = str(raw["column"])
    name = str(raw.get("property") or column)
    kind = str(raw.get("type", "string"))
    for value, what in ((column, "column"), (name, "property")):
        if not _NAME.match(value):
            raise SpecError(f"{where}: {what} must be a lowercase identifier, got {value!r}")
    if kind not in TYPES:
        raise SpecError(f"{where}: {name} type must be one of {', '.join(TYPES)}, got {kind!r}")
    options = _str_list(raw.get("options"), f"{where}: {name} options")
    if kind == "enumeration" and not options:
        raise SpecError(f"{where}: enumeration {name} needs its options")
    return PropertySpec(
        column=column,
        name=name,
        type=kind,
        label=str(raw.get("label") or name),
        description=str(raw.get("description") or ""),
        options=options,
        multiple=bool(raw.get("multiple", False)),
        hubspot_defined=bool(raw.get("hubspot_defined", False)),
    )


def spec_from_meta(model: str, crm: Any, schema: str = "pumps", table: str = "") -> PumpSpec:
    """Build a pump spec from one model's `onramp.crm` meta block, with one-line errors."""
    where = f"pump {model}"
    if not isinstance(crm, dict):
        raise SpecError(f"{where}: meta.onramp.crm must be a mapping")
    object_type = str(crm.get("object", ""))
    if object_type not in OBJECTS:
        raise SpecError(f"{where}: object must be one of {', '.join(OBJECTS)}")
    id_column = str(crm.get("id_column", ""))
    id_property = str(crm.get("id_property") or ("email" if object_type == "contacts" else ""))
    for value in (model, schema, table or model, id_column, id_property):
        if not _NAME.match(value):
            raise SpecError(f"{where}: names must be lowercase identifiers, got {value!r}")
    raw_props = crm.get("properties") or []
    if not isinstance(raw_props, list) or not raw_props:
        raise SpecError(f"{where}: properties must be a non-empty list")
    properties = tuple(_property(p, where) for p in raw_props)
    names = [p.name for p in properties]
    if len(set(names)) != len(names) or id_property in names:
        raise SpecError(f"{where}: a HubSpot property is mapped twice")
    if len(properties) > 45:  # jsonb_build_object takes at most 100 arguments
        raise SpecError(f"{where}: at most 45 properties per pump")
    associate = crm.get("associate") or {}
    if associate and (
        str(associate.get("object")) not in OBJECTS
        or not _NAME.match(str(associate.get("column", "")))
    ):
        raise SpecError(f"{where}: associate needs an object ({', '.join(OBJECTS)}) and a column")
    return PumpSpec(
        model=model,
        schema=schema,
        table=table or model,
        object_type=object_type,
        id_column=id_column,
        id_property=id_property,
        properties=properties,
        associate_object=str(associate["object"]) if associate else None,
        associate_column=str(associate["column"]) if associate else None,
    )


def load_pump_specs(
    manifest_path: Path | str, company_id_property: str | None = None
) -> list[PumpSpec]:
    """Every model whose `config.meta.onramp.crm` declares a push, in push order: objects that
    others associate with first (companies before the contacts that point at them).

    company_id_property (HUBSPOT_COMPANY_ID_PROPERTY) replaces the companies' id property.
    """
    path = Path(manifest_path)
    if not path.exists():
        raise PumpMissing(f"dbt manifest not found at {path}: run `onramp build` first")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PumpMissing(f"cannot read dbt manifest {path}: {exc}") from exc
    specs: list[PumpSpec] = []
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") != "model":
            continue
        config = node.get("config") or {}
        onramp = (config.get("meta") or {}).get("onramp") or (node.get("meta") or {}).get("onramp")
        if not isinstance(onramp, dict) or "crm" not in onramp:
            continue
        name = str(node.get("name", ""))
        spec = spec_from_meta(
            name,
            onramp["crm"],
            schema=str(node.get("schema") or "pumps"),
            table=str(node.get("alias") or name),
        )
        if spec.object_type == "companies" and company_id_property:
            spec = spec.with_id_property(company_id_property)
        specs.append(spec)
    targets = {s.associate_object for s in specs if s.associate_object}
    return sorted(specs, key=lambda s: (s.object_type not in targets, s.model))
