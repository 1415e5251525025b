"""One log line per invocation: JSON in production, a readable line with `--dev`.

Tokens and event data are never logged; only attributes that identify the invocation.
"""

from __future__ import annotations

import json
import logging
import sys

from govfn.function import FunctionContext, FunctionPlugin, FunctionResult

log = logging.getLogger("govfn.invocations")


class InvocationLog:
    def __init__(self, *, readable: bool = False, logger: logging.Logger = log) -> None:
        self.readable = readable
        self.logger = logger

    def __call__(
        self, plugin: FunctionPlugin | None, context: FunctionContext, result: FunctionResult
    ) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        fields = {
            "function": result.function_id,
            "invocation_id": result.invocation_id,
            "event_id": context.event_id,
            "event_source": context.event_source,
            "event_type": context.trigger_event_kind,
            "outcome": "success" if result.success else (result.error_kind or "error"),
            "duration_ms": result.duration_ms,
            "lineage_cid": result.lineage_cid,
            "traceparent": context.traceparent,
        }
        if self.readable:
            self.logger.info(
                "%s %s %.1fms event=%s/%s type=%s invocation=%s lineage=%s",
                fields["function"],
                fields["outcome"],
                result.duration_ms,
                context.event_source,
                context.event_id,
                context.trigger_event_kind,
                result.invocation_id,
                result.lineage_cid,
            )
        else:
            self.logger.info(json.dumps(fields, separators=(",", ":"), ensure_ascii=True))


class JsonLineFormatter(logging.Formatter):
    """Invocation lines are JSON already; other records become JSON lines too."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == log.name:
            return record.getMessage()
        line = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True)


def configure_logging(readable: bool) -> None:
    """Send govfn's logs to stderr, unless the host application has set up logging."""
    logger = logging.getLogger("govfn")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if readable:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonLineFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
