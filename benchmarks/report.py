"""The Markdown report of the last benchmark run, and writing it into README's Performance section.

    python -m benchmarks.report                      print it
    python -m benchmarks.report --write-readme benchmarks/README.md

Ratios are computed within each round (govfn and its peers measured minutes apart on the
same machine), then the median over the rounds is reported, as are the medians of req/s,
p50 and p99. "vs raw" compares with the raw WSGI app at the same gunicorn layout (1x8 for
func-python's single event loop).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from benchmarks import chart, goals, results, sender_verification
from benchmarks.in_process_report import in_process_lines
from benchmarks.markdown import num, paragraph

HEADING = "## Performance"
CHART = "performance.svg"  # beside the README it is written into (benchmarks/README.md)
GOAL_X_LIMIT = 0.5  # issue 14: govfn 1x8 at half the limit's req/s


FUNC_PYTHON = "func-python"


def _raw_name(doc_round: dict[str, Any], workers: int | None) -> str | None:
    wanted = workers or 1
    for name, m in doc_round.items():
        if m.get("kind") == "raw" and m.get("workers") == wanted and "error" not in m:
            return name
    return None


def _func_python_name(doc_round: dict[str, Any]) -> str | None:
    for name, m in doc_round.items():
        if m.get("kind") == FUNC_PYTHON and "error" not in m:
            return name
    return None


def _limit_name(doc_round: dict[str, Any]) -> str | None:
    """The stack limit: the raw ASGI echo on uvicorn + uvloop + httptools."""
    for name, m in doc_round.items():
        if m.get("kind") == "raw-asgi" and "uvicorn" in name and "error" not in m:
            return name
    return None


def _order(names: list[str]) -> list[str]:
    rank = {"govfn": 0, "func-python": 1, "functions-framework": 2, "raw": 3}
    return sorted(names, key=lambda n: (rank.get(n.split()[0], 9), n))


def http_summary(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per server: medians over rounds of req/s, p50, p99 and of the within-round ratios."""
    series: dict[str, dict[str, list[float]]] = {}
    meta: dict[str, dict[str, Any]] = {}
    for doc_round in doc["rounds"]:
        fp = _func_python_name(doc_round)
        limit = _limit_name(doc_round)
        for name, m in doc_round.items():
            meta.setdefault(name, {"kind": m["kind"], "layout": m["layout"], "failed_rounds": 0})
            if "error" in m:
                meta[name]["failed_rounds"] += 1
                continue
            s = series.setdefault(name, {})
            for key in ("req_s", "p50_ms", "p99_ms"):
                s.setdefault(key, []).append(m[key])
            if m.get("pss_mb"):
                s.setdefault("pss_mb", []).append(m["pss_mb"])
            s.setdefault("non_2xx", []).append(m["non_2xx"])
            s.setdefault("socket_errors", []).append(sum(m["socket_errors"].values()))
            raw = _raw_name(doc_round, m.get("workers"))
            if raw:
                s.setdefault("x_raw", []).append(m["req_s"] / doc_round[raw]["req_s"])
                s.setdefault("p99_x_raw", []).append(m["p99_ms"] / doc_round[raw]["p99_ms"])
            if limit:
                s.setdefault("x_limit", []).append(m["req_s"] / doc_round[limit]["req_s"])
                cpu, cpu_limit = (
                    m.get("cpu_us_per_request"),
                    doc_round[limit].get("cpu_us_per_request"),
                )
                if cpu and cpu_limit:
                    s.setdefault("cpu_x_limit", []).append(cpu / cpu_limit)
                s.setdefault("p99_x_limit", []).append(m["p99_ms"] / doc_round[limit]["p99_ms"])
                if m.get("pss_mb") and doc_round[limit].get("pss_mb"):
                    pss_limit = m["pss_mb"] / doc_round[limit]["pss_mb"]
                    s.setdefault("pss_x_limit", []).append(pss_limit)
            if fp:
                s.setdefault("x_fp", []).append(m["req_s"] / doc_round[fp]["req_s"])
                s.setdefault("p99_x_fp", []).append(m["p99_ms"] / doc_round[fp]["p99_ms"])
                if m.get("pss_mb") and doc_round[fp].get("pss_mb"):
                    s.setdefault("pss_x_fp", []).append(m["pss_mb"] / doc_round[fp]["pss_mb"])
    summary: dict[str, dict[str, Any]] = {}
    for name in _order(list(meta)):
        s = series.get(name, {})
        summary[name] = {
            **meta[name],
            **{key: results.median(values) for key, values in s.items()},
            "rounds": len(s.get("req_s", [])),
            "non_2xx_total": sum(s.get("non_2xx", [])),
            "socket_errors_total": sum(s.get("socket_errors", [])),
        }
    return summary


