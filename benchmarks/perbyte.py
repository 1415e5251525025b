"""Cost per byte of event data: a JSON event of 1 KiB, 100 KiB and 1 MiB, end to end and in parts.

    python -m benchmarks.perbyte [--repeat 15]

The document mixes what real event data holds: strings (some non-ASCII), integers, floats
that Python and ECMAScript write alike, integral and tiny floats they do not, nested
objects and lists. For each size, the medians of: `json.loads`, `json.dumps(sort_keys=True)`,
`rfc8785.dumps`, govfn's `canonical_json`, and a whole request: `govfn serve --function echo`
(SQLite ledger on) posting the document as a binary-mode CloudEvent and reading the reply.
The goal compares the request with `json.loads` + `json.dumps` of the same document, timed
right after it in every sample (the ratio is the median of the per-sample ratios).
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


def _ms(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def _poster(port: int, body: bytes) -> tuple[http.client.HTTPConnection, Callable[[], object]]:
    """A kept-alive connection and one request of `body` on it, as an action to time."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    numbers = iter(range(10**9))

    def post() -> None:
        connection.request(
            "POST", "/", body=body, headers=event.headers(f"perbyte-{len(body)}-{next(numbers)}")
        )
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"echo answered {response.status} for {len(body)} bytes")

    return connection, post


def measure_size(port: int, size: int, repeat: int) -> dict[str, Any]:
    """Each sample times a request and, right after it, `json.loads` and `json.dumps` of the
    same document, so that both sides of the ratio see the machine alike; the ratio is
    computed per sample and its median reported."""
    doc = document(size)
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    assert canonical_json(doc) == rfc8785.dumps(doc)
    connection, post = _poster(port, body)
    samples: dict[str, list[float]] = {}
    try:
        post()  # the connection and the server's first large read
        for _ in range(repeat):
            taken = {
                "request_ms": _ms(post),
                "json_loads_ms": _ms(lambda: json.loads(body)),
                "json_dumps_ms": _ms(lambda: json.dumps(doc, sort_keys=True, ensure_ascii=False)),
                "canonical_json_ms": _ms(lambda: canonical_json(doc)),
            }
            taken["request_vs_loads_plus_dumps"] = taken["request_ms"] / (
                taken["json_loads_ms"] + taken["json_dumps_ms"]
            )
            for key, value in taken.items():
                samples.setdefault(key, []).append(value)
    finally:
        connection.close()
    row: dict[str, Any] = {"bytes": len(body)}
    row.update({key: statistics.median(values) for key, values in samples.items()})
    row["rfc8785_ms"] = statistics.median(
        _ms(lambda: rfc8785.dumps(doc)) for _ in range(max(3, repeat // 3))
    )
    row["request_ms_per_kib"] = row["request_ms"] / (len(body) / 1024)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    spec = next(s for s in GOVFN if s.name == "govfn serve --single-process")
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
