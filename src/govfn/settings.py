"""Settings: one record, read from the environment in one place (`Settings.from_env`) and
validated there; nothing is built here (`assembly` builds what a process runs from them).

This is the only module that reads `os.environ`; the serving options (`HttpConfig`), the
command line and the factory receive their values from a `Settings`.

GOVFN_FUNCTIONS          comma-separated modules defining functions
GOVFN_FUNCTION           single-function mode: `POST /` is this function's receiver
GOVFN_DEV                1/true/yes: open the direct-invoke API to loopback clients, log
                         readably (the `--dev` option also reloads and binds loopback)
GOVFN_API_TOKEN          bearer token that opens the direct-invoke API
GOVFN_MAX_BODY_BYTES, GOVFN_MAX_IN_FLIGHT, GOVFN_RETRY_AFTER, GOVFN_REQUEST_TIMEOUT
                         serving limits (integers; unset: the defaults of HttpConfig)
PORT                     the port `govfn serve` binds (Knative sets it)
GOVFN_CHRONICLE          ledger file (default ./var/chronicle.db), or a PostgreSQL URI
                         (postgresql://... or postgres://..., ?host=/dir for a Unix socket):
                         then the pod-local folder var/ holds only the spool
GOVFN_CHRONICLE_SYNC     normal (default; survives process kills) | full (fsync per commit);
                         SQLite only: on PostgreSQL the database's synchronous_commit rules
GOVFN_CHRONICLE_SPOOL    where records a failing Chronicle could not take are kept
GOVFN_IDEMPOTENCY        idempotency store: a file, or a libpq URI (postgresql://...);
                         default: beside a ledger file, or the ledger's database for a URI
GOVFN_IDEMPOTENCY_TTL_S  how long a stored result answers redeliveries (default 7 days)
K_SINK, K_CE_OVERRIDES, K_CA_CERTS   set by Knative's SinkBinding: records also go there
GOVFN_SINK_TOKEN_FILE    the OIDC token sent to K_SINK, read for each request
                         (default /oidc/token, where the SinkBinding mounts it; no file: none)
GOVFN_SINK_CA_DIR        more CA bundles (*.crt) for an https K_SINK
                         (default /knative-custom-certs, where Knative mounts them)
GOVFN_CHRONICLE_SIGNING_KEY   file holding a signed-note signer key (PRIVATE+KEY+...): a
                              serving process then signs checkpoints of its log (on
                              PostgreSQL: of each log it writes)
GOVFN_CHRONICLE_ORIGIN        the checkpoints' origin line (default: the key's name; on
                              PostgreSQL each log's is <origin>/<log id>)
GOVFN_CHRONICLE_CHECKPOINT_INTERVAL_S   how often they are signed (default 60)
GOVFN_OPENLINEAGE_URL         an OpenLineage backend: RunEvents go live to <url>/api/v1/lineage
                              (SQLite Chronicle)
GOVFN_NAMESPACE               their job namespace (the deployment's; default govfn)
OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT   ask for traces (govfn[otel])
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from govfn.chronicle.backends import chronicle_backend
from govfn.idempotency import DEFAULT_EXPIRY_S
from govfn.identity import OidcConfig

if TYPE_CHECKING:
    from govfn.chronicle.signing.note import Signer
    from govfn.chronicle.signing.witnesses import Witness

DEFAULT_CHRONICLE = "var/chronicle.db"


class Settings(NamedTuple):
    functions: tuple[str, ...] = ()
    chronicle_path: Path = Path(DEFAULT_CHRONICLE)  # with a URI: where pod-local files go
    chronicle_uri: str | None = None
    chronicle_sync: str = "normal"
    spool_dir: Path | None = None
    idempotency_location: str | None = None  # GOVFN_IDEMPOTENCY as given: a file or a URI
    idempotency_ttl_s: float = DEFAULT_EXPIRY_S
    sink_url: str | None = None
    sink_extensions: Mapping[str, str] = MappingProxyType({})
    sink_ca_certs: str | None = None
    sink_token_file: Path | None = None  # None: where the SinkBinding mounts it
    sink_ca_dir: Path | None = None  # None: where Knative mounts the bundles
    function_id: str | None = None
    dev: bool = False
    api_token: str | None = None
    max_body_bytes: int | None = None
    max_in_flight: int | None = None
    retry_after_s: int | None = None
    request_timeout_s: int | None = None
    port: str | None = None  # as given: `govfn serve` checks it as it checks --port
    signing_key_path: Path | None = None
    chronicle_origin: str | None = None
    checkpoint_interval_s: float = 60.0
    witnesses: tuple[Witness, ...] = ()  # GOVFN_CHRONICLE_WITNESSES: cosign each checkpoint
    traces: bool = False
    # OTEL_* and K_SERVICE, for govfn.observability.tracing (the OpenTelemetry SDK reads
    # the variables it knows itself as well)
    telemetry: Mapping[str, str] = MappingProxyType({})
    openlineage_url: str | None = None
    namespace: str = "govfn"
    oidc: OidcConfig | None = None  # GOVFN_OIDC_*: verify who sends each event

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the environment; ValueError names the variable that is wrong."""
        env = os.environ if environ is None else environ
        functions = tuple(m.strip() for m in env.get("GOVFN_FUNCTIONS", "").split(",") if m.strip())
        chronicle_value = env.get("GOVFN_CHRONICLE") or DEFAULT_CHRONICLE
        uri = chronicle_value if chronicle_backend(chronicle_value) == "postgres" else None
        chronicle = Path(DEFAULT_CHRONICLE if uri else chronicle_value)
        spool = env.get("GOVFN_CHRONICLE_SPOOL")
        idempotency = env.get("GOVFN_IDEMPOTENCY")
        sync = env.get("GOVFN_CHRONICLE_SYNC", "normal").lower()
        if sync not in ("normal", "full"):
            raise ValueError(f"GOVFN_CHRONICLE_SYNC must be normal or full, got {sync!r}")
        try:
            ttl = float(env.get("GOVFN_IDEMPOTENCY_TTL_S", DEFAULT_EXPIRY_S))
        except ValueError:
            raise ValueError("GOVFN_IDEMPOTENCY_TTL_S must be a number of seconds") from None
        try:
            interval = float(env.get("GOVFN_CHRONICLE_CHECKPOINT_INTERVAL_S", 60.0))
        except ValueError:
            interval = -1.0
        if not interval > 0:
            raise ValueError("GOVFN_CHRONICLE_CHECKPOINT_INTERVAL_S must be a positive number")
        signing_key = env.get("GOVFN_CHRONICLE_SIGNING_KEY")
        witnesses: tuple[Witness, ...] = ()
        if env.get("GOVFN_CHRONICLE_WITNESSES", "").strip():
            from govfn.chronicle.signing.witnesses import parse_witnesses

            witnesses = tuple(parse_witnesses(env["GOVFN_CHRONICLE_WITNESSES"]))
        return cls(
            functions=functions,
            chronicle_path=chronicle,
            chronicle_uri=uri,
            chronicle_sync=sync,
            spool_dir=Path(spool) if spool else chronicle.parent / "spool",
            idempotency_location=idempotency or None,
            idempotency_ttl_s=ttl,
            sink_url=env.get("K_SINK") or None,
            sink_extensions=parse_ce_overrides(env.get("K_CE_OVERRIDES")),
            sink_ca_certs=env.get("K_CA_CERTS") or None,
            sink_token_file=_optional_path(env, "GOVFN_SINK_TOKEN_FILE"),
            sink_ca_dir=_optional_path(env, "GOVFN_SINK_CA_DIR"),
            function_id=env.get("GOVFN_FUNCTION") or None,
            dev=env.get("GOVFN_DEV", "").lower() in ("1", "true", "yes"),
            api_token=env.get("GOVFN_API_TOKEN") or None,
            max_body_bytes=_optional_int(env, "GOVFN_MAX_BODY_BYTES"),
            max_in_flight=_optional_int(env, "GOVFN_MAX_IN_FLIGHT"),
            retry_after_s=_optional_int(env, "GOVFN_RETRY_AFTER"),
            request_timeout_s=_optional_int(env, "GOVFN_REQUEST_TIMEOUT"),
            port=env.get("PORT") or None,
            signing_key_path=Path(signing_key) if signing_key else None,
            chronicle_origin=env.get("GOVFN_CHRONICLE_ORIGIN") or None,
            checkpoint_interval_s=interval,
            witnesses=witnesses,
            traces=traces_requested(env),
            oidc=OidcConfig.from_env(env),
            telemetry=MappingProxyType(
                {k: v for k, v in env.items() if k.startswith("OTEL_") or k == "K_SERVICE"}
            ),
            openlineage_url=env.get("GOVFN_OPENLINEAGE_URL") or None,
            namespace=env.get("GOVFN_NAMESPACE", "").strip() or "govfn",
        )

    def with_functions(self, modules: tuple[str, ...]) -> Settings:
        """Modules named on the command line win over GOVFN_FUNCTIONS."""
        return self._replace(functions=modules) if modules else self

    @property
    def chronicle_location(self) -> str:
        """GOVFN_CHRONICLE as given: the ledger file or the database URI."""
        return self.chronicle_uri or str(self.chronicle_path)

    def idempotency_target(self, chronicle: str | None = None) -> str:
        """Where the idempotency store of the ledger at `chronicle` (default GOVFN_CHRONICLE)
        lives: GOVFN_IDEMPOTENCY, else the ledger's own database, else a file beside it."""
        if self.idempotency_location:
            return self.idempotency_location
        chronicle = chronicle or self.chronicle_location
        if chronicle_backend(chronicle) == "postgres":
            return chronicle
        return str(Path(chronicle).parent / "idempotency.db")


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    text = env.get(name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None


def _optional_path(env: Mapping[str, str], name: str) -> Path | None:
    text = env.get(name)
    return Path(text) if text else None


def read_signer(path: Path, variable: str = "GOVFN_CHRONICLE_SIGNING_KEY") -> Signer:
    """The signer key in `path`; ValueError names the file and what is wrong with it."""
    from govfn.chronicle.signing.note import NoteError, Signer

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{variable}: cannot read {str(path)!r}: {exc}") from None
    try:
        return Signer.from_key(text)
    except NoteError as exc:
        raise ValueError(f"{variable}: {str(path)!r}: {exc}") from None


def traces_requested(env: Mapping[str, str]) -> bool:
    """Whether the standard OpenTelemetry variables ask for traces: an exporter other than
    `none`, or an OTLP endpoint, and the SDK not disabled."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def parse_ce_overrides(text: str | None) -> dict[str, str]:
    """Extensions from K_CE_OVERRIDES (`{"extensions": {...}}`); ValueError names the problem."""
    if not text:
        return {}
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"K_CE_OVERRIDES is not JSON: {exc}") from None
    extensions = document.get("extensions", {}) if isinstance(document, dict) else None
    if not isinstance(extensions, dict):
        raise ValueError("K_CE_OVERRIDES must be an object with an 'extensions' object")
    result: dict[str, str] = {}
    for name, value in extensions.items():
        if not isinstance(name, str) or not name.isalnum() or not name.islower():
            raise ValueError(f"K_CE_OVERRIDES: extension name {name!r} is not [a-z0-9]+")
        result[name] = value if isinstance(value, str) else json.dumps(value)
    return result


def terminal_columns() -> int:
    """What `shutil.get_terminal_size().columns` says, without importing shutil: COLUMNS,
    else the terminal's width, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80
