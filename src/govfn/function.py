"""The function-author SDK: context in, result out, and the plugin base class.

`FunctionPlugin` is what the registry holds and the runtime invokes. Most authors never
subclass it directly: `governed_function` wraps a plain function in one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from govfn.chronicle.cid import cid_of, content_cid
from govfn.delivery import Delivery
from govfn.event_data import EventModel, event_model_of
from govfn.names import DNS1123_LABEL, DNS1123_LABEL_MAX
from govfn.outcome import ErrorKind

DESCRIPTOR_SPEC = "GCAP-SPEC-FUNCTION-DESCRIPTOR-0001"

_SEMVER = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$")
_EVENT_TYPE = re.compile(r"^[\x21-\x7e]+$")


def validate_function_id(function_id: object) -> str:
    """Return `function_id` if it is a DNS-1123 label (it names Kubernetes objects)."""
    if not isinstance(function_id, str) or not function_id:
        raise ValueError(f"function_id must be a non-empty string, got {function_id!r}")
    if len(function_id) > DNS1123_LABEL_MAX:
        raise ValueError(
            f"function_id {function_id!r} is longer than {DNS1123_LABEL_MAX} characters"
        )
    if not DNS1123_LABEL.match(function_id):
        raise ValueError(
            f"function_id {function_id!r} is not a DNS-1123 label "
            "(lower-case letters, digits and '-', starting and ending with a letter or digit)"
        )
    return function_id


def _validate_event_types(name: str, types: object) -> tuple[str, ...]:
    if isinstance(types, str) or not isinstance(types, list | tuple | frozenset | set):
        raise ValueError(f"{name} must be a sequence of event types, got {types!r}")
    result = tuple(types)
    for event_type in result:
        if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
            raise ValueError(f"{name}: {event_type!r} is not a valid CloudEvent type")
    if len(set(result)) != len(result):
        raise ValueError(f"{name} lists an event type twice: {result!r}")
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionContext:
    """Where an invocation comes from: the trigger event's attributes and its governance."""

    trigger_event_kind: str | None = None
    trigger_event_cid: str | None = None
    chronicle_session_id: str | None = None
    gsap_context_id: str | None = None
    invocation_id: str | None = None
    pipeline_run_id: str | None = None
    event_id: str | None = None
    event_source: str | None = None
    event_subject: str | None = None
    event_time: str | None = None
    traceparent: str | None = None
    sender_issuer: str | None = None  # who sent the event, from its verified OIDC token
    sender_subject: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def with_invocation_id(self, invocation_id: str) -> FunctionContext:
        """A copy naming its invocation (`dataclasses.replace`, without its cost per call)."""
        copy = object.__new__(FunctionContext)
        for name in _CONTEXT_FIELDS:
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, "invocation_id", invocation_id)
        return copy

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FunctionContext:
        """Build a context from JSON, refusing unknown keys and non-string values."""
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown context field(s): {', '.join(sorted(unknown))}")
        for key, value in values.items():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"context field {key!r} must be a string, got {value!r}")
        return cls(**values)


_CONTEXT_FIELDS = tuple(FunctionContext.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionResult:
    """The one outcome of an invocation, built once and never changed.

    A handler returns one (`FunctionResult(success=True, data=...)`); the runtime answers
    with its own, which adds what only the runtime knows: ids, duration, reply type and
    the lineage CID. `error_kind` says why it failed (see `ErrorKind`); a handler may
    give its value as a string.
    """

    success: bool
    data: Any = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    duration_ms: float = 0.0
    lineage_cid: str | None = None
    function_id: str | None = None
    invocation_id: str | None = None
    reply_type: str | None = None
    reply_is_event: bool = False
    replayed: bool = False
    # The CID of `data`, when whoever built the result knows it (the runtime does).
    _output_cid: str | None = field(default=None, repr=False, compare=False)

    def output_cid(self) -> str | None:
        """CID of `data` (see `content_cid`); None when there is no data."""
        if self.data is None:
            return None
        if self._output_cid is None:  # a cache: the value follows from `data`
            object.__setattr__(self, "_output_cid", content_cid(self.data))
        return self._output_cid

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "data": self.data,
            "error": self.error,
            "error_kind": None if self.error_kind is None else str(self.error_kind),
            "duration_ms": self.duration_ms,
            "lineage_cid": self.lineage_cid,
            "output_cid": self.output_cid(),
            "function_id": self.function_id,
            "invocation_id": self.invocation_id,
            "reply_type": self.reply_type,
            "reply_is_event": self.reply_is_event,
            "replayed": self.replayed,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], **changes: Any) -> FunctionResult:
        """Rebuild a result from `to_dict()` output (the idempotency store keeps those)."""
        fields = {k: v for k, v in values.items() if k in _RESULT_FIELDS}
        if fields.get("error_kind") is not None:
            fields["error_kind"] = ErrorKind.of(fields["error_kind"])
        fields.update(changes)
        return cls(**fields, _output_cid=values.get("output_cid"))

    @classmethod
    def failure(cls, error: str, kind: ErrorKind, **fields: Any) -> FunctionResult:
        return cls(success=False, error=error, error_kind=kind, **fields)


