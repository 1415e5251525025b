"""gunicorn's own messages (listening, worker boots and exits, timeouts, signals) in
govfn's log.

`govfn serve` keeps no access log (each invocation has its own line, see
`govfn.observability.invocation_log`) and writes to stderr only, so it does not need what
gunicorn's default logger is for (log files to reopen, syslog, statsd, logging config
files), nor the `logging.config` import that costs every cold start ~3 ms. Its arbiter
and workers log through the `govfn.gunicorn` logger instead, which `configure_logging`
sends to stderr with the other govfn lines: JSON, or readable with `--dev`.
"""

from __future__ import annotations

import logging
from typing import Any

LOGGER_NAME = "govfn.gunicorn"


class GunicornLog:
    """A gunicorn `logger_class`: the methods the arbiter and the workers call."""

    def __init__(self, cfg: Any) -> None:
        self.logger = logging.getLogger(LOGGER_NAME)
        self.setup(cfg)

    def setup(self, cfg: Any) -> None:
        self.cfg = cfg
        self.logger.setLevel(str(cfg.loglevel).upper())

    def critical(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.logger.critical(msg, *args, **kwargs)

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.logger.error(msg, *args, **kwargs)

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.logger.warning(msg, *args, **kwargs)

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.logger.info(msg, *args, **kwargs)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.logger.debug(msg, *args, **kwargs)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.logger.exception(msg, *args, **kwargs)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        self.logger.log(level, msg, *args, **kwargs)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """No access log: govfn logs each invocation itself."""

    def reopen_files(self) -> None:
        """Nothing to reopen: the lines go to stderr."""

    def close_on_exec(self) -> None:
        """No file descriptors of its own."""
