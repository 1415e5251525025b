"""govfn: governed functions on Knative.

The SDK core (this package's top level and `govfn.chronicle`) imports neither Flask,
gunicorn nor the Kubernetes client, so a function's cold start does not pay for them.

The names below are imported on first use, so that importing a submodule (the `govfn`
command does, first thing) does not load the runtime and asyncio before it needs them.
"""

from __future__ import annotations

import importlib

from govfn.version import __version__

TYPE_CHECKING = False  # not typing's: this module loads before anything heavier
if TYPE_CHECKING:
    from typing import Any

    from govfn.decorator import governed_function
    from govfn.delivery import Delivery
    from govfn.errors import EventDataError, GovfnError, PermanentError, RegistrationError
    from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
    from govfn.outcome import ErrorKind
    from govfn.registry import FunctionRegistry, default_registry, load_functions, use_registry
    from govfn.runtime import FunctionRuntime

_HOMES = {
    "governed_function": "govfn.decorator",
    "Delivery": "govfn.delivery",
    "EventDataError": "govfn.errors",
    "GovfnError": "govfn.errors",
    "PermanentError": "govfn.errors",
    "RegistrationError": "govfn.errors",
    "FunctionContext": "govfn.function",
    "FunctionPlugin": "govfn.function",
    "FunctionResult": "govfn.function",
    "ErrorKind": "govfn.outcome",
    "FunctionRegistry": "govfn.registry",
    "default_registry": "govfn.registry",
    "load_functions": "govfn.registry",
    "use_registry": "govfn.registry",
    "FunctionRuntime": "govfn.runtime",
}

__all__ = [
    "Delivery",
    "ErrorKind",
    "EventDataError",
    "FunctionContext",
    "FunctionPlugin",
    "FunctionRegistry",
    "FunctionResult",
    "FunctionRuntime",
    "GovfnError",
    "PermanentError",
    "RegistrationError",
    "__version__",
    "default_registry",
    "governed_function",
    "load_functions",
    "use_registry",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'govfn' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