def govfn_vs_peers(doc: dict[str, Any]) -> list[tuple[str, str, float, float, float | None]]:
    """(govfn server, peer, median req/s ratio, median p99 ratio, median PSS ratio) over
    rounds, same round only."""
    pairs: dict[tuple[str, str], tuple[list[float], list[float], list[float]]] = {}
    for doc_round in doc["rounds"]:
        ok = {n: m for n, m in doc_round.items() if "error" not in m}
        for g, gm in ok.items():
            if gm["kind"] != "govfn":
                continue
            for p, pm in ok.items():
                if pm["kind"] == "govfn":
                    continue
                rps, p99, pss = pairs.setdefault((g, p), ([], [], []))
                rps.append(gm["req_s"] / pm["req_s"])
                p99.append(gm["p99_ms"] / pm["p99_ms"])
                if gm.get("pss_mb") and pm.get("pss_mb"):
                    pss.append(gm["pss_mb"] / pm["pss_mb"])
    return [
        (g, p, results.median(rps) or 0.0, results.median(p99) or 0.0, results.median(pss))
        for (g, p), (rps, p99, pss) in sorted(pairs.items(), key=lambda kv: _order(list(kv[0]))[0])
    ]


def ledger_check(doc: dict[str, Any]) -> str:
    """How many ledger records govfn's servers held per event they answered, over all runs."""
    ratios = [
        m["ledger_records"] / m["answered"]
        for doc_round in doc["rounds"]
        for m in doc_round.values()
        if m.get("kind") == "govfn" and m.get("ledger_records") and m.get("answered")
    ]
    if not ratios:
        return ""
    return paragraph(
        f"Ledger check: after each of the {len(ratios)} govfn runs, its ledger held "
        f"{min(ratios):.3f}-{max(ratios):.3f} records per answered event (FUNCTION_INVOKED and "
        "FUNCTION_COMPLETED; a little over 2 because wrk stops counting with requests in flight)."
    )


def _cold_samples() -> str:
    doc = results.load("coldstart")
    return str(doc["samples"]) if doc else "?"


def _coldstart_summary() -> dict[str, dict[str, Any]]:
    doc = results.load("coldstart")
    if not doc:
        return {}
    servers: dict[str, dict[str, Any]] = doc["servers"]
    return servers


