"""The email renderer with clinical labels and the console link (adapters layer).

Templates show a signal's values as "Relatedness to UC-MSC: possible" rather than raw keys
(clinical/labels.py, the table the console uses too), and link to the alert's page in the
console when its base URL is configured. Templates test `clinical is defined`, so a plain
JinjaRenderer still renders them (with raw keys and no console link).
"""

from __future__ import annotations

from pathlib import Path

from clinical.labels import label_of, labelled
from services.notify.adapters.jinja_renderer import TEMPLATES, JinjaRenderer


def _value(name: str, value: object) -> str:
    """The value with its key's unit."""
    [(_, text)] = labelled({str(name): value})
    return text


def _clinical(name: str, value: object) -> str:
    """One values line: the key's label, then the value with its unit."""
    return f"{label_of(str(name)).text}: {_value(name, value)}"


class LabelledRenderer(JinjaRenderer):
    """JinjaRenderer plus `clinical`, `clinical_label`, `clinical_value` and `console_url`."""

    def __init__(self, directory: Path = TEMPLATES, *, console_url: str | None = None) -> None:
        super().__init__(directory)
        env = self._env
        env.globals["clinical"] = _clinical
        env.globals["clinical_label"] = lambda name: label_of(str(name)).text
        env.globals["clinical_value"] = _value
        env.globals["console_url"] = (console_url or "").rstrip("/")
