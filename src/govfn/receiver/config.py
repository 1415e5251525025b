"""HttpConfig: the serving options (from `Settings`, which reads the environment)."""

from __future__ import annotations

from dataclasses import dataclass

from govfn.identity import OidcConfig
from govfn.settings import Settings

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
    `oidc` makes every delivery prove its sender (`govfn.identity`).
    """

    function_id: str | None = None
    dev: bool = False
    api_token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    retry_after_s: int = DEFAULT_RETRY_AFTER_S
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    oidc: OidcConfig | None = None  # set: every delivery must carry a valid sender token

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
    def from_settings(cls, settings: Settings) -> HttpConfig:
        """The options the environment set; the defaults above where it set none."""

        def given(value: int | None, default: int) -> int:
            return default if value is None else value

        return cls(
            function_id=settings.function_id,
            dev=settings.dev,
            api_token=settings.api_token,
            max_body_bytes=given(settings.max_body_bytes, DEFAULT_MAX_BODY),
            max_in_flight=given(settings.max_in_flight, DEFAULT_MAX_IN_FLIGHT),
            retry_after_s=given(settings.retry_after_s, DEFAULT_RETRY_AFTER_S),
            request_timeout_s=float(
                given(settings.request_timeout_s, int(DEFAULT_REQUEST_TIMEOUT_S))
            ),
            oidc=settings.oidc,
        )
