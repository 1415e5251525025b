"""Where a server spends its CPU per request: py-spy samples it while wrk loads it.

    python -m benchmarks.profile [--only "govfn serve 1x8"] [--duration 15] [--rate 400]

py-spy records the server and its forked workers with `--gil` (only the thread holding the GIL
is sampled: in a GIL-bound server that is where each request's CPU time goes) and `--function`
(frames aggregated per function). The collapsed stacks are kept under .bench/results/; the
summary shows, per part of a request (HTTP parse, decode, CIDs, records, ledger commit, log and
metrics, encode, write: `PARTS`), per function and per package, the share of samples and the
estimated µs per request (samples / rate / requests answered while sampled), both for time
spent in the frame itself (self) and below it (inclusive). Sampling pauses the process, so
throughput under the profiler is lower than in `http`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import event, results
from benchmarks.http import run_wrk
from benchmarks.servers import BENCH_DIR, REPO, RunningServer, ServerSpec, all_servers, select

_TRUNK_SHARE = 0.97
_REST = "event loop and the rest (uvloop/asyncio internals, GC)"
# The parts of a govfn request, each named by frames that begin it. A sample belongs to the
# innermost part on its stack (a CID computed inside a record counts as the record's).
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("records: FUNCTION_INVOKED/COMPLETED canonical JSON + CID", ("function_record ",)),
    (
        "ledger commit (SQLite insert, chain, tree hashes)",
        ("Ledger.append ", "LedgerChronicle._commit ", "emit_record_now "),
    ),
    ("input/output CID (canonical JSON of the data + SHA-256)", ("content_cid ", "output_cid ")),
    ("CloudEvent decode (attributes, JSON)", ("parse_request ",)),
    ("reply encode (attributes, JSON, reply id)", ("binary_reply ", "reply_identity ")),
    ("invocation log line + metrics", ("FunctionRuntime._notify ",)),
    (
        "HTTP head parse + body (govfn's parser)",
        (
            "HttpConnection.data_received ",
            "HttpConnection._process ",
            "parse_head ",
            "event_request ",
            "_read_ready",
        ),
    ),
    ("HTTP reply write (head + transport.write)", ("HttpConnection._reply ",)),
    ("request timeout (asyncio.timeout)", ("timeout (asyncio", "Timeout.")),
    (
        "runtime, receivers, group-commit wait (own frames)",
        (
            "FunctionRuntime.",
            "Receivers.",
            "Backstop.",
            "LedgerChronicle.emit_record",
            "WorkerHandler.",
            "HttpConnection._respond",
            "context_of",
            "ServerState",
            "Deadlines.",
        ),
    ),
)


def request_part(frames: list[str]) -> str:
    """The part of a request a sample's stack is in: the innermost frame that names one."""
    for frame in reversed(frames):
        for name, markers in PARTS:
            if any(marker in frame for marker in markers):
                return name
    return _REST


_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_package(frame: str) -> str:
    """A coarse owner for a frame: the top package of its file (`govfn.runtime`, `sqlite3`...)."""
    match = _FRAME.match(frame)
    path = match.group("file") if match else frame
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    parts = [p for p in path.removesuffix(".py").split("/") if p]
    if not parts:
        return frame
    if parts[0] == "govfn" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def summarise(collapsed: Path, rate: int, requests: int, top: int) -> dict[str, Any]:
    """Self and inclusive shares per function and per package, from py-spy's raw output."""
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    incl_pkg: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")[1:]  # the first entry names the process/thread
        if not frames:
            continue
        total += count
        self_fn[frames[-1]] += count
        parts[request_part(frames)] += count
        self_pkg[frame_package(frames[-1])] += count
        for frame in set(frames):
            incl_fn[frame] += count
        for package in {frame_package(f) for f in frames}:
            incl_pkg[package] += count
    per_request_us = 1e6 / rate / max(requests, 1)

    def table(counter: Counter[str], trunk: bool = True) -> list[dict[str, Any]]:
        """Top rows; without `trunk`, frames on (nearly) every stack, the event loop and
        the server's main loop, are left out: they say nothing about a request's cost."""
        rows = [
            {
                "name": name,
                "share": count / max(total, 1),
                "us_per_request": count * per_request_us,
            }
            for name, count in counter.most_common()
            if trunk or count < _TRUNK_SHARE * total
        ]
        return rows[:top]

    return {
        "samples": total,
        "requests": requests,
        "cpu_us_per_request": total * per_request_us,
        "parts": [
            {
                "name": name,
                "share": parts[name] / max(total, 1),
                "us_per_request": parts[name] * per_request_us,
            }
            for name in [*(name for name, _ in PARTS), _REST]
        ],
        "self_functions": table(self_fn),
        "inclusive_functions": table(incl_fn, trunk=False),
        "self_packages": table(self_pkg),
        "inclusive_packages": table(incl_pkg, trunk=False),
    }


