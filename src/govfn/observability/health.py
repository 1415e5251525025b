"""The health probes Knative's queue-proxy and the kubelet ask: liveness, readiness, status."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol


class Readiness(Protocol):
    """What a probe reads (the receivers' `ServerState` says it)."""

    @property
    def ready(self) -> bool: ...
    @property
    def starting(self) -> bool: ...
    @property
    def draining(self) -> bool: ...


HEALTH_PATHS = frozenset({"/health", "/health/", "/health/liveness", "/health/readiness"})


def health_answer(
    path: str,
    state: Readiness,
    functions: int,
    dependencies_usable: Callable[[], bool] = lambda: True,
) -> tuple[int, bytes] | None:
    """(status, JSON body) for a probe path, or None if `path` is not a probe. Ready means
    started, not draining, and `dependencies_usable()` (the Chronicle and the idempotency
    store answer)."""
    if path in ("/health", "/health/"):
        ready = state.ready and dependencies_usable()
        body: dict[str, Any] = {"status": "ok", "ready": ready, "functions": functions}
        return 200, json.dumps(body).encode()
    if path == "/health/liveness":
        return 200, b'{"status":"ok"}'
    if path == "/health/readiness":
        usable = dependencies_usable()
        ready = state.ready and usable
        body = {
            "ready": ready,
            "starting": state.starting,
            "draining": state.draining,
            "dependencies": usable,
        }
        return (200 if ready else 503), json.dumps(body).encode()
    return None
