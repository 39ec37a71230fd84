"""Draw the report's charts as inline SVG (adapters layer; no JavaScript, prints as is).

Hand-written rather than a plotting library: two chart shapes (lines and steps) with fixed
colours per arm, and output that depends only on the data, so the HTML stays reproducible.
Text is escaped here; the result is marked safe for the autoescaping template.
"""

from __future__ import annotations

import math
from html import escape
from typing import Final

from markupsafe import Markup

from services.report.core.model import Chart

WIDTH: Final = 640
HEIGHT: Final = 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 110, 28, 44
#: Colour-blind-safe palette (Okabe-Ito), one per arm in ARMS order.
COLOURS: Final = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def render_chart(chart: Chart) -> Markup:
    """Return `<svg>` for a line (or step) chart with axes, ticks and a legend."""
    points = [p for s in chart.series for p in s.points]
    x_max = _nice_max(max((p[0] for p in points), default=1.0))
    y_max = _nice_max(max((p[1] for p in points), default=1.0))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def sx(x: float) -> float:
        return round(_LEFT + x / x_max * plot_w, 2)

    def sy(y: float) -> float:
        return round(_TOP + plot_h - y / y_max * plot_h, 2)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">',
        f"<title>{escape(chart.title)}</title>",
        f'<text x="{_LEFT}" y="16" class="chart-title">{escape(chart.title)}</text>',
    ]
    for i in range(6):
        y_value, x_value = y_max * i / 5, x_max * i / 5
        parts.append(
            f'<line x1="{_LEFT}" y1="{sy(y_value)}" x2="{_LEFT + plot_w}" y2="{sy(y_value)}" '
            f'class="grid"/><text x="{_LEFT - 6}" y="{sy(y_value) + 4}" text-anchor="end" '
            f'class="tick">{_fmt(y_value)}</text>'
            f'<text x="{sx(x_value)}" y="{_TOP + plot_h + 16}" text-anchor="middle" '
            f'class="tick">{_fmt(x_value)}</text>'
        )
    parts.append(
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" '
        f'class="axis"/><line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" '
        f'class="axis"/>'
        f'<text x="{_LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle" class="label">'
        f"{escape(chart.x_label)}</text>"
        f'<text transform="translate(14 {_TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" '
        f'class="label">{escape(chart.y_label)}</text>'
    )
    for index, series in enumerate(chart.series):
        colour = COLOURS[index % len(COLOURS)]
        coords: list[str] = []
        previous: tuple[float, float] | None = None
        for x, y in series.points:
            if chart.step and previous is not None:
                coords.append(f"{sx(x)},{sy(previous[1])}")
            coords.append(f"{sx(x)},{sy(y)}")
            previous = (x, y)
        if coords:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                f'points="{" ".join(coords)}"/>'
            )
        legend_y = _TOP + 14 + index * 18
        parts.append(
            f'<rect x="{WIDTH - _RIGHT + 12}" y="{legend_y - 9}" width="12" height="12" '
            f'fill="{colour}"/><text x="{WIDTH - _RIGHT + 30}" y="{legend_y + 1}" '
            f'class="legend">{escape(series.label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
