"""Problem details (RFC 9457): every refusal is `application/problem+json` naming its cause."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    417: "Expectation Failed",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def reason(status: int) -> str:
    return _TITLES.get(status, "Error")


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
