"""Cost per byte of event data: a JSON event of 1 KiB, 100 KiB and 1 MiB, end to end and in parts.

    python -m benchmarks.perbyte [--repeat 15]

The document mixes what real event data holds: strings (some non-ASCII), integers, floats
that Python and ECMAScript write alike, integral and tiny floats they do not, nested
objects and lists. For each size, the medians of: `json.loads`, `json.dumps(sort_keys=True)`,
`rfc8785.dumps`, govfn's `canonical_json`, and a whole request: `govfn serve --function echo`
(SQLite ledger on) posting the document as a binary-mode CloudEvent and reading the reply.
The goal compares the request with `json.loads` + `json.dumps` of the same document.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rfc8785

from benchmarks import event, results
from benchmarks.servers import GOVFN, HOST, RunningServer
from govfn.chronicle.cid import canonical_json

SIZES = {"1 KiB": 1024, "100 KiB": 100 * 1024, "1 MiB": 1024 * 1024}


def document(size: int, seed: int = 7) -> dict[str, Any]:
    """A deterministic JSON document of about `size` bytes (compact)."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    doc: dict[str, Any] = {"kind": "usage-report", "rows": rows}
    while len(json.dumps(doc, separators=(",", ":"))) < size:
        for _ in range(max(1, (size - 200) // 2000)):
            rows.append(
                {
                    "id": rnd.randrange(10**9),
                    "customer": f"kunde-{rnd.randrange(1000)}-größe",
                    "amount": round(rnd.uniform(0, 1000), 2),
                    "quantity": float(rnd.randrange(100)),
                    "rate": rnd.random() * 1e-6,
                    "tags": [rnd.choice(["a", "b", "c", "d"]) for _ in range(3)],
                    "meta": {"region": rnd.choice(["eu", "us"]), "ok": rnd.random() < 0.9},
                }
            )
    return doc


def median_ms(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def request_ms(port: int, body: bytes, repeat: int) -> float:
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    samples = []
    try:
        for number in range(repeat):
            headers = event.headers(f"perbyte-{len(body)}-{number}")
            start = time.perf_counter()
            connection.request("POST", "/", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            samples.append((time.perf_counter() - start) * 1000)
            if response.status != 200:
                raise RuntimeError(f"echo answered {response.status} for {len(body)} bytes")
    finally:
        connection.close()
    return statistics.median(samples)


def measure_size(port: int, size: int, repeat: int) -> dict[str, Any]:
    doc = document(size)
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    assert canonical_json(doc) == rfc8785.dumps(doc)
    row: dict[str, Any] = {
        "bytes": len(body),
        "json_loads_ms": median_ms(lambda: json.loads(body), repeat),
        "json_dumps_ms": median_ms(
            lambda: json.dumps(doc, sort_keys=True, ensure_ascii=False), repeat
        ),
        "rfc8785_ms": median_ms(lambda: rfc8785.dumps(doc), max(3, repeat // 3)),
        "canonical_json_ms": median_ms(lambda: canonical_json(doc), repeat),
        "request_ms": request_ms(port, body, repeat),
    }
    row["request_ms_per_kib"] = row["request_ms"] / (len(body) / 1024)
    row["request_vs_loads_plus_dumps"] = row["request_ms"] / (
        row["json_loads_ms"] + row["json_dumps_ms"]
    )
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    spec = next(s for s in GOVFN if s.name == "govfn serve 1x8")
    measured: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="govfn-perbyte-") as scratch,
        RunningServer(spec, Path(scratch)) as server,
    ):
        server.wait_until_answering()
        for name, size in SIZES.items():
            row = measured[name] = measure_size(server.port, size, args.repeat)
            print(
                f"{name:8} {row['bytes']:>8} B  loads {row['json_loads_ms']:7.2f} ms  "
                f"dumps {row['json_dumps_ms']:7.2f}  rfc8785 {row['rfc8785_ms']:8.2f}  "
                f"canonical {row['canonical_json_ms']:7.2f}  request {row['request_ms']:8.2f} "
                f"({row['request_ms_per_kib']:.3f} ms/KiB, "
                f"{row['request_vs_loads_plus_dumps']:.2f}x loads+dumps)",
                flush=True,
            )
    path = results.save("perbyte", {"settings": {"repeat": args.repeat}, "sizes": measured})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
