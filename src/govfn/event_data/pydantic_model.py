"""A pydantic model as an event type: `model_validate`, `model_json_schema`, and the first
validation error as the field at fault. Loaded only for a handler annotated with a model,
whose module has imported pydantic already; govfn does not depend on pydantic."""

from __future__ import annotations

import sys
from typing import Any

from govfn.errors import EventDataError
from govfn.event_data.model import SCHEMA_DIALECT, EventModel


def pydantic_model(cls: Any) -> EventModel:
    validation_error = sys.modules["pydantic"].ValidationError

    def parse(data: Any) -> Any:
        try:
            return cls.model_validate(data)
        except validation_error as exc:
            error = exc.errors()[0]
            raise EventDataError(_path(error.get("loc", ())), str(error.get("msg"))) from None

    return EventModel(cls, parse, {"$schema": SCHEMA_DIALECT, **cls.model_json_schema()})


def _path(location: tuple[Any, ...]) -> str:
    """pydantic's `loc` (`("items", 0, "price")`) as govfn writes a path: `items[0].price`."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path
