"""One log line per invocation: JSON in production, a readable line with `--dev`.

Tokens and event data are never logged; only attributes that identify the invocation.
When govfn set logging up itself (`configure_logging`, JSON lines to stderr), the lines
an event loop produces in one pass are written together once the pass ends, instead of
one `LogRecord` and one write per invocation; with a host's own logging set up, every
line goes through `logging` as any other record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import TextIO

from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
from govfn.outcome import ErrorKind

log = logging.getLogger("govfn.invocations")
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)
_ROOT = logging.getLogger()


class InvocationLog:
    def __init__(self, *, readable: bool = False, logger: logging.Logger = log) -> None:
        self.readable = readable
        self.logger = logger
        self._pending: list[str] = []

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
            "outcome": "success" if result.success else str(result.error_kind or ErrorKind.ERROR),
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
            self._write(_ENCODER.encode(fields))

    def _write(self, line: str) -> None:
        stream = _own_stream(self.logger)
        if stream is None:
            self.logger.info(line)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush_to(stream, [line])
            return
        pending = self._pending
        pending.append(line)
        if len(pending) == 1:
            loop.call_soon(self._flush, stream)

    def _flush(self, stream: TextIO) -> None:
        lines, self._pending = self._pending, []
        self._flush_to(stream, lines)

    @staticmethod
    def _flush_to(stream: TextIO, lines: list[str]) -> None:
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except (OSError, ValueError):  # stderr closed or full: the lines are lost, not the work
            pass


class JsonLineFormatter(logging.Formatter):
    """Invocation lines are JSON already; other records become JSON lines too."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == log.name:
            return record.getMessage()
        line = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True)


class _OwnHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs (JSON lines to stderr)."""


def _own_stream(logger: logging.Logger) -> TextIO | None:
    """stderr, when govfn's own JSON handler is the only place the line would go."""
    if _ROOT.handlers or logger.handlers or not logger.propagate:
        return None
    parent = logger.parent
    if parent is None or len(parent.handlers) != 1 or parent.parent is not _ROOT:
        return None
    handler = parent.handlers[0]
    if type(handler) is not _OwnHandler or not isinstance(handler.formatter, JsonLineFormatter):
        return None
    if not logger.isEnabledFor(logging.INFO) or handler.level > logging.INFO:
        return None
    stream: TextIO = handler.stream
    return stream


def configure_logging(readable: bool) -> None:
    """Send govfn's logs to stderr, unless the host application has set up logging."""
    logger = logging.getLogger("govfn")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = _OwnHandler(sys.stderr)
    if readable:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonLineFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    # psycopg_pool's warnings (a connection lost, a reconnection failed) as JSON lines too
    database = logging.getLogger("psycopg")
    if not database.handlers:
        database.addHandler(handler)
        database.setLevel(logging.WARNING)