def http_table(doc: dict[str, Any] | None) -> str:
    """The main table: one row per server, every figure a ratio (medians of within-round
    ratios): to the stack limit (raw ASGI on uvicorn + uvloop + httptools) and to func-python."""
    if not doc:
        return "_No HTTP results yet: run `python -m benchmarks.http`._"
    summary = http_summary(doc)
    cold = _coldstart_summary()
    fp = next((c for c in cold.values() if c.get("kind") == FUNC_PYTHON), None)
    lines = [
        "| server | layout | req/s vs limit | p99 vs limit | CPU per request vs limit "
        "| req/s vs func-python | p99 vs func-python | PSS vs func-python "
        "| cold start vs func-python | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, s in summary.items():
        c = cold.get(name, {})
        cold_ms = c.get("median_ms")
        cold_vs_fp = cold_ms / fp["median_ms"] if cold_ms and fp and fp.get("median_ms") else None
        errors = f"{s['non_2xx_total']} / {s['socket_errors_total']}"
        if s["failed_rounds"]:
            errors += f" ({s['failed_rounds']} failed rounds)"
        lines.append(
            f"| {name} | {s['layout']} | {num(s.get('x_limit'), '.2f', 'x')} "
            f"| {num(s.get('p99_x_limit'), '.2f', 'x')} "
            f"| {num(s.get('cpu_x_limit'), '.2f', 'x')} | {num(s.get('x_fp'), '.2f', 'x')} "
            f"| {num(s.get('p99_x_fp'), '.2f', 'x')} | {num(s.get('pss_x_fp'), '.2f', 'x')} "
            f"| {num(cold_vs_fp, '.2f', 'x')} | {errors} |"
        )
    return "\n".join(lines)


def chart_bars(doc: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(server, kind, req/s vs the limit) for the chart, fastest first."""
    bars = [
        (name, s["kind"], s["x_limit"]) for name, s in http_summary(doc).items() if s.get("x_limit")
    ]
    return sorted(bars, key=lambda bar: -bar[2])


def govfn_table(doc: dict[str, Any] | None) -> str:
    pairs = govfn_vs_peers(doc) if doc else []
    if not pairs:
        return ""
    lines = ["| govfn | peer | req/s ratio | p99 ratio | PSS ratio |", "|---|---|--:|--:|--:|"]
    lines += [
        f"| {g} | {p} | {r:.2f}x | {q:.2f}x | {num(m, '.2f', 'x')} |" for g, p, r, q, m in pairs
    ]
    return "\n".join(lines)


def markdown() -> str:
    """The whole Performance section, heading included."""
    http_doc = results.load("http")
    stamp = http_doc or results.load("invoke") or {"date": "?", "machine": {"cores": "?"}}
    m = stamp["machine"]
    out = [
        HEADING,
        "",
        paragraph(
            f"Measured {stamp['date']} on {m['cores']} cores ({m.get('cpu', '?')}), "
            f"Python {m.get('python', '?')}, by `make bench` (code in `benchmarks/`)."
        ),
        "",
    ]
    if http_doc:
        settings = http_doc["settings"]
        loads = [
            m["load_average_1m_before"]
            for doc_round in http_doc["rounds"]
            for m in doc_round.values()
            if "load_average_1m_before" in m
        ]
        load_note = (
            f" The 1-minute load average before each run ranged {min(loads):.1f}-"
            f"{max(loads):.1f} (the client, wrk, shares the {m['cores']} cores with the server)."
            if loads
            else ""
        )
        out += [
            paragraph(
                f"HTTP: wrk `{settings['wrk']}` (after {settings['warmup_s']} s warm-up), "
                f"{settings['event']}, loopback, {settings['rounds']} rounds with a fresh "
                "server each; medians over rounds; ratios computed within each round; "
                '"limit" is the raw ASGI CloudEvent echo on uvicorn + uvloop + httptools '
                '(no validation, no ledger: what Python serves at most); "raw ASGI + two '
                'durable records" is the same echo on uvicorn that also writes, before '
                "answering, the least a governed invocation must leave: two sorted-key JSON "
                "records named by their SHA-256, hash-chained and group-committed to SQLite in "
                "WAL mode (`benchmarks/peers/raw_asgi_ledger.py`; no validation, no Merkle "
                "tree, no index, no outbox, logs or metrics): the ceiling for a server that "
                "keeps govfn's durability promise. govfn "
                f"runs `govfn serve --function echo` with the {settings['govfn_chronicle']}. "
                "Errors are non-2xx responses / socket errors summed over rounds. Cold start: "
                f"spawn to the first 2xx answer to the CloudEvent, median of {_cold_samples()} "
                "(bytecode compiled first, as in a container image). PSS: proportional set "
                "size summed over every process of the server (arbiter and workers), read "
                "after the measured load. CPU per request: user + system time of every "
                "process of the server over the measured run, divided by the requests "
                "answered (steadier than req/s on a machine whose client shares its cores)."
                + load_note
            ),
            "",
            http_table(http_doc),
            "",
        ]
        goal_lines = goals.table(http_doc)
        if goal_lines:
            out += ["The goals, from this run (`benchmarks/goals.py`):", "", *goal_lines, ""]
        if chart_bars(http_doc):
            out += [f"![req/s as a share of the stack limit]({CHART})", ""]
        check = ledger_check(http_doc)
        if check:
            out += [check, ""]
        verification = sender_verification.lines(http_doc)
        if verification:
            out += [paragraph(" ".join(verification)), ""]
        vs = govfn_table(http_doc)
        if vs:
            out += ["govfn against each peer (medians of within-round ratios):", "", vs, ""]
    out += in_process_lines()
    return "\n".join(out).rstrip() + "\n"


def write_chart(readme: Path) -> Path | None:
    """The chart the section shows, written beside the README (None without HTTP results)."""
    doc = results.load("http")
    bars = chart_bars(doc) if doc else []
    if not bars:
        return None
    path = readme.parent / CHART
    chart.write(path, bars, GOAL_X_LIMIT, "req/s as a share of the stack limit (raw ASGI echo)")
    return path


def write_readme(readme: Path, section: str) -> None:
    """Replace README's Performance section (to the next `## ` heading), or append one."""
    write_chart(readme)
    text = readme.read_text() if readme.exists() else ""
    pattern = re.compile(rf"^{re.escape(HEADING)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    readme.write_text(text.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-readme", type=Path, metavar="README")
    args = parser.parse_args(argv)
    section = markdown()
    print(section)
    if args.write_readme:
        write_readme(args.write_readme, section)
        print(f"updated {args.write_readme} ({HEADING})")


if __name__ == "__main__":
    main()
