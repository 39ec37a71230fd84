"""Render the report as one printable HTML page with jinja2 and inline SVG (adapters layer).

Autoescaping is on and undefined names fail, as in notify's templates. The page has no
script and loads nothing: styles and charts are inline, so it prints and archives as one
file. The generation time is the only input that is not derived from the log position.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.report.adapters.svg import render_chart
from services.report.core.build import iso
from services.report.core.model import Cell, Report, Table, number

TEMPLATES: Final = Path(__file__).resolve().parent.parent / "templates"
GRADES: Final = (0, 1, 2, 3, 4)


def _cell(value: Cell) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.2e}"
    return str(value)


def shift_matrices(table: Table) -> list[dict[str, object]]:
    """Regroup the long shift table into one baseline × worst-grade matrix per term and arm."""
    cells: dict[tuple[str, str], dict[tuple[str, int], int]] = defaultdict(dict)
    for term, arm, baseline, worst, participants in table.rows:
        key = "missing" if baseline is None else str(baseline)
        cells[(str(term), str(arm))][(key, int(number(worst)))] = int(number(participants))
    matrices: list[dict[str, object]] = []
    for (term, arm), counts in sorted(cells.items()):
        rows = [
            (key, [counts.get((key, grade), 0) for grade in GRADES])
            for key in ("missing", *map(str, GRADES))
            if any(counts.get((key, grade), 0) for grade in GRADES)
        ]
        matrices.append({"term": term, "arm": arm, "rows": rows})
    return matrices


class HtmlRenderer:
    """Render `dsmb.html.j2`."""

    def __init__(self, templates: Path = TEMPLATES) -> None:
        self._env = Environment(
            loader=FileSystemLoader(templates),
            autoescape=select_autoescape(("html", "j2")),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._env.filters["cell"] = _cell

    def render(self, report: Report, *, generated_at: datetime) -> str:
        """Return the HTML page."""
        template = self._env.get_template("dsmb.html.j2")
        tables = {t.name: t for t in report.tables}
        return template.render(
            report=report,
            tables=tables,
            as_of=iso(report.position.as_of),
            generated_at=iso(generated_at),
            charts={c.name: render_chart(c) for c in report.charts},
            cumulative=[render_chart(c) for c in report.charts if c.name.startswith("cumulative_")],
            shifts=shift_matrices(tables["lab_shift"]),
            grades=GRADES,
            triggered=[s for s in report.stops if s.triggered],
        )

    def write(self, report: Report, path: Path, *, generated_at: datetime) -> Path:
        """Write the page to `path`."""
        path.write_text(self.render(report, generated_at=generated_at), encoding="utf-8")
        return path
