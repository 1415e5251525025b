"""`EventModel`: how a handler's event parameter is built from JSON data, and its schema."""

from __future__ import annotations

import dataclasses
import enum
import sys
from collections.abc import Callable
from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class EventModel:
    """A handler's event type: `parse(data)` builds an instance (raising
    `govfn.errors.EventDataError` naming the field when the data does not fit),
    `json_schema()` describes the data it accepts."""

    __slots__ = ("_schema", "name", "parse", "type")

    def __init__(self, type_: type, parse: Callable[[Any], Any], schema: dict[str, Any]) -> None:
        self.type = type_
        self.name = type_.__qualname__
        self.parse = parse
        self._schema = schema

    def json_schema(self) -> dict[str, Any]:
        """A copy of the type's JSON Schema (draft 2020-12)."""
        schema: dict[str, Any] = _copy(self._schema)
        return schema

    def dump(self, value: Any) -> Any:
        """`value` as JSON data when it is a dataclass or pydantic model instance (a typed
        handler may return one), else `value` itself."""
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return _plain(dataclasses.asdict(value))
        if is_pydantic_model(type(value)):
            return value.model_dump(mode="json")
        return value

    def __repr__(self) -> str:
        return f"<EventModel {self.name}>"


def is_pydantic_model(cls: Any) -> bool:
    """Whether `cls` is a pydantic model class; pydantic is never imported for it (a
    model's module has imported it already)."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)


def _plain(value: Any) -> Any:
    """`dataclasses.asdict` output as JSON data: Enums as their values, tuples and sets
    as lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
