"""`make chaos`: many seeded fault-injection runs on one PostgreSQL, one table.

    PYTHONPATH=tests python -m support.chaos --runs 20 --write .bench/results/chaos.md

Run n uses seed `--seed` + n, which draws its faults (`--faults` of them, from every kind
of `faults.KINDS`, or only `--kinds`; or `--plan` the same kinds in every run) and their
moments, the delivery order and where each attempt lands. Issue 19's run, for instance:
`--pods 4 --crs 300 --rate 0 --plan db-restart kill-same`. A run that breaks a promise
prints its story (pod logs kept) and the exit status is 1. Rerun one with `--seed S
--runs 1`.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from support.chaos.broker import RetryPolicy
from support.chaos.faults import KINDS
from support.chaos.scenario import Report, Scenario, run
from support.postgres import PostgresServer

COLUMNS = (
    "seed",
    "faults",
    "deliveries",
    "retries",
    "max delivery s",
    "executions per CR",
    "violations",
    "run s",
)


def row(report: Report) -> tuple[str, ...]:
    faults = "; ".join(
        str(f) if f.began_s is not None else f"{f.kind} (not injected)" for f in report.faults
    )
    return (
        str(report.scenario.seed),
        faults,
        str(len(report.deliveries)),
        str(report.retries),
        f"{report.max_delivery_s:.1f}",
        report.executions_range(),
        str(len(report.violations)),
        f"{report.seconds:.0f}",
    )


def table(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m support.chaos", description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1, help="seed of the first run")
    parser.add_argument("--pods", type=int, default=4)
    parser.add_argument("--crs", type=int, default=100)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--rate", type=float, default=50.0, help="deliveries begun a second (0: no limit)"
    )
    parser.add_argument("--faults", type=int, default=2, help="faults a run, drawn by seed")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, help="draw only these kinds")
    parser.add_argument("--plan", nargs="+", choices=KINDS, help="these faults in every run")
    parser.add_argument("--write", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args(argv)
    policy = RetryPolicy(retry=10, backoff_delay_s=0.2)
    database = PostgresServer().start()
    root = Path(tempfile.mkdtemp(prefix="govfn-chaos-"))
    rows: list[tuple[str, ...]] = []
    failed = 0
    try:
        for n in range(args.runs):
            seed = args.seed + n
            kinds = tuple(args.plan) if args.plan else None
            if args.kinds and not args.plan:
                rng = random.Random(f"kinds-{seed}")
                kinds = tuple(rng.choice(args.kinds) for _ in range(args.faults))
            scenario = Scenario(
                seed=seed,
                pods=args.pods,
                crs=args.crs,
                copies=args.copies,
                concurrency=args.concurrency,
                rate=args.rate or None,
                faults=kinds,
                fault_count=args.faults,
                policy=policy,
            )
            report = run(scenario, database, root)
            rows.append(row(report))
            print(" | ".join(rows[-1]), flush=True)
            if report.violations:
                failed += 1
                print(report.story(), flush=True)
            else:
                shutil.rmtree(report.logs.parent, ignore_errors=True)
    finally:
        database.destroy()
    summary = (
        f"{len(rows)} runs, {failed} with violations; {args.pods} pods, {args.crs} CRs x"
        f" {args.copies} deliveries, {args.concurrency} at once,"
        f" {f'{args.rate:g} a second at most' if args.rate else 'no rate limit'};"
        f" broker retry {policy.retry}, exponential from {policy.backoff_delay_s} s,"
        f" Retry-After up to {policy.retry_after_max_s:g} s ({datetime.now(UTC):%Y-%m-%d})"
    )
    text = f"{summary}\n\n{table(rows)}\n"
    print("\n" + text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
