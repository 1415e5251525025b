"""The raw WSGI app: read the whole body, answer 200. The limit of gunicorn on this machine."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_OK = b"OK"
_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(_OK)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    start_response("200 OK", _HEADERS)
    return [_OK]
