"""Fixtures for the manifest tests: plugins, options, the API-server double, helm."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
HELM = REPO / ".tools" / "bin" / "helm"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from govfn_manifest_apiserver import ApiServer, ApiServerState  # noqa: E402

from govfn.function import FunctionPlugin  # noqa: E402
from govfn.manifest import ManifestOptions  # noqa: E402
from govfn.registry import FunctionRegistry, load_functions  # noqa: E402

MakePlugin = Callable[..., FunctionPlugin]


@pytest.fixture
def make_plugin() -> MakePlugin:
    """Build a FunctionPlugin subclass instance defined in an importable module."""

    def make(
        function_id: str,
        triggers: Sequence[str] = ("THING_HAPPENED",),
        emits: Sequence[str] = (),
        version: str = "1.0.0",
    ) -> FunctionPlugin:
        attributes: dict[str, Any] = {
            "__module__": "govfn_manifest_samples",
            "function_id": function_id,
            "trigger_events": tuple(triggers),
            "emits": tuple(emits),
            "version": version,
        }
        return type(f"Plugin_{function_id.replace('-', '_')}", (FunctionPlugin,), attributes)()

    return make


@pytest.fixture
def builtins() -> FunctionRegistry:
    return load_functions(["govfn.functions"], FunctionRegistry(), include_entry_points=False)


@pytest.fixture
def options() -> ManifestOptions:
    return ManifestOptions(image="registry.example/govfn:1.0.0", namespace="functions")


@pytest.fixture
def apiserver() -> Iterator[ApiServer]:
    server = ApiServer(ApiServerState()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(apiserver: ApiServer, tmp_path: Path) -> Path:
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def helm() -> Path:
    if not HELM.exists():
        pytest.skip("helm is not installed: run `make .tools/bin/helm` (make test does)")
    return HELM
