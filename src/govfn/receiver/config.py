"""HttpConfig: the serving options, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_MAX_IN_FLIGHT = 64
DEFAULT_RETRY_AFTER_S = 1
DEFAULT_REQUEST_TIMEOUT_S = 300.0  # Knative's default timeoutSeconds


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    """How the receivers and the management API behave.

    `function_id` set means single-function mode (`POST /` is that function's receiver).
    `api_token` (GOVFN_API_TOKEN) opens the direct-invoke API to bearers of it; `dev`
    opens it to everyone and makes the invocation log readable. `request_timeout_s` caps
    how long a request waits for its invocations when a function sets no timeout of its own.
    """

    function_id: str | None = None
    dev: bool = False
    api_token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    retry_after_s: int = DEFAULT_RETRY_AFTER_S
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be >= 1, got {self.max_body_bytes!r}")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {self.max_in_flight!r}")
        if self.retry_after_s < 0:
            raise ValueError(f"retry_after_s must be >= 0, got {self.retry_after_s!r}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HttpConfig:
        env = os.environ if environ is None else environ
        return cls(
            function_id=env.get("GOVFN_FUNCTION") or None,
            dev=env.get("GOVFN_DEV", "").lower() in ("1", "true", "yes"),
            api_token=env.get("GOVFN_API_TOKEN") or None,
            max_body_bytes=_int(env, "GOVFN_MAX_BODY_BYTES", DEFAULT_MAX_BODY),
            max_in_flight=_int(env, "GOVFN_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT),
            retry_after_s=_int(env, "GOVFN_RETRY_AFTER", DEFAULT_RETRY_AFTER_S),
            request_timeout_s=float(
                _int(env, "GOVFN_REQUEST_TIMEOUT", int(DEFAULT_REQUEST_TIMEOUT_S))
            ),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None
