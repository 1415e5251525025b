"""Refusals a broker acts on. A receiver that is not ready never answers 400, which
Knative's broker does not retry: while starting, draining, or while a dependency does not
answer, what would be a 400 is a 503 with Retry-After, so that the broker delivers again
(to a ready pod). A type a function does not handle is answered 400 with the types it
accepts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from govfn import FunctionContext, FunctionRegistry, FunctionRuntime, governed_function
from govfn.app import GovfnApp, create_app
from govfn.chronicle import MemoryChronicle
from govfn.idempotency import SqliteIdempotencyStore
from govfn.receiver.config import HttpConfig

from support.http_server import binary_headers

HEADERS = binary_headers("T")
REQUESTS = {  # each answered 400 by a ready server
    "type no function handles": (binary_headers("NOBODY_HANDLES"), b"{}"),
    "malformed data": (HEADERS, b"{not json"),
    "missing id": ({k: v for k, v in HEADERS.items() if k != "ce-id"}, b"{}"),
}


@pytest.fixture
def blocked(tmp_path: Path) -> Path:
    """A file where the idempotency store's folder should be: the store cannot open."""
    path = tmp_path / "blocked"
    path.write_text("not a folder")
    return path


@pytest.fixture
def app(blocked: Path) -> Iterator[GovfnApp]:
    registry = FunctionRegistry()

    def handler(event: object, context: FunctionContext) -> object:
        return event

    governed_function("f", trigger_events=["T"], idempotent=True, registry=registry)(handler)
    store = SqliteIdempotencyStore(blocked / "idempotency.db")
    runtime = FunctionRuntime(registry, MemoryChronicle(), idempotency=store)
    runtime.prepare()
    app = create_app(runtime=runtime, config=HttpConfig(retry_after_s=3))
    yield app
    app.loop.stop()
    store.close()


def answers(app: GovfnApp) -> dict[str, tuple[int, str | None]]:
    client = app.test_client()
    found = {}
    for name, (headers, body) in REQUESTS.items():
        answer = client.post("/", headers=headers, data=body)
        found[name] = (answer.status_code, answer.headers.get("Retry-After"))
    return found


def test_a_store_that_does_not_answer_turns_400_into_503(app: GovfnApp, blocked: Path) -> None:
    assert not app.runtime.usable
    assert answers(app) == dict.fromkeys(REQUESTS, (503, "3"))
    detail = app.test_client().post("/", headers=HEADERS, data=b"{not json").get_json()["detail"]
    assert detail.startswith("not ready; retry later (")  # and what a ready pod would say

    blocked.unlink()  # the store answers again: the same requests get their final 400
    assert asyncio.run(app.runtime.check()) and app.runtime.usable
    assert answers(app) == dict.fromkeys(REQUESTS, (400, None))


@pytest.mark.parametrize("state", ["starting", "draining"])
def test_a_server_starting_or_draining_answers_503(
    app: GovfnApp, blocked: Path, state: str
) -> None:
    blocked.unlink()
    assert asyncio.run(app.runtime.check())
    if state == "starting":
        app.state.starting = True
    else:
        app.state.begin_draining()
    assert answers(app) == dict.fromkeys(REQUESTS, (503, "3"))
    valid = app.test_client().post("/", headers=HEADERS, data=b"{}")
    assert valid.status_code == 503  # nothing runs either


def test_a_type_the_function_does_not_handle_lists_the_accepted_types(
    app: GovfnApp, blocked: Path
) -> None:
    blocked.unlink()
    assert asyncio.run(app.runtime.check())
    answer = app.test_client().post(
        "/functions/f/events", headers=binary_headers("OTHER"), data=b"{}"
    )
    assert answer.status_code == 400
    problem = answer.get_json()
    assert problem["accepted_types"] == ["T"]
    assert problem["detail"] == "function 'f' does not handle event type 'OTHER' (it handles: T)"
    routed = app.test_client().post("/", headers=binary_headers("OTHER"), data=b"{}").get_json()
    assert routed["accepted_types"] == ["T"]
    assert routed["detail"] == "no function handles event type 'OTHER' (handled here: T)"
