"""In-process testing of a govfn app, the way Flask's `test_client` tests a Flask app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.test import Client
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from govfn.app import GovfnApp

__all__ = ["Client", "test_client"]


def test_client(app: GovfnApp) -> Client:
    """A Werkzeug test client that calls `app` as WSGI, receivers and management alike."""
    return Client(app, Response)
