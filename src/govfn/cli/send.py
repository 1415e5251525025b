"""`govfn send URL --type T`: post one CloudEvent and show the reply event.

The request is encoded by the CloudEvents SDK (`cloudevents`), an encoder independent of
govfn's own, and posted with `http.client`. `--repeat N --concurrency C` sends N events
(`govfn.cli.load_check`) and prints a latency summary instead of the reply. `--token` or
`--token-file` sends `Authorization: Bearer <token>` with each (a receiver that verifies
Knative's OIDC tokens wants one; `kubectl create token SA --audience AUD` makes one).
"""

from __future__ import annotations

import http.client
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import click

from govfn.cli.target import Reply, Target, connection_error, post

CORE_ATTRIBUTES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token


def sdk() -> tuple[Any, Any, Any]:
    """The CloudEvents SDK's event class, HTTP binding module and JSON format."""
    try:
        from cloudevents.core.bindings import http as binding
        from cloudevents.core.formats.json import JSONFormat
        from cloudevents.core.v1.event import CloudEvent
    except ImportError:
        click.echo(
            "Error: govfn send needs the CloudEvents SDK: pip install 'govfn[send]'",
            err=True,
        )
        sys.exit(1)
    return CloudEvent, binding, JSONFormat()


def parse_data(data_text: str | None, data_file: Path | None) -> Any:
    """The event data: JSON from --data or --data-file (`-` is stdin); None when neither."""
    if data_text is not None and data_file is not None:
        raise click.UsageError("give --data or --data-file, not both")
    if data_file is not None:
        try:
            text = sys.stdin.read() if str(data_file) == "-" else data_file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(
                f"cannot read {data_file}: {exc}", param_hint="--data-file"
            ) from None
        hint = "--data-file"
    elif data_text is not None:
        text, hint = data_text, "--data"
    else:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=hint) from None


def parse_token(token: str | None, token_file: Path | None) -> str | None:
    """The bearer token from --token or --token-file (`-` is stdin), stripped."""
    if token is not None and token_file is not None:
        raise click.UsageError("give --token or --token-file, not both")
    hint = "--token"
    if token_file is not None:
        hint = "--token-file"
        try:
            token = sys.stdin.read() if str(token_file) == "-" else token_file.read_text("ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {token_file}: {exc}", param_hint=hint) from None
    if token is None:
        return None
    token = token.strip()
    if not _BEARER_TOKEN.fullmatch(token):
        raise click.BadParameter(
            "not a bearer token (letters, digits and -._~+/, then = padding)", param_hint=hint
        )
    return token


def parse_extensions(values: tuple[str, ...], gsap_context: str | None) -> dict[str, str]:
    """`--extension name=value` pairs; a name must be a CloudEvents attribute name."""
    extensions: dict[str, str] = {}
    for value in values:
        name, sep, item = value.partition("=")
        if not sep:
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", param_hint="--extension")
        if not _EXTENSION_NAME.match(name):
            raise click.BadParameter(
                f"{name!r} is not a CloudEvents attribute name (1-20 of a-z, 0-9)",
                param_hint="--extension",
            )
        if name in CORE_ATTRIBUTES or name == "data":
            raise click.BadParameter(
                f"{name!r} is a core attribute, not an extension (use its own option)",
                param_hint="--extension",
            )
        extensions[name] = item
    if gsap_context is not None:
        extensions["gsapcontextid"] = gsap_context
    return extensions


class EventEncoder:
    """Builds each request's headers and body with the SDK; every call a new event id."""

    def __init__(
        self,
        event_type: str,
        source: str,
        subject: str | None,
        data: Any,
        extensions: dict[str, str],
        structured: bool,
        event_id: str | None = None,
        traceparent: str | None = None,
        token: str | None = None,
    ) -> None:
        self.event_class, self.binding, self.format = sdk()
        self.attributes: dict[str, Any] = {
            "type": event_type,
            "source": source,
            "datacontenttype": "application/json",
            **extensions,
        }
        if subject is not None:
            self.attributes["subject"] = subject
        self.data = data
        self.structured = structured
        self.event_id = event_id
        self.traceparent = traceparent
        self.token = token
        self.encode()  # refuse bad attributes before anything is sent

    def encode(self) -> tuple[dict[str, str], bytes]:
        attributes = {**self.attributes, "id": self.event_id or str(uuid.uuid4())}
        try:
            event = self.event_class(attributes=attributes, data=self.data)
        except Exception as exc:  # the SDK's CloudEventValidationError names the attribute
            details = getattr(exc, "errors", None) or exc
            raise click.BadParameter(f"the SDK refuses the event: {details}") from None
        if self.structured:
            message = self.binding.to_structured(event, self.format)
        else:
            message = self.binding.to_binary(event, self.format)
        headers = dict(message.headers)
        if self.traceparent is not None:  # HTTP's trace context, not a CloudEvents attribute
            headers["traceparent"] = self.traceparent
        if self.token is not None:
            headers["authorization"] = f"Bearer {self.token}"
        return headers, bytes(message.body)

    def reply_event(self, reply: Reply) -> Any | None:
        """The reply as an SDK CloudEvent, or None when the answer is not an event."""
        if "ce-specversion" not in reply.headers and not reply.headers.get(
            "content-type", ""
        ).startswith("application/cloudevents+json"):
            return None
        message = self.binding.HTTPMessage(reply.headers, reply.body)
        try:
            return self.binding.from_http(message, self.format)
        except Exception:  # shown as a plain body instead
            return None


