"""Cost of serving the Chronicle as tlog-tiles, of a tlog-proof, and of a witness round.

    python -m benchmarks.tiles [--size 70000] [--repeats 200] [--rounds 20]

A real SQLite ledger is filled with FUNCTION_COMPLETED-sized records (commits of 1,000)
and signed; a real `govfn serve` (one worker) serves it on loopback. Timed over one
keep-alive connection, median of `repeats` requests at random positions: the checkpoint,
a full level-0 tile, a full level-1 tile (when the log has 65,536 records), a full entry
bundle, the partial tiles of the latest size, and a record's tlog-proof. A witness round
is one add-checkpoint to the witness of the tests (`support.spec_witness`, in this
process, on loopback): the consistency proof read from the ledger, the POST, the
witness's proof check and cosignature, the cosignature's verification; `rounds` rounds,
each after 1,000 more records (the witness of the tests verifies the log's signature in
pure Python, ~7 ms of it); and alone, the consistency proof a round reads.
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import results
from govfn.chronicle.records import Record
from govfn.chronicle.signing.note import Signer
from govfn.chronicle.signing.witness import sign_checkpoint
from govfn.chronicle.signing.witnesses import cosign, parse_witnesses
from govfn.chronicle.sqlite.ledger import Ledger
from govfn.chronicle.store import LedgerError
from govfn.chronicle.tiles import TileRequest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.http_server import start_server, stop_server
from support.spec_witness import SpecWitness

ORIGIN = "bench.govfn.example/tiles"


def _records(start: int, end: int) -> list[Record]:
    return [
        Record.build(
            "FUNCTION_COMPLETED",
            {"invocation_id": f"inv-{n}", "output_cid": f"out-{n}", "pad": "x" * 400},
        )
        for n in range(start, end)
    ]


def _fill(ledger: Ledger, start: int, end: int) -> list[str]:
    cids = []
    for first in range(start, end, 1000):
        batch = _records(first, min(first + 1000, end))
        ledger.append(batch)
        cids.extend(r.cid for r in batch[::97])
    return cids


def _getter(conn: http.client.HTTPConnection) -> Callable[[str], bytes]:
    def get(path: str) -> bytes:
        conn.request("GET", path)
        answer = conn.getresponse()
        body = answer.read()
        assert answer.status == 200, (path, answer.status, body[:200])
        return body

    return get


def serving(size: int, repeats: int, scratch: Path) -> dict[str, float]:
    signer = Signer.generate(ORIGIN)
    with Ledger(scratch / "chronicle.db") as ledger:
        cids = _fill(ledger, 0, size)
        sign_checkpoint(ledger, signer, ORIGIN)
    server = start_server(scratch, "--functions", "govfn.functions", "--workers", "1", "--dev")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    get, prefix = _getter(conn), "/chronicle/logs/default/"
    full0, rng = size // 256, random.Random(1)
    timed: dict[str, Callable[[], object]] = {
        "checkpoint": lambda: get(prefix + "checkpoint"),
        "tile_level0_full": lambda: get(prefix + TileRequest(0, rng.randrange(full0), 256).path()),
        "bundle_full": lambda: get(prefix + TileRequest(None, rng.randrange(full0), 256).path()),
        "tile_level0_partial": lambda: get(prefix + TileRequest(0, full0, size % 256).path()),
        "tlog_proof": lambda: get(f"/chronicle/proofs/{rng.choice(cids)}"),
    }
    if size >= 65536:
        timed["tile_level1_full"] = lambda: get(
            prefix + TileRequest(1, rng.randrange(size // 65536), 256).path()
        )
    try:
        for run in timed.values():
            run()  # the first request builds the management app
        return {name: round(results.median_ms(run, repeats), 3) for name, run in timed.items()}
    finally:
        conn.close()
        stop_server(server)


def _signed(ledger: Ledger, signer: Signer) -> str:
    """Sign the head, again while the WAL checkpointer holds the write lock a moment."""
    for attempt in range(50):
        try:
            return sign_checkpoint(ledger, signer, ORIGIN)[1]
        except LedgerError:
            time.sleep(0.002 * attempt)
    raise RuntimeError("the ledger stayed locked")


def witness_rounds(rounds: int, scratch: Path) -> dict[str, float]:
    signer = Signer.generate(ORIGIN)
    witness = SpecWitness("bench-witness.example", {ORIGIN: signer.verifier().encode()}).start()
    (configured,) = parse_witnesses(f"{witness.vkey} {witness.url}")
    samples, proofs, known = [], [], 0
    try:
        with Ledger(scratch / "witnessed.db") as ledger:
            size = 0
            for _ in range(rounds + 1):
                _fill(ledger, size, size + 1000)
                size += 1000
                note = _signed(ledger, signer)
                started = time.perf_counter_ns()
                ledger.consistency(size - 1000, size)
                proofs.append((time.perf_counter_ns() - started) / 1e6)
                started = time.perf_counter_ns()
                _, known = cosign(configured, ledger, note, known)
                samples.append((time.perf_counter_ns() - started) / 1e6)
    finally:
        witness.stop()
    return {
        "witness_round": round(statistics.median(samples[1:]), 3),
        "witness_proof_read": round(statistics.median(proofs[1:]), 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=70_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="govfn-bench-tiles-") as scratch:
        figures = serving(args.size, args.repeats, Path(scratch))
        figures |= witness_rounds(args.rounds, Path(scratch))
    document = {"size": args.size, "repeats": args.repeats, "median_ms": figures}
    print(results.save("tiles", document))
    for name, value in figures.items():
        print(f"{name:22} {value:8.3f} ms")


if __name__ == "__main__":
    main()
