"""The health probes Knative's queue-proxy and the kubelet ask: liveness, readiness, status."""

from __future__ import annotations

import json
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


def health_answer(path: str, state: Readiness, functions: int) -> tuple[int, bytes] | None:
    """(status, JSON body) for a probe path, or None if `path` is not a probe."""
    if path in ("/health", "/health/"):
        body: dict[str, Any] = {"status": "ok", "ready": state.ready, "functions": functions}
        return 200, json.dumps(body).encode()
    if path == "/health/liveness":
        return 200, b'{"status":"ok"}'
    if path == "/health/readiness":
        body = {"ready": state.ready, "starting": state.starting, "draining": state.draining}
        return (200 if state.ready else 503), json.dumps(body).encode()
    return None
