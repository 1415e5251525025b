"""Typed event data: a handler whose event parameter is annotated with a dataclass (or a
pydantic model, when pydantic is installed) gets an instance built from the event's data.

    @dataclass
    class Order:
        order_id: str
        total: float
        items: list[Item] = field(default_factory=list)

    @governed_function("orders", trigger_events=["ORDER_PLACED"])
    def orders(order: Order, context: FunctionContext) -> ...

The annotation is read once, when the function is registered (`event_model_of`); an
untyped handler (no annotation, `Any`, `dict`, ...) gets the data as decoded and pays
nothing per invocation. Data that does not fit raises `EventDataError` naming the field
(`items[0].price`); the receivers answer it 400 (Knative does not retry it) before any
function runs, and nothing is recorded in the Chronicle. `EventModel.json_schema()` is
the type's JSON Schema (draft 2020-12): the descriptor carries it as `event_schema` and
`govfn manifests --event-types` writes it into Knative EventTypes.

    event_model_of(fn) ─┬─ a pydantic model → pydantic_model.py (model_validate, model_json_schema)
                        ├─ a dataclass      → dataclass_reader.py (govfn's own reader and schema)
                        └─ anything else    → None: untyped

Dataclass fields may be str, int, float, bool, None, Any, another dataclass, an Enum, a
Literal, `X | Y` / Optional, list[T], tuple[T, ...], set[T], frozenset[T] and
dict[str, T]; a field of another type is refused (TypeError) when the function is
registered. Keys the dataclass does not name are ignored (a producer may add fields); a
field without a default is required; a ValueError raised by `__post_init__` is data that
does not fit. Annotations are resolved with `typing.get_type_hints`, so the dataclasses
of a module with `from __future__ import annotations` must be defined at module level. A
handler annotation that cannot be resolved (a name imported only for type checking)
leaves the handler untyped.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any

from govfn.event_data.dataclass_reader import compile_reader
from govfn.event_data.model import SCHEMA_DIALECT, EventModel, is_pydantic_model

__all__ = ["EventModel", "event_model_of", "model_for"]


def event_model_of(fn: Callable[..., Any], *, skip: int = 0) -> EventModel | None:
    """The model of `fn`'s event parameter (its first after `skip` others, such as
    `self`), or None when it is not annotated with a dataclass or a pydantic model.
    Raises TypeError naming the field of a dataclass that govfn cannot read."""
    parameters = list(inspect.signature(fn).parameters.values())
    if len(parameters) <= skip:
        return None
    parameter = parameters[skip]
    annotation = parameter.annotation
    if isinstance(annotation, str):
        try:
            annotation = typing.get_type_hints(fn).get(parameter.name, annotation)
        except Exception:
            return None  # e.g. a name imported under TYPE_CHECKING only
    return model_for(annotation)


def model_for(annotation: Any) -> EventModel | None:
    """The model of a type, or None when govfn does not build instances of it."""
    if not isinstance(annotation, type):
        return None
    if is_pydantic_model(annotation):
        from govfn.event_data.pydantic_model import pydantic_model

        return pydantic_model(annotation)
    if dataclasses.is_dataclass(annotation):
        reader, schema = compile_reader(annotation)
        return EventModel(annotation, reader, {"$schema": SCHEMA_DIALECT, **schema})
    return None
