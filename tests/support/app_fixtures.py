"""Fixtures for the serving layers' tests: in-process apps, a real `govfn serve` on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from govfn.app import GovfnApp, HttpConfig, create_app
from govfn.chronicle.client import MemoryChronicle
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime

from support.http_server import SAMPLE_MODULES, Server, start_server, stop_server


@pytest.fixture
def make_app() -> Iterator[Callable[..., GovfnApp]]:
    """Build apps over the built-ins and the samples, each with its own loop; stop them after."""
    apps: list[GovfnApp] = []

    def build(**config: Any) -> GovfnApp:
        registry = load_functions(SAMPLE_MODULES, FunctionRegistry(), include_entry_points=False)
        function_id = config.pop("function_id", None)
        if function_id is not None:
            single = FunctionRegistry()
            single.register(registry.get(function_id))  # type: ignore[arg-type]
            registry = single
        runtime = FunctionRuntime(registry, MemoryChronicle())
        app = create_app(runtime=runtime, config=HttpConfig(function_id=function_id, **config))
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.loop.stop()


@pytest.fixture
def app(make_app: Callable[..., GovfnApp]) -> GovfnApp:
    return make_app(dev=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server (2 threads, all sample functions, --dev) for a test module."""
    tmp = tmp_path_factory.mktemp("server")
    modules = [arg for name in SAMPLE_MODULES for arg in ("--functions", name)]
    running = start_server(tmp, *modules, "--threads", "4", "--dev")
    yield running
    stop_server(running)
