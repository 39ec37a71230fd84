"""Jinja2 renderer (adapters layer): text and HTML bodies from a plan's context."""

from __future__ import annotations

from pathlib import Path

import jinja2

from services.notify.core.errors import RenderError
from services.notify.core.plan import NotificationPlan

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class JinjaRenderer:
    """Render `<template>.txt.j2` and `<template>.html.j2` with StrictUndefined.

    HTML templates autoescape, so a title such as `<script>` arrives as text; the text
    template does not escape (it is never interpreted as markup).
    """

    def __init__(self, directory: Path = TEMPLATES) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html.j2",), default_for_string=True, default=False
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, plan: NotificationPlan) -> tuple[str, str]:
        """Return (text, html) for the plan; a template defect raises RenderError."""
        context = {**plan.context, "subject": plan.subject}
        try:
            text = self._env.get_template(f"{plan.template}.txt.j2").render(context)
            html = self._env.get_template(f"{plan.template}.html.j2").render(context)
        except jinja2.TemplateError as exc:
            msg = f"template {plan.template!r}: {type(exc).__name__}: {exc}"
            raise RenderError(msg) from exc
        return text, html
