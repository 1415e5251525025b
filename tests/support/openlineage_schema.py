"""The vendored OpenLineage JSON schemas (and govfn's facet schemas) as a validator."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
VENDORED = REPO / "tests" / "data" / "openlineage"
GOVFN_FACETS = REPO / "src" / "govfn" / "schemas" / "openlineage"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")

formats = jsonschema.FormatChecker()


@formats.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ValueError(f"not RFC 3339: {value!r}")
        datetime.fromisoformat(value)
    return True


@formats.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    if isinstance(value, str) and (not urlsplit(value).scheme or " " in value):
        raise ValueError(f"not an absolute URI: {value!r}")
    return True


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def schema_registry() -> Registry:
    documents = [load(p) for p in (*VENDORED.rglob("*.json"), *GOVFN_FACETS.glob("*.json"))]
    documents = [d for d in documents if "$id" in d]
    return Registry().with_resources(
        (document["$id"], Resource.from_contents(document)) for document in documents
    )


REGISTRY = schema_registry()


def validate(instance: Any, schema_url: str) -> None:
    """Validate against the schema a URL (with a JSON Pointer fragment) names."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": schema_url}
    jsonschema.Draft202012Validator(schema, registry=REGISTRY, format_checker=formats).validate(
        instance
    )


def validate_event(event: dict[str, Any]) -> None:
    validate(event, event["schemaURL"])
    facets = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
    for facet in facets:
        validate(facet, facet["_schemaURL"])
    uuid.UUID(event["run"]["runId"])
