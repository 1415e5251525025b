"""The README's chart: each server's throughput as a share of the stack limit, as SVG.

Written by hand (no plotting dependency): one horizontal bar per server, the median over
rounds of its within-round req/s ratio to the raw ASGI echo on uvicorn + uvloop + httptools
(the limit, 1.0), govfn's bars in their own colour, a line at the limit and one at the goal.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

_BAR_H = 22
_GAP = 8
_LABEL_W = 330
_PLOT_W = 420
_TOP = 44
_COLOURS = {
    "govfn": "#1f77b4",
    "raw-asgi": "#2d2d2d",
    "raw-asgi-ledger": "#555555",
    "raw": "#7f7f7f",
}
_PEER = "#c7a25a"


def svg(bars: list[tuple[str, str, float]], goal: float, title: str) -> str:
    """`bars`: (name, kind, ratio to the limit); the scale runs to the largest ratio or 1."""
    top = max([1.0, *(ratio for _, _, ratio in bars)])
    scale = _PLOT_W / top
    height = _TOP + len(bars) * (_BAR_H + _GAP) + 30
    width = _LABEL_W + _PLOT_W + 70
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for index, (name, kind, ratio) in enumerate(bars):
        y = _TOP + index * (_BAR_H + _GAP)
        colour = _COLOURS.get(kind, _PEER)
        weight = ' font-weight="bold"' if kind == "govfn" else ""
        out += [
            f'<text x="{_LABEL_W - 8}" y="{y + 16}" text-anchor="end"{weight}>'
            f"{escape(name)}</text>",
            f'<rect x="{_LABEL_W}" y="{y}" width="{max(ratio * scale, 1):.1f}" '
            f'height="{_BAR_H}" fill="{colour}"/>',
            f'<text x="{_LABEL_W + ratio * scale + 6:.1f}" y="{y + 16}">{ratio:.2f}x</text>',
        ]
    bottom = _TOP + len(bars) * (_BAR_H + _GAP)
    for at, label, dash in (
        (1.0, "limit", ""),
        (goal, f"goal {goal:g}x", ' stroke-dasharray="5,4"'),
    ):
        x = _LABEL_W + at * scale
        out += [
            f'<line x1="{x:.1f}" y1="{_TOP - 8}" x2="{x:.1f}" y2="{bottom}" stroke="#d62728"'
            f' stroke-width="1.5"{dash}/>',
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" fill="#d62728">'
            f"{escape(label)}</text>",
        ]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(path: Path, bars: list[tuple[str, str, float]], goal: float, title: str) -> None:
    path.write_text(svg(bars, goal, title))
