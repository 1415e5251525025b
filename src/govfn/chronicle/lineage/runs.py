"""The two kinds of run a lineage graph draws, read from FUNCTION_INVOKED and
FUNCTION_COMPLETED records (each distinct string held once: a CID many records name
costs its memory once)."""

from __future__ import annotations

from typing import Any, NamedTuple


class Invoked(NamedTuple):
    cid: str
    function_id: str
    function_version: str | None
    invocation_id: str | None
    trigger_event_kind: str | None
    trigger_event_cid: str | None
    input_cid: str | None
    event_id: str | None
    event_source: str | None
    invoked_at: str | None
    sender: dict[str, str] | None = None  # the verified sender {"iss", "sub"}, if any


class Completed(NamedTuple):
    cid: str
    function_id: str
    invocation_id: str | None
    invoked_cid: str | None
    success: bool
    duration_ms: float | None
    output_cid: str | None
    error_kind: str | None
    reply_id: str | None
    reply_source: str | None
    reply_cid: str | None
    completed_at: str | None


class Strings(dict[str, str]):
    """One object per distinct string: a CID named by several records is held once."""

    def of(self, payload: dict[str, Any], name: str, *, unique: bool = False) -> str | None:
        value = payload.get(name)
        if not isinstance(value, str) or not value:
            return None
        return value if unique else self.setdefault(value, value)


def invoked_run(cid: str, payload: dict[str, Any], strings: Strings) -> Invoked:
    text = strings.of
    return Invoked(
        strings.setdefault(cid, cid),
        text(payload, "function_id") or "",
        text(payload, "function_version"),
        text(payload, "invocation_id"),
        text(payload, "trigger_event_kind"),
        text(payload, "trigger_event_cid"),
        text(payload, "input_cid"),
        text(payload, "event_id"),
        text(payload, "event_source"),
        text(payload, "invoked_at", unique=True),
        _sender(payload),
    )


def _sender(payload: dict[str, Any]) -> dict[str, str] | None:
    sender = payload.get("sender")
    if not isinstance(sender, dict):
        return None
    return {name: str(sender[name]) for name in ("iss", "sub") if isinstance(sender.get(name), str)}


def completed_run(cid: str, payload: dict[str, Any], strings: Strings) -> Completed:
    text = strings.of
    duration = payload.get("duration_ms")
    return Completed(
        strings.setdefault(cid, cid),
        text(payload, "function_id") or "",
        text(payload, "invocation_id"),
        text(payload, "invoked_cid"),
        payload.get("success") is True,
        float(duration) if isinstance(duration, int | float) else None,
        text(payload, "output_cid"),
        text(payload, "error_kind"),
        text(payload, "reply_id"),
        text(payload, "reply_source"),
        text(payload, "reply_cid"),
        text(payload, "completed_at", unique=True),
    )