def show(reply: Reply, encoder: EventEncoder) -> None:
    click.echo(f"HTTP {reply.status} {reply.reason}")
    event = encoder.reply_event(reply)
    if event is None:
        if reply.body:
            click.echo(_pretty(reply.body))
        return
    for name, value in sorted(wire_attributes(reply).items()):
        click.echo(f"{name}: {value}")
    data = event.get_data()
    if data is not None:
        click.echo("")
        click.echo(_pretty(data) if isinstance(data, bytes) else json.dumps(data, indent=2))


def wire_attributes(reply: Reply) -> dict[str, str]:
    """The reply event's attributes as sent (the SDK fills in a `time` the sender left out)."""
    content_type = reply.headers.get("content-type", "")
    if content_type.startswith("application/cloudevents+json"):
        document = json.loads(reply.body)
        return {k: str(v) for k, v in document.items() if k not in ("data", "data_base64")}
    attributes = {
        name[3:]: unquote(value) for name, value in reply.headers.items() if name.startswith("ce-")
    }
    if content_type:
        attributes["datacontenttype"] = content_type
    return attributes


def _pretty(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2)
    except ValueError:
        return body.decode("utf-8", errors="replace")


@click.command()
@click.argument("url")
@click.option("--type", "event_type", required=True, help="Event type (ce-type).")
@click.option("--source", default="/govfn/send", show_default=True, help="Event source.")
@click.option("--subject", default=None, help="Event subject.")
@click.option("--id", "event_id", default=None, help="Event id [default: a new UUID per event].")
@click.option("--data", "data_text", default=None, metavar="JSON", help="Event data as JSON.")
@click.option("--data-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Event data: a JSON file (- for stdin).")  # fmt: skip
@click.option("--mode", type=click.Choice(["binary", "structured"]), default="binary",
              show_default=True, help="CloudEvents HTTP content mode.")  # fmt: skip
@click.option("--extension", "extensions", multiple=True, metavar="NAME=VALUE",
              help="Extension attribute (repeatable).")  # fmt: skip
@click.option("--gsap-context", default=None, metavar="ID", help="GSAP context (gsapcontextid).")
@click.option("--traceparent", default=None, metavar="TP",
              help="W3C trace context of the delivery (00-TRACEID-SPANID-FLAGS).")  # fmt: skip
@click.option("--token", default=None, metavar="TOKEN",
              help="Send Authorization: Bearer TOKEN (e.g. a Knative OIDC token).")  # fmt: skip
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="As --token, read from a file (- for stdin), out of sight of ps.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=0.001), default=30.0, show_default=True,
              help="Seconds to wait for each answer.")  # fmt: skip
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Send N events (each its own id) and print a latency summary.")  # fmt: skip
@click.option("--concurrency", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Connections sending at once with --repeat.")  # fmt: skip
def send(
    url: str,
    event_type: str,
    source: str,
    subject: str | None,
    event_id: str | None,
    data_text: str | None,
    data_file: Path | None,
    mode: str,
    extensions: tuple[str, ...],
    gsap_context: str | None,
    traceparent: str | None,
    token: str | None,
    token_file: Path | None,
    timeout: float,
    repeat: int,
    concurrency: int,
) -> None:
    """Send a CloudEvent to URL and print the status, the reply's attributes and data."""
    target = Target.parse(url)
    if traceparent is not None and not _TRACEPARENT.match(traceparent):
        raise click.BadParameter(
            f"{traceparent!r} is not 00-<32 hex>-<16 hex>-<2 hex>", param_hint="--traceparent"
        )
    encoder = EventEncoder(
        event_type,
        source,
        subject,
        parse_data(data_text, data_file),
        parse_extensions(extensions, gsap_context),
        structured=mode == "structured",
        event_id=event_id,
        traceparent=traceparent,
        token=parse_token(token, token_file),
    )
    if repeat > 1:
        from govfn.cli.load_check import run_load_check

        sys.exit(run_load_check(target, encoder, repeat, concurrency, timeout))
    headers, body = encoder.encode()
    connection = target.connect(timeout)
    try:
        reply = post(connection, target, headers, body)
    except OSError as exc:
        click.echo(f"Error: {connection_error(target, exc)}", err=True)
        sys.exit(1)
    except http.client.HTTPException as exc:
        click.echo(f"Error: bad answer from {url}: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    finally:
        connection.close()
    show(reply, encoder)
    sys.exit(0 if 200 <= reply.status < 300 else 1)
