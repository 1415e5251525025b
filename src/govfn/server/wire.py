"""HTTP/1.1 on the wire (RFC 9112): request heads and response heads.

Pure functions over bytes, no I/O; `govfn.server.connection` drives them (and
`govfn.server.chunked` for chunked bodies).
Anything malformed is a `WireError` carrying the 4xx to answer, never another exception:
a request line over the limit is 414, too many or too long header fields 431, everything
else 400. Header values are Latin-1 text, as WSGI has them.
"""

from __future__ import annotations

import re
import time

from govfn.percent import percent_decode

# The same limits gunicorn applies (govfn.cli.serve.HEADER_LIMITS).
MAX_REQUEST_LINE = 8190
MAX_HEADER_FIELDS = 100
MAX_FIELD_SIZE = 8190

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_METHOD = re.compile(_TOKEN)
# Header fields: a token, a colon, a value without control characters other than HTAB.
_FIELDS = re.compile(rf"(?:\r\n{_TOKEN}:[^\x00-\x08\x0a-\x1f\x7f]*)*")
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "expect"})
_TARGET = re.compile(r"[\x21-\x7e]+")


class WireError(Exception):
    """A request that cannot be read: answer `status` and close the connection."""

    def __init__(self, status: int, detail: str, attribute: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.attribute = attribute  # the part of the request at fault, when one is


class RequestHead:
    __slots__ = (
        "chunked",
        "content_length",
        "expect_continue",
        "headers",
        "keep_alive",
        "method",
        "path",
        "query",
        "target",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: str,  # as sent (RAW_URI)
        path: str,  # percent-decoded, as Latin-1 text (PATH_INFO)
        query: str,
        version: str,  # "HTTP/1.1" or "HTTP/1.0"
        headers: list[tuple[str, str]],  # lower-case name, value; in order, repeats kept
        content_length: int | None,
        chunked: bool,
        keep_alive: bool,
        expect_continue: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue

    def __repr__(self) -> str:
        return f"<RequestHead {self.method} {self.target} {self.version}>"

    def header(self, name: str) -> str | None:
        """The value of `name` (lower case); repeated fields joined with ", "."""
        values = [value for key, value in self.headers if key == name]
        return ", ".join(values) if values else None


def parse_head(head: bytes) -> RequestHead:
    """The request line and header fields before the empty line (`head` excludes it)."""
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    request_line = lines[0]
    if len(request_line) > MAX_REQUEST_LINE:
        raise WireError(414, "request line too long")
    if len(lines) - 1 > MAX_HEADER_FIELDS:
        raise WireError(431, f"more than {MAX_HEADER_FIELDS} header fields")
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise WireError(400, "malformed request line")
    method, target, version = parts
    if not _METHOD.fullmatch(method):
        raise WireError(400, "malformed method")
    if version != "HTTP/1.1" and version != "HTTP/1.0":
        raise WireError(400, "unsupported HTTP version")
    path, query = split_target(method, target)

    fields = lines[1:]
    if fields:
        if max(map(len, fields)) > MAX_FIELD_SIZE:
            raise WireError(431, "header field too long")
        if not _FIELDS.fullmatch(text, len(request_line)):
            raise WireError(400, "malformed header field")
    headers: list[tuple[str, str]] = []
    framing: dict[str, str] = {}
    hosts = 0
    for line in fields:
        name, _, value = line.partition(":")
        name = name.lower()
        value = value.strip(" \t")
        headers.append((name, value))
        if name in _FRAMING:
            framing[name] = f"{framing[name]}, {value}" if name in framing else value
        elif name == "host":
            hosts += 1
    if hosts > 1 or (hosts == 0 and version == "HTTP/1.1"):  # RFC 9112, section 3.2
        raise WireError(400, "a request needs exactly one Host field (HTTP/1.0: at most one)")
    if not framing:
        return RequestHead(
            method, target, path, query, version, headers, None, False, version == "HTTP/1.1", False
        )
    return _framed(method, target, path, query, version, headers, framing)


def _framed(
    method: str,
    target: str,
    path: str,
    query: str,
    version: str,
    headers: list[tuple[str, str]],
    framing: dict[str, str],
) -> RequestHead:
    content_length: int | None = None
    declared = framing.get("content-length")
    if declared is not None:
        lengths = {value.strip(" \t") for value in declared.split(",")}
        if len(lengths) != 1:
            raise WireError(400, "conflicting Content-Length fields")
        value = lengths.pop()
        if not value.isdigit() or not value.isascii() or len(value) > 18:
            raise WireError(400, "Content-Length is not a number")
        content_length = int(value)
    chunked = False
    transfer_encoding = framing.get("transfer-encoding")
    if transfer_encoding is not None:
        if content_length is not None:
            raise WireError(400, "both Transfer-Encoding and Content-Length")
        if transfer_encoding.strip().lower() != "chunked" or version == "HTTP/1.0":
            raise WireError(400, f"unsupported transfer coding {transfer_encoding!r}")
        chunked = True
    tokens = {token.strip() for token in framing.get("connection", "").lower().split(",")}
    keep_alive = version == "HTTP/1.1" and "close" not in tokens
    expect = framing.get("expect")
    if expect is not None and expect.lower() != "100-continue":
        raise WireError(417, f"cannot meet the expectation {expect!r}")
    expect_continue = expect is not None and version == "HTTP/1.1"
    return RequestHead(
        method,
        target,
        path,
        query,
        version,
        headers,
        content_length,
        chunked,
        keep_alive,
        expect_continue,
    )


def split_target(method: str, target: str) -> tuple[str, str]:
    """(PATH_INFO, QUERY_STRING) of a request target in origin, absolute or asterisk form."""
    if not _TARGET.fullmatch(target):
        raise WireError(400, "malformed request target")
    if target[0] != "/":
        if target == "*" and method == "OPTIONS":
            return "*", ""
        scheme, sep, rest = target.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            raise WireError(400, "malformed request target")
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    target = target.partition("#")[0]
    path, _, query = target.partition("?")
    if "%" in path:
        path = decode_path(path)
    return path, query


def decode_path(path: str) -> str:
    """The request target's path, percent-decoded, as Latin-1 text (PATH_INFO)."""
    try:
        return percent_decode(path.encode("latin-1")).decode("latin-1")
    except ValueError:
        raise WireError(400, "malformed percent-encoding in the request target") from None


# -- responses --------------------------------------------------------------------------

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_date_second = 0
_date_line = b""


def date_line() -> bytes:
    """`Date: ...\\r\\n` (RFC 9110 IMF-fixdate), formatted once a second."""
    global _date_second, _date_line
    now = int(time.time())
    if now != _date_second:
        t = time.gmtime(now)
        text = (
            f"Date: {_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT\r\n"
        )
        _date_second, _date_line = now, text.encode("ascii")
    return _date_line


def response_head(
    status: str, headers: list[tuple[str, str]], content_length: int, keep_alive: bool
) -> bytes:
    """Status line and header section; Content-Length and Connection are set here."""
    lines = [f"HTTP/1.1 {status}\r\n"]
    for name, value in headers:
        lower = name.lower()
        if lower in ("content-length", "connection", "transfer-encoding", "date"):
            continue
        lines.append(f"{name}: {value}\r\n")
    lines.append(f"Content-Length: {content_length}\r\n")
    if not keep_alive:
        lines.append("Connection: close\r\n")
    return "".join(lines).encode("latin-1") + date_line() + b"\r\n"
