"""Settings: one dataclass, read from the environment in one place (`Settings.from_env`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from govfn.chronicle.client import ChronicleClient, LedgerChronicle
from govfn.chronicle.ledger import Ledger


@dataclass(frozen=True, slots=True)
class Settings:
    functions: tuple[str, ...] = ()
    chronicle_path: Path = Path("var/chronicle.db")
    chronicle_sync: str = "normal"
    spool_dir: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        functions = tuple(m.strip() for m in env.get("GOVFN_FUNCTIONS", "").split(",") if m.strip())
        chronicle = Path(env.get("GOVFN_CHRONICLE", "var/chronicle.db"))
        spool = env.get("GOVFN_CHRONICLE_SPOOL")
        return cls(
            functions=functions,
            chronicle_path=chronicle,
            chronicle_sync=env.get("GOVFN_CHRONICLE_SYNC", "normal").lower(),
            spool_dir=Path(spool) if spool else chronicle.parent / "spool",
        )

    def with_functions(self, modules: tuple[str, ...]) -> Settings:
        """Modules named on the command line win over GOVFN_FUNCTIONS."""
        if not modules:
            return self
        return replace(self, functions=modules)

    def ledger(self) -> Ledger:
        return Ledger(self.chronicle_path, sync=self.chronicle_sync)

    def chronicle_client(self) -> ChronicleClient:
        return LedgerChronicle(self.ledger())
