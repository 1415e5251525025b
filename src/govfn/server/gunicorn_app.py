"""`govfn serve` under gunicorn's arbiter: a gunicorn application serving a built `GovfnApp`
with the options `govfn serve` chose (`--single-process` runs without it, see
`govfn.server.single_process`)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from govfn.app import GovfnApp


class GunicornServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: GovfnApp, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self) -> GovfnApp:
        return self.application
