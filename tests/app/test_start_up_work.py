"""What `create_app` opens before serving: an idempotency store only when a served function
claims its events (`idempotent=True`)."""

from __future__ import annotations

from pathlib import Path

from govfn.app import create_app
from govfn.settings import Settings


def settings_in(folder: Path) -> Settings:
    return Settings.from_env({"GOVFN_CHRONICLE": str(folder / "chronicle.db")})


def test_serving_only_functions_without_claims_opens_no_idempotency_store(
    tmp_path: Path,
) -> None:
    app = create_app(settings=settings_in(tmp_path), function_id="echo")

    assert app.runtime.idempotency is None
    assert not (tmp_path / "idempotency.db").exists()
    assert (tmp_path / "chronicle.db").exists()
    assert app.runtime.usable


def test_serving_an_idempotent_function_prepares_its_store(tmp_path: Path) -> None:
    app = create_app(settings=settings_in(tmp_path))  # the built-ins: billing claims

    assert app.runtime.idempotency is not None
    assert (tmp_path / "idempotency.db").exists()
    assert app.runtime.usable
