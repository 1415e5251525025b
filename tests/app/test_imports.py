"""Cold start: the receiver path and `govfn serve` start-up import no heavy module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = (
    "flask", "werkzeug", "yaml", "kubernetes", "jsonschema", "govfn.manifest", "click",
    "opentelemetry", "google.protobuf", "requests", "govfn.observability.tracing",
    "prometheus_client",  # loaded a moment after a worker starts
    "govfn.management",  # the management API, on its first request
)  # fmt: skip


def imported_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules loaded after `code` runs in a new interpreter, with no OTEL_* variable
    set unless `env` sets it."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | (env or {})
    output = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=environ,
    ).stdout
    return set(json.loads(output.strip().splitlines()[-1]))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_the_receiver_modules_import_nothing_heavy() -> None:
    receiver_path = "import govfn.app, govfn.receiver.receivers, govfn.cloudevents.decode"
    assert heavy(imported_after(receiver_path)) == []


def test_serve_start_up_imports_nothing_heavy() -> None:
    code = (
        "import govfn.cli, govfn.cli.serve\n"
        "from govfn.app import create_app\n"
        "from govfn.chronicle.client import MemoryChronicle\n"
        "from govfn.registry import FunctionRegistry, load_functions\n"
        "from govfn.runtime import FunctionRuntime\n"
        "registry = load_functions((), FunctionRegistry())\n"
        "app = create_app(runtime=FunctionRuntime(registry, MemoryChronicle()))\n"
        "import io\n"
        "environ = {'REQUEST_METHOD': 'POST', 'PATH_INFO': '/', 'CONTENT_TYPE': 'application/json',"
        " 'HTTP_CE_ID': '1', 'HTTP_CE_SOURCE': '/s', 'HTTP_CE_TYPE': 'ECHO_REQUESTED',"
        " 'HTTP_CE_SPECVERSION': '1.0', 'CONTENT_LENGTH': '2', 'wsgi.input': io.BytesIO(b'{}')}\n"
        "statuses = []\n"
        "app(environ, lambda status, headers: statuses.append(status))\n"
        "assert statuses == ['200 OK'], statuses\n"
    )
    assert heavy(imported_after(code)) == []


SERVE_START_UP = (
    "import govfn.cli, govfn.cli.serve\n"
    "from govfn.app import create_app\n"
    "from govfn.settings import Settings\n"
    "app = create_app(settings=Settings.from_env())\n"
)


def test_tracing_is_imported_only_when_the_otel_variables_ask(tmp_path: Path) -> None:
    env = {"GOVFN_CHRONICLE": f"{tmp_path}/chronicle.db"}
    untraced = imported_after(SERVE_START_UP, env)
    assert [m for m in heavy(untraced) if m.startswith(("opentelemetry", "govfn.obs"))] == []
    traced = imported_after(SERVE_START_UP, env | {"OTEL_TRACES_EXPORTER": "console"})
    assert {"govfn.observability.tracing", "opentelemetry.sdk.trace"} <= traced


def test_the_sdk_core_imports_no_web_framework() -> None:
    modules = imported_after("import govfn, govfn.runtime, govfn.chronicle, govfn.functions")
    assert [m for m in modules if m.split(".")[0] in ("flask", "gunicorn", "werkzeug")] == []
    assert not any(m.startswith(("govfn.server", "govfn.management")) for m in modules)


def test_only_the_server_and_management_name_flask_or_gunicorn() -> None:
    import re
    from pathlib import Path

    import govfn

    root = Path(govfn.__file__).parent
    pattern = re.compile(r"^\s*(from|import)\s+(flask|gunicorn|werkzeug)\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
        and path.relative_to(root).parts[0] not in ("server", "management")
        and path.relative_to(root).as_posix() not in ("cli/serve.py", "testing.py")
    ]
    assert offenders == []


def test_flask_is_imported_on_the_first_management_request_only() -> None:
    code = (
        "import io, sys\n"
        "from govfn.app import create_app\n"
        "from govfn.chronicle.client import MemoryChronicle\n"
        "from govfn.registry import FunctionRegistry, load_functions\n"
        "from govfn.runtime import FunctionRuntime\n"
        "app = create_app(runtime=FunctionRuntime(load_functions((), FunctionRegistry()),"
        " MemoryChronicle()))\n"
        "def get(path):\n"
        "    out = []\n"
        "    env = {'REQUEST_METHOD': 'GET', 'PATH_INFO': path, 'QUERY_STRING': '',"
        " 'SERVER_NAME': 'x', 'SERVER_PORT': '80', 'wsgi.input': io.BytesIO(),"
        " 'wsgi.url_scheme': 'http', 'SERVER_PROTOCOL': 'HTTP/1.1'}\n"
        "    b''.join(app(env, lambda status, headers: out.append(status)))\n"
        "    return out[0]\n"
        "assert get('/health/readiness') == '200 OK'\n"
        "assert 'flask' not in sys.modules\n"
        "assert get('/functions/') == '200 OK'\n"
        "assert 'flask' in sys.modules\n"
    )
    imported_after(code)


def test_the_package_exports_what_it_documents() -> None:
    import govfn.app

    assert sorted(govfn.app.__all__) == [
        "GovfnApp", "HttpConfig", "HttpProblem", "ServerState", "create_app"
    ]  # fmt: skip
    from govfn.problem import HttpProblem
    from govfn.receiver.config import HttpConfig
    from govfn.receiver.state import ServerState

    defined_elsewhere = {
        "HttpConfig": HttpConfig,
        "HttpProblem": HttpProblem,
        "ServerState": ServerState,
    }
    for name, value in defined_elsewhere.items():
        assert getattr(govfn.app, name) is value


# Beyond HEAVY, what a plain `govfn serve` of a function without claims never needs: the
# PostgreSQL backends, sender verification and checkpoint signing (each configured apart).
UNCONFIGURED = (
    "psycopg", "jwt", "cryptography", "govfn.identity.verifier", "govfn.chronicle.postgres",
    "govfn.idempotency.postgres", "govfn.chronicle.signing", "govfn.chronicle.sink",
)  # fmt: skip


# What only gunicorn needs: `govfn serve --single-process` serves without its arbiter, so
# without gunicorn and the standard library it brings (`email` and `importlib.metadata`
# through `gunicorn.util`). `ssl` is not among them: asyncio imports it.
GUNICORN = ("gunicorn", "email", "importlib.metadata")
# Nor what start-up could do without: `tempfile` to check a folder can be written, and
# `shutil` (with the compression modules) for argparse to find the terminal's width.
START_UP_EXTRAS = ("tempfile", "shutil", "bz2", "lzma")


def test_a_served_event_leaves_the_unconfigured_features_unimported(tmp_path: Path) -> None:
    """The real process, `python -X importtime` listing every module it loaded, from start
    to the answer of one event, serving as one process: neither gunicorn nor what only it
    needs, nor a feature that is not configured."""
    from support.http_server import binary_headers, start_server, stop_server
    from support.http_wire import raw_request

    server = start_server(
        tmp_path, "--single-process", "--function", "echo", env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    try:
        answer = raw_request(server.port, "POST", "/", list(binary_headers().items()), b"{}")
    finally:
        stop_server(server)
    assert answer.status == 200, server.log_text()
    imported = {
        line.rpartition("|")[2].strip()
        for line in server.log_text().splitlines()
        if line.startswith("import time:")
    }
    assert {"govfn.cli.serve", "govfn.server.loop_server", "govfn.functions.echo"} <= imported
    unwanted = HEAVY + UNCONFIGURED + GUNICORN + START_UP_EXTRAS
    loaded = sorted(m for m in imported if any(m == u or m.startswith(f"{u}.") for u in unwanted))
    assert loaded == []
    assert not (tmp_path / "idempotency.db").exists()
