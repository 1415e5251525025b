"""`Delivery`: how Knative delivers a function's trigger events, declared with the function.

    @governed_function("orders", trigger_events=["ORDER_PLACED"], delivery=Delivery(
        retry=5, backoff_policy="exponential", backoff_delay="PT0.5S",
        dead_letter_sink="broker:dlq", timeout="PT10S"))

`govfn manifests` writes it into `spec.delivery` of each of the function's Triggers. An
operator's `--retry`, `--backoff-policy`, `--backoff-delay`, `--dead-letter-sink` and
`--delivery-timeout` (or `delivery:` in the config file) override it field by field; a
field neither sets is left out, and a Trigger with no field set at all inherits the
Broker's delivery as a whole.

Values are checked here for their shape, when the function is defined, so that a typo
fails at import; rendering then checks them again with the same rules as the flags
(`govfn.manifest.options`, and Knative's admission rules in `govfn.manifest.validate`).

`dead_letter_sink` is an http(s) URL (`{uri: ...}`) or `KIND:NAME`, a reference to an
object of the Trigger's own namespace (Knative defaults a reference's namespace to its
holder's): `broker:NAME` a Broker (eventing.knative.dev/v1), `ksvc:NAME` a Knative
Service, `channel:NAME` a Channel (messaging.knative.dev/v1), `service:NAME` a
Kubernetes Service. So `broker:dlq` sends what exhausts its retries to the Broker `dlq`
beside the Trigger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from govfn.names import DNS1123_SUBDOMAIN

BACKOFF_POLICIES = ("linear", "exponential")
SINK_KINDS = ("ksvc", "broker", "channel", "service")
_NUMBER = r"\d+(?:[.,]\d+)?"
ISO_DURATION = re.compile(  # ISO 8601 durations as Knative reads them: PT0.5S, PT10S, P1D
    rf"^P(?=.)(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?=\d)(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"
)
# The Python field names and the Trigger's `spec.delivery` keys, in the Trigger's order.
SPEC_KEYS = {
    "dead_letter_sink": "deadLetterSink",
    "retry": "retry",
    "backoff_policy": "backoffPolicy",
    "backoff_delay": "backoffDelay",
    "timeout": "timeout",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A function's Trigger delivery policy; a field left None is not set by the function.

    `retry` is the number of retries (attempts = retry + 1); `backoff_policy` is linear or
    exponential and `backoff_delay` its ISO 8601 base delay (Knative backs off only when
    both are set); `timeout` is each attempt's ISO 8601 limit; `dead_letter_sink` takes
    what exhausts its retries or is refused (see the module's docstring).
    """

    retry: int | None = None
    backoff_policy: str | None = None
    backoff_delay: str | None = None
    dead_letter_sink: str | None = None
    timeout: str | None = None

    def __post_init__(self) -> None:
        retry = self.retry
        if retry is not None and (isinstance(retry, bool) or not isinstance(retry, int)):
            raise ValueError(f"delivery retry must be an integer, got {retry!r}")
        if retry is not None and retry < 0:
            raise ValueError(f"delivery retry must be 0 or more, got {retry!r}")
        policy = self.backoff_policy
        if policy is not None and policy not in BACKOFF_POLICIES:
            raise ValueError(
                f"delivery backoff_policy {policy!r} is not one of {', '.join(BACKOFF_POLICIES)}"
            )
        for name in ("backoff_delay", "timeout"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not ISO_DURATION.match(value)):
                raise ValueError(
                    f"delivery {name} {value!r} is not an ISO 8601 duration such as PT0.5S"
                )
        if self.dead_letter_sink is not None:
            check_sink(self.dead_letter_sink)

    def fields(self) -> dict[str, Any]:
        """The fields the function sets (not None), by Python name."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def describe(self) -> dict[str, Any]:
        """The fields set, under the Trigger's `spec.delivery` names (for the descriptor)."""
        return {SPEC_KEYS[name]: value for name, value in self.fields().items()}


def check_sink(value: object) -> str:
    """`value` if it is an http(s) URL or KIND:NAME (see the module's docstring)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"delivery dead_letter_sink must be a URL or KIND:NAME, got {value!r}")
    if value.startswith(("http://", "https://")):
        return value
    kind, _, name = value.partition(":")
    if kind not in SINK_KINDS or not name:
        raise ValueError(
            f"delivery dead_letter_sink {value!r} is neither an http(s) URL nor one of "
            f"{', '.join(kind + ':NAME' for kind in SINK_KINDS)}"
        )
    if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        raise ValueError(
            f"delivery dead_letter_sink {value!r}: {name!r} is not a Kubernetes object name"
        )
    return value
