"""Cost of Chronicle tree heads and proofs on large logs (stored subtree hashes).

    python -m benchmarks.proofs [--sizes 10000,100000,1000000] [--repeats 200]

For each size a real SQLite ledger is filled with FUNCTION_COMPLETED-sized records (in
commits of 1,000), then timed, median over `repeats` random positions: the tree head
(`head`), an inclusion proof by leaf index, the same by CID (which adds the lookup of
the CID's key in `cid_keys`), and a consistency proof from a random older size. Each
proof is checked with `merkle`. For comparison, what finding a CID cost before the keys
(a scan of the `cid` column) and what a proof cost before the stored hashes (hashing
every leaf: read all bodies, rebuild the tree) are timed too.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import results
from govfn.chronicle import merkle
from govfn.chronicle.ledger import Ledger
from govfn.chronicle.records import Record


def _fill(ledger: Ledger, size: int) -> list[str]:
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


def _median_ms(run: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        run()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return statistics.median(samples)


def measure(size: int, repeats: int, scratch: Path) -> dict[str, float]:
    ledger = Ledger(scratch / f"chronicle-{size}.db")
    started = time.perf_counter()
    cids = _fill(ledger, size)
    fill_s = time.perf_counter() - started
    rng = random.Random(size)
    _, head = ledger.head()

    def inclusion() -> None:
        index = rng.randrange(size)
        proof = ledger.inclusion_proof(index)
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
        ledger._connection().execute(
            "SELECT seq FROM records WHERE cid = ? ORDER BY seq LIMIT 1", (rng.choice(cids),)
        ).fetchall()

    def consistency() -> None:
        old = rng.randrange(1, size)
        proof = ledger.consistency(old)
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
        "head_ms": _median_ms(ledger.head, repeats),
        "inclusion_ms": _median_ms(inclusion, repeats),
        "inclusion_by_cid_ms": _median_ms(by_cid, repeats),
        "cid_scan_ms": _median_ms(scan_for_cid, max(5, repeats // 20)),
        "consistency_ms": _median_ms(consistency, repeats),
        "rehash_all_ms": _median_ms(rehash_all, 1),
    }
    ledger.close()
    (scratch / f"chronicle-{size}.db").unlink()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    document: dict[str, object] = {"repeats": args.repeats}
    print(
        "records   head ms  inclusion ms  by CID ms  consistency ms  "
        "CID scan ms (before)  rehash-all ms (before)"
    )
    with tempfile.TemporaryDirectory(prefix="govfn-proofs-") as scratch:
        for size in sizes:
            f = measure(size, args.repeats, Path(scratch))
            document[str(size)] = f
            print(
                f"{size:>9,} {f['head_ms']:8.3f} {f['inclusion_ms']:13.3f} "
                f"{f['inclusion_by_cid_ms']:10.3f} {f['consistency_ms']:15.3f} "
                f"{f['cid_scan_ms']:21.1f} {f['rehash_all_ms']:23.0f}   (filled in {f['fill_s']} s)"
            )
    print(f"wrote {results.save('proofs', document)}")


if __name__ == "__main__":
    main()
