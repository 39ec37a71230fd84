"""Jinja2 pages of the console (adapters layer): autoescaped templates and their filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.responses import HTMLResponse

from clinical.labels import label_of, labelled
from services.console.adapters.describe import describe
from services.console.adapters.svg import line_chart
from services.console.core.events import Event
from services.console.core.timeline import Marker, Series

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _chart(series: Series, markers: list[Marker]) -> Markup:
    # line_chart escapes every text it writes.
    return Markup(line_chart(series, markers))  # noqa: S704


def _describe(event: Event) -> str:
    return describe(event)


def _words(value: object) -> str:
    return str(value).replace("_", " ")


class Pages:
    """Render a template into an HTML response."""

    def __init__(self, directory: Path = TEMPLATES) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            undefined=jinja2.StrictUndefined,
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(when=_when, words=_words, label=lambda k: label_of(k).text)
        self._env.globals.update(labelled=labelled, chart=_chart, describe=_describe)

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:  # noqa: ANN401 - template context
        """The page `name` with `context`."""
        html = self._env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status)
