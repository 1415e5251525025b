"""One log line per invocation: JSON in production, a readable line with `--dev`.

Tokens and event data are never logged; only attributes that identify the invocation.
When govfn set logging up itself (`configure_logging`, JSON lines to stderr), the lines
an event loop produces in one pass are written together once the pass ends, instead of
one `LogRecord` and one write per invocation, and each line is one f-string of its
JSON-quoted values (`json_line`: the text `json` writes for the object of those fields,
without building the object); with a host's own logging set up, every line goes through
`logging` as any other record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from typing import TextIO

from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
from govfn.outcome import ErrorKind

log = logging.getLogger("govfn.invocations")
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)
_quote = json.encoder.encode_basestring_ascii  # the C function _ENCODER writes strings with
_ROOT = logging.getLogger()


class InvocationLog:
    def __init__(self, *, readable: bool = False, logger: logging.Logger = log) -> None:
        self.readable = readable
        self.logger = logger
        self._pending: list[str] = []
        self._flushing_on: asyncio.AbstractEventLoop | None = None  # the loop to flush them
        self._flushing_thread = 0  # the thread that runs it

    def __call__(
        self, plugin: FunctionPlugin | None, context: FunctionContext, result: FunctionResult
    ) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        outcome = "success" if result.success else str(result.error_kind or ErrorKind.ERROR)
        if self.readable:
            self.logger.info(
                "%s %s %.1fms event=%s/%s type=%s invocation=%s lineage=%s",
                result.function_id,
                outcome,
                result.duration_ms,
                context.event_source,
                context.event_id,
                context.trigger_event_kind,
                result.invocation_id,
                result.lineage_cid,
            )
        else:
            self._write(json_line(context, result, outcome))

    def _write(self, line: str) -> None:
        pending = self._pending
        if pending and self._flushing_thread == threading.get_ident():
            flushing_on = self._flushing_on
            if flushing_on is not None and flushing_on.is_running():
                # This thread runs that loop (one at a time), and the pass's first line
                # found the stream: this line joins it. No asyncio.get_running_loop(),
                # which makes a getpid system call.
                pending.append(line)
                return
        loop = _running_loop()
        lines = [*pending, line]  # lines of a loop stopped before it flushed them go first
        self._pending, self._flushing_on = [], None
        stream = _own_stream(self.logger)
        if stream is None:
            for each in lines:
                self.logger.info(each)
        elif loop is None:
            self._flush_to(stream, lines)
        else:
            self._pending, self._flushing_on = lines, loop
            self._flushing_thread = threading.get_ident()
            loop.call_soon(self._flush, stream)

    def _flush(self, stream: TextIO) -> None:
        lines, self._pending, self._flushing_on = self._pending, [], None
        self._flush_to(stream, lines)

    @staticmethod
    def _flush_to(stream: TextIO, lines: list[str]) -> None:
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except (OSError, ValueError):  # stderr closed or full: the lines are lost, not the work
            pass


def json_line(context: FunctionContext, result: FunctionResult, outcome: str) -> str:
    """The JSON line of one invocation, as `_ENCODER` writes the object of its fields (an
    f-string of `_quote`d values, without building the object; other values go through it)."""
    duration = result.duration_ms
    if type(duration) is float and duration - duration == 0.0:  # finite: written by repr
        try:
            return (
                f'{{"function":{_text(result.function_id)},'
                f'"invocation_id":{_text(result.invocation_id)},'
                f'"event_id":{_text(context.event_id)},'
                f'"event_source":{_text(context.event_source)},'
                f'"event_type":{_text(context.trigger_event_kind)},'
                f'"outcome":{_quote(outcome)},"duration_ms":{duration!r},'
                f'"lineage_cid":{_text(result.lineage_cid)},'
                f'"traceparent":{_text(context.traceparent)}}}'
            )
        except TypeError:  # a value that is neither text nor None
            pass
    return _ENCODER.encode(
        {
            "function": result.function_id,
            "invocation_id": result.invocation_id,
            "event_id": context.event_id,
            "event_source": context.event_source,
            "event_type": context.trigger_event_kind,
            "outcome": outcome,
            "duration_ms": duration,
            "lineage_cid": result.lineage_cid,
            "traceparent": context.traceparent,
        }
    )


def _text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


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
