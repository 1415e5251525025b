"""What sender verification costs under load: the same server with it on and off, compared
within each round of the HTTP benchmark, then the median over rounds."""

from __future__ import annotations

from typing import Any

from benchmarks import results

WITH = "govfn serve --single-process, senders verified"
WITHOUT = "govfn serve --single-process"
GOAL_X = 0.95  # req/s with verification at most 5% below the same server without it


def ratios(doc: dict[str, Any]) -> dict[str, float | int | None]:
    """Medians over rounds of with/without: req/s, CPU per request, p99; and the rounds."""
    series: dict[str, list[float]] = {"req_s": [], "cpu_us_per_request": [], "p99_ms": []}
    for doc_round in doc["rounds"]:
        on, off = doc_round.get(WITH), doc_round.get(WITHOUT)
        if not on or not off or "error" in on or "error" in off:
            continue
        for key, values in series.items():
            if on.get(key) and off.get(key):
                values.append(on[key] / off[key])
    return {
        "rounds": len(series["req_s"]),
        **{key: results.median(values) for key, values in series.items()},
    }


def lines(doc: dict[str, Any] | None) -> list[str]:
    """The sentence the README's Performance section gives it (none without both servers)."""
    found = ratios(doc) if doc else {}
    if not found.get("rounds"):
        return []

    def x(key: str) -> str:
        value = found[key]
        return "-" if value is None else f"{value:.2f}x"

    return [
        f"Sender verification (`GOVFN_OIDC_ISSUER` set: an issuer on loopback, one RS256 token "
        "reused for every request as a broker reuses it until it expires, its subject allowed "
        "by `GOVFN_EVENT_SENDERS`): `govfn serve --single-process` with it against the same "
        f"server without it, medians of within-round ratios over {found['rounds']} rounds: "
        f"**req/s {x('req_s')}** (goal: at least {GOAL_X:.2f}x), CPU per request "
        f"{x('cpu_us_per_request')}, p99 {x('p99_ms')}."
    ]
