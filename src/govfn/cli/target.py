"""Where `govfn send` posts: one HTTP(S) origin and path (`Target`), the reply as received
(`Reply`), one POST on a keep-alive connection (`post`), and a connection failure as one
line. No CloudEvents here: `send` encodes with the SDK, `load_check` repeats the posts."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

import click


@dataclass(frozen=True, slots=True)
class Target:
    """Where events go: one HTTP(S) origin and a path."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise click.BadParameter(f"{url!r} has an invalid port", param_hint="URL") from None
        path = parts.path or "/"
        return cls(
            parts.scheme, parts.hostname, port, path + ("?" + parts.query if parts.query else "")
        )

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            import ssl

            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


def post(
    connection: http.client.HTTPConnection, target: Target, headers: dict[str, str], body: bytes
) -> Reply:
    connection.request("POST", target.path, body=body, headers=headers)
    answer = connection.getresponse()
    content = answer.read()
    return Reply(
        answer.status, answer.reason, {k.lower(): v for k, v in answer.getheaders()}, content
    )


def connection_error(target: Target, exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot reach {target.scheme}://{target.host}:{target.port}: {reason}"
