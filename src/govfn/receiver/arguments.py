"""What a handler receives for an event: the decoded data, or, for a typed handler, the
instance of its event type built from it (`govfn.event_data`), checked by the receivers
before any function runs so that data that does not fit is a 400 naming the field."""

from __future__ import annotations

from typing import Any

from govfn.cloudevents.decode import IncomingEvent
from govfn.errors import EventDataError
from govfn.function import FunctionPlugin
from govfn.problem import HttpProblem


def argument_of(event: IncomingEvent, plugin: FunctionPlugin, index: int | None) -> Any:
    """What `plugin`'s handler receives for `event`: its data, or the instance of the
    handler's event type built from it; HttpProblem 400 naming the field when it does not
    fit (`index`: the event's place in a batch)."""
    model = plugin.event_model
    if model is None:
        return event.data
    try:
        return model.parse(event.data)
    except EventDataError as exc:
        raise HttpProblem(
            400,
            f"event data does not fit {model.name}, the event type of function "
            f"{plugin.function_id!r}: {exc}",
            attribute="data" if index is None else f"batch[{index}].data",
            field=exc.field,
            function_id=plugin.function_id,
        ) from None
