"""The function registry, its trigger index, and loading functions from modules.

Internal code takes a registry as an argument. The module-level default registry exists
for the convenience of `governed_function` without `registry=`; `use_registry` swaps it
for a block (tests use it in an autouse fixture).
"""

from __future__ import annotations

import importlib
import inspect
import os
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import Any

from govfn.entry_points import entry_points
from govfn.errors import FunctionLoadError, RegistrationError
from govfn.function import FunctionPlugin, validate_function_id

BUILTIN_MODULE = "govfn.functions"
ENTRY_POINT_GROUP = "govfn.functions"


class FunctionRegistry:
    """Registered functions by id, and by the event types that trigger them."""

    def __init__(self) -> None:
        self._functions: dict[str, FunctionPlugin] = {}
        self._by_trigger: dict[str, tuple[FunctionPlugin, ...]] = {}
        self._frozen_by: str | None = None

    def register(self, plugin: FunctionPlugin) -> FunctionPlugin:
        """Add `plugin`; registering the same object again is a no-op."""
        if not isinstance(plugin, FunctionPlugin):
            raise RegistrationError(f"not a FunctionPlugin: {plugin!r}")
        function_id = plugin.function_id
        try:
            validate_function_id(function_id)
        except ValueError as exc:
            raise RegistrationError(str(exc)) from None
        existing = self._functions.get(function_id)
        if existing is plugin:
            return plugin
        if self._frozen_by is not None:
            raise RegistrationError(
                f"cannot register {function_id!r}: the registry is in use by {self._frozen_by}; "
                "register functions before serving starts"
            )
        if existing is not None:
            raise RegistrationError(
                f"function id {function_id!r} is already registered by {existing!r}; "
                f"cannot register {plugin!r} under the same id"
            )
        self._functions[function_id] = plugin
        for kind in plugin.trigger_events:
            self._by_trigger[kind] = (*self._by_trigger.get(kind, ()), plugin)
        return plugin

    def unregister(self, function_id: str) -> FunctionPlugin:
        if self._frozen_by is not None:
            raise RegistrationError(
                f"cannot unregister {function_id!r}: the registry is in use by {self._frozen_by}"
            )
        plugin = self._functions.pop(function_id, None)
        if plugin is None:
            raise KeyError(function_id)
        for kind in plugin.trigger_events:
            remaining = tuple(p for p in self._by_trigger[kind] if p is not plugin)
            if remaining:
                self._by_trigger[kind] = remaining
            else:
                del self._by_trigger[kind]
        return plugin

    def get(self, function_id: str) -> FunctionPlugin | None:
        return self._functions.get(function_id)

    def all(self) -> list[FunctionPlugin]:
        """Every function, sorted by id."""
        return [self._functions[key] for key in sorted(self._functions)]

    def by_trigger(self, kind: str) -> tuple[FunctionPlugin, ...]:
        return self._by_trigger.get(kind, ())

    def trigger_kinds(self) -> list[str]:
        return sorted(self._by_trigger)

    def freeze(self, user: str) -> None:
        """Refuse further (un)registration; `user` names who froze it, for the error."""
        self._frozen_by = user

    def __contains__(self, function_id: object) -> bool:
        return function_id in self._functions

    def __len__(self) -> int:
        return len(self._functions)

    def __iter__(self) -> Iterator[FunctionPlugin]:
        return iter(self.all())


_default: ContextVar[FunctionRegistry] = ContextVar("govfn_default_registry")
_process_default = FunctionRegistry()


def default_registry() -> FunctionRegistry:
    return _default.get(_process_default)


@contextmanager
def use_registry(registry: FunctionRegistry) -> Iterator[FunctionRegistry]:
    """Make `registry` the default for decorators used inside the block."""
    token = _default.set(registry)
    try:
        yield registry
    finally:
        _default.reset(token)


def plugins_in(module: ModuleType) -> list[FunctionPlugin]:
    """The functions a module defines: decorated functions and FunctionPlugin subclasses."""
    found: list[FunctionPlugin] = []
    for value in vars(module).values():
        plugin = _as_plugin(value, module.__name__)
        if plugin is not None and plugin not in found:
            found.append(plugin)
    return found


_class_instances: dict[type[FunctionPlugin], FunctionPlugin] = {}


def _as_plugin(value: Any, module_name: str | None) -> FunctionPlugin | None:
    plugin = getattr(value, "__govfn_plugin__", None)
    if isinstance(plugin, FunctionPlugin):
        return plugin
    if isinstance(value, FunctionPlugin):
        return value
    if (
        inspect.isclass(value)
        and issubclass(value, FunctionPlugin)
        and value.function_id
        and (
            module_name is None
            or value.__module__ == module_name
            or value.__module__.startswith(module_name + ".")  # a package re-exporting it
        )
    ):
        # One instance per class, so loading a module twice registers the same object.
        if value not in _class_instances:
            _class_instances[value] = value()
        return _class_instances[value]
    return None


def load_functions(
    modules: Iterable[str] = (),
    registry: FunctionRegistry | None = None,
    *,
    include_entry_points: bool = True,
) -> FunctionRegistry:
    """Register the functions of `modules` and of the `govfn.functions` entry points into
    `registry` (default: the default registry). With no module named and no entry point
    installed, the built-ins (`echo`, `billing`) are loaded; an installed project's entry
    points stand alone (`govfn.functions` named as a module adds the built-ins)."""
    registry = registry if registry is not None else default_registry()
    names = [name.strip() for name in modules if name.strip()]
    entries = entry_points(ENTRY_POINT_GROUP) if include_entry_points else []
    if not names and not entries:
        names = [BUILTIN_MODULE]
    with use_registry(registry):
        for name in names:
            try:
                module = importlib.import_module(name)
            except Exception as exc:
                raise FunctionLoadError(
                    f"cannot import functions module {name!r}: {import_problem(exc, name)}"
                ) from exc
            for plugin in plugins_in(module):
                registry.register(plugin)
        for entry in entries:
            try:
                value = entry.load()
            except Exception as exc:
                raise FunctionLoadError(
                    f"cannot load entry point {entry.name!r} ({entry.value}): "
                    f"{import_problem(exc, entry.value.partition(':')[0].strip())}"
                ) from exc
            found = plugins_in(value) if inspect.ismodule(value) else [_as_plugin(value, None)]
            for candidate in found:
                if candidate is None:
                    raise FunctionLoadError(
                        f"entry point {entry.name!r} ({entry.value}) is not a govfn function"
                    )
                registry.register(candidate)
    return registry


def import_problem(exc: BaseException, module: str) -> str:
    """What went wrong importing `module`, with the file and line where it did: a
    SyntaxError's own position, else the innermost frame outside the import machinery;
    a module that is not there gets a hint to install the project."""
    what = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError) and exc.filename:
        detail = exc.msg or what
        return f"{_relative(exc.filename)}, line {exc.lineno}: {type(exc).__name__}: {detail}"
    if isinstance(exc, ModuleNotFoundError) and exc.name and module.startswith(exc.name):
        return (
            f"{what} (is its project installed? `pip install -e .` in the project installs "
            "it and registers its govfn.functions entry point)"
        )
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<") and "importlib" not in frame.filename
    ]
    if not frames:
        return what
    return f"{_relative(frames[-1].filename)}, line {frames[-1].lineno}: {what}"


def _relative(path: str) -> str:
    """`path` from the working directory when it is under it (as an editor shows it)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative
