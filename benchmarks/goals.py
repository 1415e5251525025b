"""govfn's performance goals, each read from the last benchmark run: the figure, the goal, met.

HTTP figures are medians over rounds of ratios taken within each round (the two servers
measured minutes apart on the same machine); the others come from the in-process, cold-start
and per-byte benchmarks of the same `make bench`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from benchmarks import results, sender_verification

SINGLE = "govfn serve --single-process"
POSTGRES = "govfn serve --single-process on PostgreSQL"


class Goal(NamedTuple):
    what: str
    value: float | None
    bound: float
    at_most: bool  # the goal is value <= bound (else value >= bound)
    unit: str = "x"

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.bound if self.at_most else self.value >= self.bound


def _named(kind: str, also: str = "") -> Callable[[dict[str, Any]], str | None]:
    def find(doc_round: dict[str, Any]) -> str | None:
        for name, m in doc_round.items():
            if m.get("kind") == kind and also in name:
                return name
        return None

    return find


_ANCHOR = _named("raw-asgi-ledger")
_LIMIT = _named("raw-asgi", "uvicorn")
_FUNC_PYTHON = _named("func-python")


def _fixed(name: str) -> Callable[[dict[str, Any]], str | None]:
    return lambda doc_round: name if name in doc_round else None


def within_rounds(
    doc: dict[str, Any],
    server: Callable[[dict[str, Any]], str | None],
    peer: Callable[[dict[str, Any]], str | None],
    key: str,
) -> float | None:
    """Median over rounds of server[key] / peer[key], both measured in the same round."""
    ratios = []
    for doc_round in doc["rounds"]:
        a, b = server(doc_round), peer(doc_round)
        if a is None or b is None:
            continue
        ma, mb = doc_round[a], doc_round[b]
        if "error" in ma or "error" in mb or not ma.get(key) or not mb.get(key):
            continue
        ratios.append(ma[key] / mb[key])
    return results.median(ratios)


def http_goals(doc: dict[str, Any]) -> list[Goal]:
    single, postgres = _fixed(SINGLE), _fixed(POSTGRES)
    return [
        Goal(
            "govfn (1 worker, SQLite): req/s vs the durable-records anchor",
            within_rounds(doc, single, _ANCHOR, "req_s"),
            0.5,
            at_most=False,
        ),
        Goal(
            "govfn: server CPU per request vs the anchor's",
            within_rounds(doc, single, _ANCHOR, "cpu_us_per_request"),
            2.0,
            at_most=True,
        ),
        Goal(
            "govfn: p99 vs the raw echo's",
            within_rounds(doc, single, _LIMIT, "p99_ms"),
            2.5,
            at_most=True,
        ),
        Goal(
            "govfn: req/s vs func-python",
            within_rounds(doc, single, _FUNC_PYTHON, "req_s"),
            1.3,
            at_most=False,
        ),
        Goal(
            "govfn on PostgreSQL: req/s vs func-python",
            within_rounds(doc, postgres, _FUNC_PYTHON, "req_s"),
            1.0,
            at_most=False,
        ),
        Goal(
            "govfn on PostgreSQL: p99 vs govfn on SQLite",
            within_rounds(doc, postgres, single, "p99_ms"),
            2.0,
            at_most=True,
        ),
        Goal(
            "sender verification on: req/s vs the same server without it",
            sender_verification.ratios(doc).get("req_s"),
            sender_verification.GOAL_X,
            at_most=False,
        ),
        Goal(
            "govfn: PSS after load vs func-python",
            within_rounds(doc, single, _FUNC_PYTHON, "pss_mb"),
            1.0,
            at_most=True,
        ),
    ]


def other_goals() -> list[Goal]:
    goals = []
    invoke = results.load("invoke")
    if invoke:
        goals.append(
            Goal(
                "`invoke()` of a no-op, ledger on, 16 at once",
                invoke.get("ledger_on_16_us"),
                40.0,
                at_most=True,
                unit=" µs",
            )
        )
        goals.append(
            Goal(
                "the same, in CPU time",
                invoke.get("ledger_on_16_cpu_us"),
                40.0,
                at_most=True,
                unit=" µs",
            )
        )
    cold = results.load("coldstart")
    if cold:
        servers = cold["servers"]
        fp = next((s for s in servers.values() if s.get("kind") == "func-python"), None)
        mine = servers.get(SINGLE)
        if fp and mine and fp.get("median_ms") and mine.get("median_ms"):
            ratio = mine["median_ms"] / fp["median_ms"]
            goals.append(Goal("govfn: cold start vs func-python", ratio, 0.85, at_most=True))
    perbyte = results.load("perbyte")
    if perbyte and "1 MiB" in perbyte["sizes"]:
        goals.append(
            Goal(
                "a 1 MiB event vs json loads + dumps",
                perbyte["sizes"]["1 MiB"]["request_vs_loads_plus_dumps"],
                3.0,
                at_most=True,
            )
        )
    return goals


def table(doc: dict[str, Any] | None) -> list[str]:
    """The goals as a Markdown table (empty when nothing was measured)."""
    goals = (http_goals(doc) if doc else []) + other_goals()
    if not goals:
        return []
    lines = ["| goal | measured | bound | met |", "|---|--:|--:|---|"]
    for goal in goals:
        value = "-" if goal.value is None else f"{goal.value:.2f}{goal.unit}"
        bound = f"{'≤' if goal.at_most else '≥'} {goal.bound:g}{goal.unit}"
        met = {True: "yes", False: "**no**", None: "-"}[goal.met]
        lines.append(f"| {goal.what} | {value} | {bound} | {met} |")
    return lines
