"""Problem details (RFC 9457): every refusal is `application/problem+json` naming its cause."""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"

# RFC 9110's names, where Python 3.11's `HTTPStatus` still has RFC 7231's.
_RENAMED = {413: "Content Too Large", 414: "URI Too Long", 422: "Unprocessable Content"}
_REASONS = {status.value: status.phrase for status in HTTPStatus} | _RENAMED


def reason(status: int) -> str:
    """The reason phrase of a status code: `Not Found` for 404."""
    return _REASONS.get(status, "Error")


def status_line(status: int) -> str:
    """`200 OK`, `404 Not Found`: a WSGI status (a response's status line without HTTP/1.1)."""
    return f"{status} {reason(status)}"


class HttpProblem(Exception):
    """A refusal: status, detail, and the CloudEvents attribute (or header) at fault."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        attribute: str | None = None,
        retry_after: int | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.attribute = attribute
        self.retry_after = retry_after
        self.extra_headers = list(extra_headers)
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": reason(self.status),
            "status": self.status,
            "detail": self.detail,
        }
        if self.attribute is not None:
            body["attribute"] = self.attribute
        body.update(self.extra)
        return body

    def to_bytes(self) -> bytes:
        return json.dumps(self.body(), ensure_ascii=True).encode("ascii")

    def headers(self) -> list[tuple[str, str]]:
        headers = [("Content-Type", PROBLEM_CONTENT_TYPE)]
        if self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        return headers + self.extra_headers
