"""Markdown text helpers of the benchmark report."""

from __future__ import annotations

import textwrap

WIDTH = 100


def paragraph(text: str) -> str:
    return textwrap.fill(text, WIDTH, break_on_hyphens=False, break_long_words=False)


def num(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"