def profile(spec: ServerSpec, duration_s: int, rate: int, out: Path, gil: bool = True) -> int:
    """Load `spec` with wrk while py-spy records it; returns the requests answered."""
    py_spy = shutil.which("py-spy") or str(REPO / ".venv" / "bin" / "py-spy")
    script = event.write_wrk_script(BENCH_DIR / "cloudevent.lua")
    with (
        tempfile.TemporaryDirectory(prefix="govfn-profile-") as scratch,
        RunningServer(spec, Path(scratch)) as server,
    ):
        server.wait_until_answering()
        run_wrk(script, server.port, spec.path, 3, server.headers)  # warm-up, unsampled
        assert server.process is not None
        record = ["record", "--pid", str(server.process.pid), "--subprocesses"]
        record += ["--gil"] if gil else []
        record += ["--function", "--rate", str(rate), "--duration", str(duration_s + 2)]
        recorder = subprocess.Popen(
            [py_spy, *record, "--format", "raw", "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # let py-spy attach to every process before the load starts
        summary = run_wrk(script, server.port, spec.path, duration_s, server.headers)
        try:
            _, errors = recorder.communicate(timeout=duration_s + 30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, errors = recorder.communicate()
        if recorder.returncode != 0 or not out.exists():
            raise RuntimeError(f"py-spy failed ({recorder.returncode}): {errors.decode()[-800:]}")
    # The idle second on either side of the load adds next to no samples: with --gil only
    # a thread holding the GIL is sampled, and an idle server does not hold it.
    return int(summary["requests"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=["govfn serve 1x8"])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--rate", type=int, default=400, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every running thread, not only the GIL holder: shows time spent "
        "outside the GIL too (SQLite commits, socket I/O) but counts threads waiting for it",
    )
    args = parser.parse_args(argv)

    for spec in select(args.only, all_servers()):
        slug = re.sub(r"[^a-z0-9]+", "-", spec.name.lower()).strip("-")
        slug += "-all-threads" if args.all_threads else ""
        collapsed = BENCH_DIR / "results" / f"profile-{slug}.txt"
        collapsed.parent.mkdir(parents=True, exist_ok=True)
        requests = profile(spec, args.duration, args.rate, collapsed, gil=not args.all_threads)
        summary = summarise(collapsed, args.rate, requests, args.top)
        results.save(f"profile-{slug}", {"server": spec.name, "rate": args.rate, **summary})
        what = "running-thread" if args.all_threads else "GIL-held"
        print(
            f"\n{spec.name}: {summary['samples']} {what} samples at {args.rate}/s, "
            f"{requests} requests -> {summary['cpu_us_per_request']:.0f} µs of {what} time "
            f"per request (collapsed stacks: {collapsed.relative_to(REPO)})"
        )
        for title, key in (
            ("parts of a request", "parts"),
            ("packages, inclusive", "inclusive_packages"),
            ("packages, self", "self_packages"),
            ("functions, inclusive", "inclusive_functions"),
            ("functions, self", "self_functions"),
        ):
            print(f"\n  {title}:   share   µs/request")
            for row in summary[key]:
                print(f"    {row['share']:6.1%} {row['us_per_request']:8.1f}   {row['name']}")


if __name__ == "__main__":
    main()
