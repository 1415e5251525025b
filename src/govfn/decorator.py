"""`governed_function`: turn a plain sync or async function into a registered FunctionPlugin.

The decorator returns the function unchanged (it stays directly callable in unit tests);
the plugin that wraps it is registered and reachable as `fn.__govfn_plugin__`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from govfn.delivery import Delivery
from govfn.event_data import event_model_of
from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
from govfn.registry import FunctionRegistry, default_registry

F = TypeVar("F", bound=Callable[..., Any])


class DecoratedFunction(FunctionPlugin):
    """A FunctionPlugin around a plain `fn(event, context)`."""

    def __init__(self, fn: Callable[[Any, FunctionContext], Any]) -> None:
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)

    async def handle(self, event: Any, context: FunctionContext) -> FunctionResult:
        if self.is_async:
            value = await self.fn(event, context)
        else:
            value = await run_sync(self.fn, event, context)
        if isinstance(value, FunctionResult):
            return value
        if self.event_model is not None:  # a typed handler may answer with an instance too
            value = self.event_model.dump(value)
        return FunctionResult(success=True, data=value)

    def __repr__(self) -> str:
        return f"<governed function {self.function_id}@{self.version} {self.fn.__qualname__}>"


async def run_sync(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking callable in the loop's executor, with the caller's contextvars."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await loop.run_in_executor(None, call)


def _as_tuple(types: Sequence[str]) -> Sequence[str]:
    """A tuple of event types; a lone string is left as is so validation names it."""
    return types if isinstance(types, str) else tuple(types)


def governed_function(
    function_id: str,
    *,
    trigger_events: Sequence[str],
    emits: Sequence[str] = (),
    gsap_required: bool = False,
    version: str = "1.0.0",
    timeout: float | None = None,
    idempotent: bool = False,
    pure: bool = False,
    chronicle_enabled: bool = True,
    description: str | None = None,
    delivery: Delivery | None = None,
    registry: FunctionRegistry | None = None,
) -> Callable[[F], F]:
    """Register `fn(event, context)` as a governed function triggered by `trigger_events`.

    `delivery` is the retry and dead-letter policy of its Triggers (see `govfn.Delivery`).
    `pure`: `fn` has no effect beyond the result it returns, so its FUNCTION_INVOKED record
    need not be durable before it runs (it is committed with FUNCTION_COMPLETED).
    When `fn`'s event parameter is annotated with a dataclass or a pydantic model, `fn`
    receives an instance of it (see `govfn.event_data`), and may return one."""

    def decorate(fn: F) -> F:
        doc = inspect.getdoc(fn) or ""
        try:
            event_model = event_model_of(fn)  # once: the hot path never looks at annotations
        except TypeError as exc:
            raise ValueError(f"{function_id}: event type: {exc}") from None
        attributes = {
            "function_id": function_id,
            "version": version,
            "description": description if description is not None else doc.split("\n\n")[0],
            "trigger_events": _as_tuple(trigger_events),
            "emits": _as_tuple(emits),
            "gsap_required": gsap_required,
            "chronicle_enabled": chronicle_enabled,
            "timeout": timeout,
            "idempotent": idempotent,
            "pure": pure,
            "delivery": delivery,
            "event_model": event_model,
            "__module__": fn.__module__,
            "__qualname__": f"governed_function[{function_id}]",
        }
        plugin_class: type[DecoratedFunction] = type(
            f"governed_function[{function_id}]", (DecoratedFunction,), attributes
        )
        plugin_class.validate()  # also when function_id is empty, which subclassing skips
        plugin = plugin_class(fn)
        (registry if registry is not None else default_registry()).register(plugin)
        fn.__govfn_plugin__ = plugin  # type: ignore[attr-defined]
        return fn

    return decorate
