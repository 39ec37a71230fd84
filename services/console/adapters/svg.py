"""Inline SVG line charts with procedure markers (adapters layer): no script, no styles.

Drawn with presentation attributes only, so the pages' Content-Security-Policy (no inline
styles) holds; each chart has a title and a text description for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from services.console.core.timeline import Marker, Series

_W, _H, _PAD = 640, 150, 36
_MARK_COLOURS = {"UC-MSC infusion": "#1b7837", "Plasma exchange": "#762a83"}


def _scale(value: float, low: float, high: float, size: float) -> float:
    return 0.0 if high == low else (value - low) / (high - low) * size


def line_chart(series: Series, markers: Sequence[Marker]) -> str:
    """One chart: the series as a line with dots, markers as vertical lines."""
    title = f"{series.label}{f' ({series.unit})' if series.unit else ''}"
    head = (
        f'<svg class="chart" role="img" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )
    if not series.points:
        return head + f'<text x="{_PAD}" y="{_H / 2}" fill="#555">No results yet</text></svg>'
    times = [at.timestamp() for at, _ in series.points] + [m.at.timestamp() for m in markers]
    values = [v for _, v in series.points]
    t0, t1, v0, v1 = min(times), max(times), min(values), max(values)
    width, height = _W - 2 * _PAD, _H - 2 * _PAD

    def xy(at: datetime, value: float) -> tuple[float, float]:
        x = _PAD + _scale(at.timestamp(), t0, t1, width)
        return x, _H - _PAD - _scale(value, v0, v1, height)

    parts = [head, _axes(v0, v1)]
    for marker in markers:
        x, _ = xy(marker.at, v0)
        colour = _MARK_COLOURS.get(marker.label, "#444")
        parts.append(
            f'<line x1="{x:.1f}" y1="{_PAD / 2}" x2="{x:.1f}" y2="{_H - _PAD}" '
            f'stroke="{colour}" stroke-dasharray="4 3"><title>{escape(marker.label)} '
            f"{marker.at:%Y-%m-%d %H:%M}</title></line>"
        )
    coords = [xy(at, v) for at, v in series.points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts.append(f'<polyline points="{path}" fill="none" stroke="#08519c" stroke-width="2"/>')
    for (at, value), (x, y) in zip(series.points, coords, strict=True):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#08519c"><title>'
            f"{at:%Y-%m-%d %H:%M} {value:g}</title></circle>"
        )
    return "".join(parts) + "</svg>"


def _axes(low: float, high: float) -> str:
    return (
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#999"/>'
        f'<text x="2" y="{_H - _PAD}" font-size="11" fill="#333">{low:g}</text>'
        f'<text x="2" y="{_PAD}" font-size="11" fill="#333">{high:g}</text>'
    )
