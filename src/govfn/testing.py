"""In-process testing of a govfn app, the way Flask's `test_client` tests a Flask app."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.test import Client
from werkzeug.wrappers import Response

__all__ = ["Client", "test_client"]


def test_client(app: Callable[[dict[str, Any], Any], Iterable[bytes]]) -> Client:
    """A Werkzeug test client that calls `app` as WSGI, receivers and management alike."""
    return Client(app, Response)
