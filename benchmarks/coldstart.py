"""Cold start: wall time from spawning a server to its first 2xx answer to the CloudEvent POST.

    python -m benchmarks.coldstart [--samples 25] [--only NAME ...]

Bytecode first, as a container image has it: pip compiled every venv's packages when it
installed them, and govfn's own tree (installed editable) and the peers' apps are compiled here
with `compileall`. For each server: one spawn that is not counted (it writes bytecode caches
and warms the page cache, as a reused image would have them), then `--samples` spawns, each on
a fresh port and scratch directory, timed from `Popen` to the first 2xx; the median is
reported. The samples go round the servers in turn (one of each, then the next), so that a
burst of other work on the machine touches every server alike.
"""

from __future__ import annotations

import argparse
import compileall
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import report, results
from benchmarks.servers import REPO, RunningServer, ServerFailed, ServerSpec, all_servers, select


def compile_sources() -> None:
    """Bytecode for govfn's tree and the peers' apps, as an image build writes it."""
    for tree in (REPO / "src", REPO / "benchmarks"):
        if not compileall.compile_dir(tree, quiet=1, workers=0):
            raise SystemExit(f"compileall failed under {tree}")


def spawn_to_first_answer(spec: ServerSpec) -> float:
    """Seconds from spawn to the first 2xx answer; the server is stopped afterwards."""
    with (
        tempfile.TemporaryDirectory(prefix="govfn-cold-") as scratch,
        RunningServer(spec, Path(scratch)) as server,
    ):
        return server.wait_until_answering(deadline_s=30.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=25)
    parser.add_argument("--only", nargs="*", help="servers whose name or kind contains these")
    args = parser.parse_args(argv)

    compile_sources()
    measured: dict[str, Any] = {}
    samples: dict[str, list[float]] = {}
    servers = select(args.only, all_servers())
    for number in range(args.samples + 1):  # the first pass is not counted
        for spec in servers:
            if spec.name in measured:  # it failed before
                continue
            try:
                seconds = spawn_to_first_answer(spec)
            except ServerFailed as exc:
                print(f"{spec.name} failed: {exc}", file=sys.stderr)
                measured[spec.name] = {"kind": spec.kind, "error": str(exc)}
                continue
            if number:
                samples.setdefault(spec.name, []).append(seconds * 1000)
    for spec in servers:
        if spec.name in measured:
            continue
        taken = samples[spec.name]
        median = results.median(taken)
        measured[spec.name] = {"kind": spec.kind, "samples_ms": taken, "median_ms": median}
        shown = ", ".join(f"{s:.0f}" for s in taken)
        print(f"{spec.name:34} median {median:6.0f} ms   ({shown})", flush=True)

    path = results.save("coldstart", {"samples": args.samples, "servers": measured})
    print(f"\nwrote {path}\n")
    print(report.http_table(results.load("http")))


if __name__ == "__main__":
    main()