_RESULT_FIELDS = frozenset(FunctionResult.__dataclass_fields__) - {"_output_cid"}


class FunctionPlugin:
    """Base class of every governed function.

    Subclasses set the class attributes and implement `handle`. Attributes are
    validated when the subclass is defined, so a bad id fails at import, not at deploy.
    """

    function_id: ClassVar[str] = ""
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = ""
    trigger_events: ClassVar[tuple[str, ...]] = ()
    emits: ClassVar[tuple[str, ...]] = ()
    gsap_required: ClassVar[bool] = False
    chronicle_enabled: ClassVar[bool] = True
    timeout: ClassVar[float | None] = None
    idempotent: ClassVar[bool] = False
    # True when the handler has no effect beyond the result it returns (it writes nothing,
    # sends nothing): nothing can happen before its records are durable, so FUNCTION_INVOKED
    # is committed with FUNCTION_COMPLETED before the reply instead of ahead of the handler.
    pure: ClassVar[bool] = False
    # True when the handler's data is itself a CloudEvent-shaped dict (specversion, id,
    # source, type, subject, time, data): the reply is that event, not an envelope around it.
    reply_is_event: ClassVar[bool] = False
    # How Knative delivers the trigger events (its Triggers' `spec.delivery`); None: as the
    # operator's flags and the Broker say.
    delivery: ClassVar[Delivery | None] = None
    # The handler's event type (a dataclass or pydantic model), read once from the event
    # parameter's annotation: `handle` receives an instance (see `govfn.event_data`).
    event_model: ClassVar[EventModel | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.function_id:  # abstract intermediates leave it empty
            cls.validate()

    @classmethod
    def validate(cls) -> None:
        """Raise ValueError naming the first attribute that is not valid."""
        validate_function_id(cls.function_id)
        if not isinstance(cls.version, str) or not _SEMVER.match(cls.version):
            raise ValueError(f"{cls.function_id}: version {cls.version!r} is not semantic (X.Y.Z)")
        cls.trigger_events = _validate_event_types("trigger_events", cls.trigger_events)
        cls.emits = _validate_event_types("emits", cls.emits)
        if len(cls.emits) > 1:
            raise ValueError(
                f"{cls.function_id}: emits {cls.emits!r}; a function replies with one event type"
            )
        if cls.timeout is not None and (
            isinstance(cls.timeout, bool)
            or not isinstance(cls.timeout, int | float)
            or cls.timeout <= 0
        ):
            raise ValueError(f"{cls.function_id}: timeout must be > 0 seconds, got {cls.timeout!r}")
        if "handle" in cls.__dict__ and "event_model" not in cls.__dict__:
            try:
                cls.event_model = event_model_of(cls.handle, skip=1)
            except TypeError as exc:
                raise ValueError(f"{cls.function_id}: event type: {exc}") from None
        if not isinstance(cls.pure, bool):
            raise ValueError(f"{cls.function_id}: pure must be True or False, got {cls.pure!r}")
        if cls.delivery is not None and not isinstance(cls.delivery, Delivery):
            raise ValueError(
                f"{cls.function_id}: delivery must be a govfn.Delivery, got {cls.delivery!r}"
            )

    async def handle(self, event: Any, context: FunctionContext) -> FunctionResult:
        raise NotImplementedError(f"{type(self).__name__}.handle")

    @property
    def reply_type(self) -> str | None:
        return self.emits[0] if self.emits else None

    def descriptor(self) -> dict[str, Any]:
        """The function's GCAP-SPEC-FUNCTION-DESCRIPTOR-0001 document."""
        body: dict[str, Any] = {
            "spec": DESCRIPTOR_SPEC,
            "function_id": self.function_id,
            "version": self.version,
            "description": self.description,
            "trigger_events": list(self.trigger_events),
            "emits": list(self.emits),
            "gsap_required": self.gsap_required,
            "chronicle_enabled": self.chronicle_enabled,
            "timeout_s": self.timeout,
            "idempotent": self.idempotent,
        }
        if self.event_model is not None:  # only when typed, like delivery below
            body["event_schema"] = self.event_model.json_schema()
        if self.pure:  # only when set: other descriptors keep their CIDs
            body["pure"] = True
        delivery = self.delivery.describe() if self.delivery is not None else None
        if delivery:  # only when set: other descriptors keep their CIDs
            body["delivery"] = delivery
        body["descriptor_cid"] = cid_of(body)
        return body

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.function_id}@{self.version}>"
