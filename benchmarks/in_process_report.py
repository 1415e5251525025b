"""The in-process parts of the Performance section: `invoke()`, cost per byte, the
PostgreSQL Chronicle against the SQLite ledger, and rendering manifests."""

from __future__ import annotations

from benchmarks import results
from benchmarks.markdown import num, paragraph


def in_process_lines() -> list[str]:
    """Each part that was measured, a blank line between them."""
    out: list[str] = []
    for part in (invoke_lines(), perbyte_lines(), postgres_lines(), manifests_lines()):
        if part:
            out += [*([""] if out else []), *part]
    return out


def perbyte_lines() -> list[str]:
    doc = results.load("perbyte")
    if not doc:
        return []
    lines = [
        paragraph(
            "Cost per byte of event data: `govfn serve --function echo` (SQLite ledger on) "
            "answering one JSON event, against `json.loads` + `json.dumps` of the same document "
            "(goal: at most 3x), and govfn's canonical JSON against `rfc8785.dumps`:"
        ),
        "",
        "| event data | request vs loads + dumps | canonical_json vs rfc8785 |",
        "|---|--:|--:|",
    ]
    for size, m in doc["sizes"].items():
        canonical = m["canonical_json_ms"] / m["rfc8785_ms"] if m.get("rfc8785_ms") else None
        lines.append(
            f"| {size} | {m['request_vs_loads_plus_dumps']:.2f}x | {num(canonical, '.2f', 'x')} |"
        )
    return lines


def postgres_lines() -> list[str]:
    doc = results.load("postgres")
    if not doc:
        return []
    rows = [
        ("no-op, one at a time", "noop"),
        ("echo, one at a time", "echo"),
        ("echo, 32 at once", "echo_32_at_once"),
    ]
    lines = [
        paragraph(
            f"PostgreSQL Chronicle (fsync {doc['fsync']}): `invoke()` on PostgreSQL against "
            "the same on the SQLite ledger:"
        ),
        "",
        "| invocation | PostgreSQL vs SQLite |",
        "|---|--:|",
    ]
    for label, key in rows:
        sqlite_us, postgres_us = doc.get(f"sqlite_{key}_us"), doc.get(f"postgres_{key}_us")
        if sqlite_us and postgres_us:
            lines.append(f"| {label} | {postgres_us / sqlite_us:.2f}x |")
    return lines


def invoke_lines() -> list[str]:
    doc = results.load("invoke")
    if not doc:
        return []
    lines = [
        paragraph(
            f"In-process `FunctionRuntime.invoke()` of a no-op function ({doc['calls']:,} "
            f"calls, median of {doc['repeats']}): **{doc['ledger_on_us']:.1f} µs** per call "
            f"with the SQLite ledger on (synchronous={doc['ledger_sync']}), "
            f"{doc['ledger_off_us']:.1f} µs with it off; 16 calls under way at once (as the "
            f"HTTP load's 16 connections), **{num(doc.get('ledger_on_16_us'), '.1f')} µs** "
            f"per call with the ledger on (echo, which is pure: "
            f"{num(doc.get('echo_ledger_on_16_us'), '.1f')} µs), on the event loop the worker "
            "serves with. The same no-op declared pure (both records in one commit after the "
            "handler, not FUNCTION_INVOKED ahead of it): "
            f"{num(doc.get('pure_ledger_on_us'), '.1f')} µs one at a time, "
            f"**{num(doc.get('pure_ledger_on_16_us'), '.1f')} µs** 16 at once. In the "
            "process's CPU time (steadier on a shared machine), 16 at once: no-op "
            f"{num(doc.get('ledger_on_16_cpu_us'), '.1f')} µs, pure no-op "
            f"{num(doc.get('pure_ledger_on_16_cpu_us'), '.1f')} µs. Parts of one call:"
        ),
        "",
        "| part | µs |",
        "|---|--:|",
    ]
    lines += [f"| {part} | {us:.1f} |" for part, us in doc["parts_us"].items()]
    return lines


def manifests_lines() -> list[str]:
    doc = results.load("manifests")
    if not doc:
        return []
    return [
        paragraph(
            f"`govfn manifests` for {doc['functions']:,} functions ({doc['objects']:,} "
            f"objects): render and validate {doc['render_validate_ms']:,.0f} ms, with YAML "
            f"{doc['render_validate_yaml_ms']:,.0f} ms ({doc['dumper']})."
        ),
    ]
