"""The Chronicle as C2SP tlog-tiles: paths, what each checkpointed size publishes, the
served files read by an independent client (`support.spec_tiles`, from the spec alone)
over a real `govfn serve` on loopback, 404s that say why, the same tiles on both
backends, and `govfn chronicle tiles --out` writing the same bytes, incrementally."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from govfn.app import GovfnApp, create_app
from govfn.chronicle import Ledger, Record
from govfn.chronicle.postgres.ledger import PostgresLedger
from govfn.chronicle.signing.note import Signer
from govfn.chronicle.signing.witness import log_origin, sign_checkpoint
from govfn.chronicle.tiles import (
    TileError,
    TileRequest,
    bundle,
    checkpointed_sizes,
    format_index,
    parse_tile_path,
    published,
    read_tile,
    tile_paths,
)
from govfn.cli.group import cli
from govfn.settings import Settings

from support.http_server import Server, start_server, stop_server
from support.ledgers import BOTH_BACKENDS, AnyLedger
from support.spec_tiles import audit, http_fetch

ORIGIN = "govfn.example/tiles"
SIZES = (100, 300, 549)
TOKEN = "audit-token"
AUTHORIZED = {
    "Authorization": f"Bearer {TOKEN}"
}  # a partial bundle each; 549 = two full tiles and a partial


def make(n: int, start: int = 0) -> list[Record]:
    return [Record.build("TEST", {"n": i, "pad": "x" * (i % 50)}) for i in range(start, n)]


def fill(ledger: AnyLedger, signer: Signer, sizes: tuple[int, ...] = SIZES) -> None:
    """Append records and sign a checkpoint at each size."""
    done = 0
    for size in sizes:
        ledger.append(make(size, done))
        done = size
        if isinstance(ledger, Ledger):
            sign_checkpoint(ledger, signer, ORIGIN)
        else:
            for name, log in ledger.audited_logs():
                sign_checkpoint(log, signer, log_origin(ORIGIN, name))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, signer: Signer) -> Iterator[Server]:
    """A real server over a SQLite ledger of 549 records signed at 100, 300 and 549."""
    tmp = tmp_path_factory.mktemp("tiles")
    with Ledger(tmp / "chronicle.db") as ledger:
        fill(ledger, signer)
    server = start_server(
        tmp, "--functions", "govfn.functions", "--threads", "2", env={"GOVFN_API_TOKEN": TOKEN}
    )
    yield server
    stop_server(server)


def get(url: str, token: str | None = TOKEN) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=10
        ) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_tile_indexes_are_3_digit_groups_and_paths_round_trip() -> None:
    assert format_index(0) == "000"
    assert format_index(1234067) == "x001/x234/067"
    assert format_index(1000) == "x001/000"
    for path, request in [
        ("tile/0/x001/x234/067", TileRequest(0, 1234067, 256)),
        ("tile/entries/002.p/37", TileRequest(None, 2, 37)),
        ("tile/3/x001/000.p/255", TileRequest(3, 1000, 255)),
    ]:
        assert parse_tile_path(path) == request
        assert request.path() == path
    for bad in [
        "tile/0/1",
        "tile/0/x000/001",
        "tile/01/000",
        "tile/64/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/07",
        "tile/0/001/002",
        "tiles/0/000",
        "tile/data/000",
    ]:
        with pytest.raises(TileError):
            parse_tile_path(bad)


def test_a_tree_of_70000_publishes_what_the_spec_lists() -> None:
    # tlog-tiles: "273 full level 0 tiles, one partial level 0 tile of width 112, one full
    # level 1 tile, one partial level 1 tile of width 17, and one partial level 2 tile of
    # width 1"; and a tree of 256: a full level 0 tile and a partial level 1 tile of width 1.
    paths = tile_paths(70_000, [])
    hash_tiles = [p for p in paths if p.level is not None]
    assert sum(1 for p in hash_tiles if p.level == 0 and not p.partial) == 273
    assert [p for p in hash_tiles if p.partial] == [
        TileRequest(0, 273, 112),
        TileRequest(1, 1, 17),
        TileRequest(2, 0, 1),
    ]
    assert TileRequest(1, 0, 256) in hash_tiles
    assert TileRequest(None, 273, 112) in paths and TileRequest(None, 272, 256) in paths
    small = tile_paths(256, [256])
    assert small == [TileRequest(None, 0, 256), TileRequest(0, 0, 256), TileRequest(1, 0, 1)]


def test_an_independent_client_rebuilds_the_served_log(served: Server, signer: Signer) -> None:
    status, headers, body = get(served.url + "/chronicle/logs")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == [
        {"origin": ORIGIN, "size": 549, "prefix": "/chronicle/logs/default/"}
    ]
    prefix = served.url + "/chronicle/logs/default/"
    result = audit(http_fetch(prefix, AUTHORIZED), signer.verifier().encode())
    assert (result.origin, result.size, len(result.entries)) == (ORIGIN, 549, 549)
    assert "tile/1/000.p/2" in result.fetched and "tile/entries/002.p/37" in result.fetched
    # an entry is the record's canonical JSON
    assert [json.loads(e)["n"] for e in result.entries] == list(range(549))


def test_partial_tiles_of_every_checkpointed_size_are_served(served: Server) -> None:
    prefix = served.url + "/chronicle/logs/default/"
    for path, length in [
        ("tile/0/000.p/100", 3200),  # size 100
        ("tile/0/001.p/44", 1408),  # size 300
        ("tile/1/000.p/1", 32),  # size 300 (and 256..511)
        ("tile/0/002.p/37", 1184),  # size 549
    ]:
        status, headers, body = get(prefix + path)
        assert (status, len(body)) == (200, length), path
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert headers["Content-Type"] == "application/octet-stream"
    status, _, body = get(prefix + "tile/entries/000.p/100")
    assert status == 200 and len(body) > 200
    status, headers, body = get(prefix + "checkpoint")
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=5"
    assert body.decode().startswith(f"{ORIGIN}\n549\n")


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("tile/0/000.p/101", "not published"),  # no checkpoint of size 101
        ("tile/0/003", "not published"),  # beyond the log
        ("tile/1/000", "not published"),  # needs 65,536 leaves
        ("tile/0/1", "3-digit groups"),
        ("tile/entries/002.p/38", "not published"),
    ],
)
def test_what_no_checkpoint_publishes_is_a_404_saying_so(
    served: Server, path: str, says: str
) -> None:
    status, headers, body = get(served.url + "/chronicle/logs/default/" + path)
    assert status == 404 and headers["Content-Type"] == "application/problem+json"
    assert says in json.loads(body)["detail"]
    status, _, body = get(served.url + "/chronicle/logs/7/checkpoint")
    assert status == 404 and "no Chronicle log '7'" in json.loads(body)["detail"]


@pytest.fixture
def unsigned_app(tmp_path: Path) -> Iterator[GovfnApp]:
    with Ledger(tmp_path / "c.db") as ledger:
        ledger.append(make(10))
    env = {
        "GOVFN_CHRONICLE": str(tmp_path / "c.db"),
        "GOVFN_FUNCTIONS": "govfn.functions",
        "GOVFN_DEV": "1",
    }
    app = create_app(settings=Settings.from_env(env))
    yield app
    app.loop.stop()


@pytest.mark.parametrize(
    "path",
    ["/chronicle/logs", "/chronicle/logs/default/checkpoint", "/chronicle/logs/default/tile/0/000"],
)
def test_reading_the_log_needs_the_token_as_lineage_does(served: Server, path: str) -> None:
    status, headers, body = get(served.url + path, token=None)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert "the Chronicle's tiles and proofs needs Authorization" in json.loads(body)["detail"]
    status, _, body = get(served.url + path, token="wrong")
    assert status == 403 and "not valid" in json.loads(body)["detail"]
    assert get(served.url + "/chronicle/proofs/bafyany", token=None)[0] == 401


def test_a_log_with_no_signed_checkpoint_serves_nothing(unsigned_app: GovfnApp) -> None:
    client = unsigned_app.test_client()
    assert client.get("/chronicle/logs").get_json() == []
    for path in ("checkpoint", "tile/0/000.p/10", "tile/entries/000.p/10"):
        answer = client.get("/chronicle/logs/default/" + path)
        assert answer.status_code == 404
        assert "has no signed checkpoint" in answer.get_json()["detail"]


def test_a_checkpoint_signed_by_another_process_is_served_at_once(
    tmp_path: Path, signer: Signer
) -> None:
    with Ledger(tmp_path / "c.db") as ledger:
        fill(ledger, signer, (10,))
        env = {
            "GOVFN_CHRONICLE": str(tmp_path / "c.db"),
            "GOVFN_FUNCTIONS": "govfn.functions",
            "GOVFN_DEV": "1",
        }
        app = create_app(settings=Settings.from_env(env))
        try:
            client = app.test_client()
            assert client.get("/chronicle/logs/default/tile/0/000.p/10").status_code == 200
            ledger.append(make(20, 10))
            sign_checkpoint(ledger, signer, ORIGIN)  # as the CLI or another worker would
            assert client.get("/chronicle/logs/default/tile/0/000.p/20").status_code == 200
        finally:
            app.loop.stop()


def test_an_entry_over_65535_bytes_is_refused_naming_it() -> None:
    assert bundle([b"a", b"bc"]) == b"\x00\x01a\x00\x02bc"
    with pytest.raises(TileError, match="entry 257 is 65536 bytes"):
        bundle([b"a", b"x" * 65_536], first=256)


@BOTH_BACKENDS
def test_both_backends_serve_the_same_tiles_for_the_same_records(
    ledger: AnyLedger, signer: Signer, tmp_path: Path
) -> None:
    fill(ledger, signer, (300,))
    ((_, log),) = ledger.audited_logs()
    with Ledger(tmp_path / "reference.db") as reference:
        fill(reference, signer, (300,))
        expected = published(reference)
        got = published(log)
        assert expected is not None and got is not None
        assert got.checkpoint.root == expected.checkpoint.root
        for request in tile_paths(expected.size, checkpointed_sizes(reference)):
            assert read_tile(log, request, got) == read_tile(reference, request, expected)


def test_tiles_out_writes_the_served_bytes_and_then_only_what_is_new(
    served: Server, signer: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOVFN_CHRONICLE", raising=False)
    out = tmp_path / "static"
    first = CliRunner().invoke(
        cli, ["chronicle", "tiles", "--ledger", str(served.ledger), "--out", str(out)]
    )
    assert first.exit_code == 0, first.output
    assert "tree size 549, 12 files written, 0 already there" in first.output
    prefix = served.url + "/chronicle/logs/default/"
    files = sorted(p for p in (out / "default").rglob("*") if p.is_file())
    assert len(files) == 13  # 12 tiles and bundles, and the checkpoint
    for path in files:
        relative = path.relative_to(out / "default").as_posix()
        assert get(prefix + relative)[2] == path.read_bytes(), relative
    # the static copy is a log a client reads like the served one
    result = audit(lambda p: (out / "default" / p).read_bytes(), signer.verifier().encode())
    assert result.size == 549
    again = CliRunner().invoke(
        cli, ["chronicle", "tiles", "--ledger", str(served.ledger), "--out", str(out)]
    )
    assert "0 files written, 12 already there" in again.output


def test_tiles_out_refuses_a_ledger_with_no_signed_checkpoint(tmp_path: Path) -> None:
    with Ledger(tmp_path / "c.db") as ledger:
        ledger.append(make(3))
    result = CliRunner().invoke(
        cli,
        ["chronicle", "tiles", "--ledger", str(tmp_path / "c.db"), "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 1 and "no log has a signed checkpoint" in result.output


def test_each_postgresql_log_is_listed_and_served_under_its_id(
    postgres_uri: str, signer: Signer
) -> None:
    writers = [PostgresLedger(postgres_uri) for _ in range(2)]
    try:
        for count, writer in zip((300, 40), writers, strict=True):
            writer.append(make(count))
        for name, log in writers[0].audited_logs():
            sign_checkpoint(log, signer, log_origin(ORIGIN, name))  # type: ignore[arg-type]
        env = {
            "GOVFN_CHRONICLE": postgres_uri,
            "GOVFN_FUNCTIONS": "govfn.functions",
            "GOVFN_DEV": "1",
        }
        app = create_app(settings=Settings.from_env(env))
        try:
            client = app.test_client()
            listed = client.get("/chronicle/logs").get_json()
            ids = sorted(name for name, _ in writers[0].audited_logs() if name)
            assert listed == [
                {"origin": f"{ORIGIN}/{i}", "size": size, "prefix": f"/chronicle/logs/{i}/"}
                for i, size in zip(ids, (300, 40), strict=True)
            ]
            for entry in listed:
                result = audit(
                    lambda p, prefix=entry["prefix"]: client.get(prefix + p).data,
                    signer.verifier().encode(),
                )
                assert (result.origin, result.size) == (entry["origin"], entry["size"])
        finally:
            app.loop.stop()
    finally:
        for writer in writers:
            writer.close()
