"""The rule catalogue a clinician reviews (`docs/rules.md`), generated from the rule modules.

Each row comes from the module that runs the rule: its `RULE_ID` and versions, its title
(`TITLE`, else the docstring's first line), what triggers it (`TRIGGERS`), the urgencies and
recipient roles its source names, the citation of its docstring ("Source: ..."), and the
configuration keys it reads (`config.<section>.<key>` in its source). RULES.md identifiers
that are no rule module of their own are listed with the modules that implement them (an
annotation inside another rule, or a DSMB stopping rule in the report).
`tests/unit/rules/test_rules_doc.py` checks the file is current and that RULES.md and the code
name the same rules, both ways.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Final

from services.rules.core import engine

RULES_DOC: Final = Path("docs/rules.md")
#: RULES.md identifiers: SAE-01, IR-MSC-02, STOP-04 ...
RULE_ID_PATTERN: Final = re.compile(r"\b(?:[A-Z]{2,5}-)+\d{2}\b")
#: Rules of the code that RULES.md describes under another heading (not by an identifier).
EXTENSIONS: Final = {
    "LAB-G3": "RULES.md §7 (CTCAE v5.0 grade 3 of a graded analyte)",
    "LAB-G4": "RULES.md §7 (CTCAE v5.0 grade 4 of a graded analyte)",
    "LAB-SHIFT": "RULES.md §7 and §8.1 (worst-grade shift from baseline)",
    "SUSAR-01": "RULES.md §1 SAE-04 (the 7- and 15-day SUSAR reporting clocks)",
}
_FAMILY: Final = "services.rules.core.rules"
_URGENCY: Final = re.compile(r"\bU[0-3]\b")
_ROLES: Final = {
    "INVESTIGATOR": "investigator",
    "SAFETY_OFFICER": "safety officer",
    "DSMB_CHAIR": "DSMB chair",
    "SPONSOR": "sponsor",
}
_ROLE_ALIASES: Final = {"INV_SO": ("INVESTIGATOR", "SAFETY_OFFICER"), "INV": ("INVESTIGATOR",)}


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One rule as the catalogue shows it."""

    rule_id: str
    versions: tuple[int, ...]
    module: str
    title: str
    triggers: str
    urgencies: tuple[str, ...]
    recipients: tuple[str, ...]
    source: str
    config_keys: tuple[str, ...]


def rule_modules() -> tuple[ModuleType, ...]:
    """Every rule module the engine runs, in evaluation order, old versions included."""
    live = (*engine._PLAIN, *engine._CONFIGURED)  # the engine's own order
    older = tuple(m for versions in engine.VERSIONS.values() for m in versions.values())
    return tuple(dict.fromkeys((*live, *older)))


def rows() -> tuple[RuleRow, ...]:
    """One row per rule id (versions merged), in evaluation order."""
    by_id: dict[str, list[ModuleType]] = {}
    for module in rule_modules():
        by_id.setdefault(module.RULE_ID, []).append(module)
    return tuple(_row(rule_id, modules) for rule_id, modules in by_id.items())


def _row(rule_id: str, modules: list[ModuleType]) -> RuleRow:
    first = modules[0]
    sources = [inspect.getsource(m) for m in modules]
    # Recipients and thresholds are often passed by a family helper (`rules/_he.py` ...):
    # read those too when the module itself names none.
    helpers = [inspect.getsource(h) for s in sources for h in _helpers(s)]
    doc = inspect.getdoc(first) or ""
    title = getattr(first, "TITLE", None) or doc.splitlines()[0].split("(core layer")[0]
    return RuleRow(
        rule_id=rule_id,
        versions=tuple(sorted(int(m.RULE_VERSION) for m in modules)),
        module=", ".join(m.__name__.rsplit(".", 1)[-1] + ".py" for m in modules),
        title=title.removeprefix(rule_id).strip(" :-"),
        triggers=_describe_triggers(getattr(first, "TRIGGERS", None)),
        urgencies=tuple(sorted({u for s in sources for u in _URGENCY.findall(s)})),
        recipients=_recipients(sources) or _recipients(helpers),
        source=_citation(doc),
        config_keys=tuple(
            sorted({k for s in sources for k in _config_keys(s)})
            or sorted({k for s in helpers for k in _config_keys(s)})
        ),
    )


def _helpers(source: str) -> list[ModuleType]:
    """The rule family helpers (`services.rules.core.rules._x`) a rule module imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        if node.module.startswith(_FAMILY + "._"):
            names.add(node.module)
        elif node.module == _FAMILY:
            names |= {f"{_FAMILY}.{a.name}" for a in node.names if a.name.startswith("_")}
    names.discard(f"{_FAMILY}._alerting")  # shared by every family: it names every role
    return [importlib.import_module(name) for name in sorted(names)]


def _describe_triggers(triggers: object) -> str:
    if triggers is None:
        return "every fact"
    facts = [t.__name__ for t in getattr(triggers, "facts", ())]
    kinds = sorted(getattr(triggers, "kinds", ()))
    parts = [*facts, *(f"observation `{k}`" for k in kinds)]
    if getattr(triggers, "active", None) is not None:
        parts.append("any fact while its state test holds")
    return ", ".join(parts) or "corrections only"


def _recipients(sources: Iterable[str]) -> tuple[str, ...]:
    found: set[str] = set()
    for source in sources:
        found |= {name for name in _ROLES if f"Role.{name}" in source}
        for alias, names in _ROLE_ALIASES.items():
            if re.search(rf"\b{alias}\b", source):
                found |= set(names)
    return tuple(_ROLES[name] for name in _ROLES if name in found)


def _citation(doc: str) -> str:
    text = " ".join(doc.split())
    found = re.search(r"Source: (.+?)(?:\. [A-Z]|$)", text)
    return found.group(1).rstrip(".") if found else ""


def _config_keys(source: str) -> set[str]:
    """`section.key` for every `<...>config.<section>.<key>` attribute chain in `source`."""
    keys: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            owner = node.value.value
            if isinstance(owner, ast.Name) and owner.id in {"config", "cfg"}:
                keys.add(f"{node.value.attr}.{node.attr}")
    return keys


def elsewhere(rules_md: str) -> dict[str, tuple[str, ...]]:
    """RULES.md ids with no rule module of their own -> the modules whose code names them."""
    own = {row.rule_id for row in rows()}
    wanted = sorted(set(RULE_ID_PATTERN.findall(rules_md)) - own)
    roots = [Path(p) for p in ("services/rules/core", "services/report/core", "clinical")]
    files = sorted(f for root in roots for f in root.rglob("*.py"))
    texts = {f: f.read_text(encoding="utf-8") for f in files}
    return {
        rule_id: tuple(str(f) for f, text in texts.items() if re.search(rf"\b{rule_id}\b", text))
        for rule_id in wanted
    }


def render(rules_md: str) -> str:
    """The whole `docs/rules.md`."""
    lines = [
        "# Rule catalogue",
        "",
        "Generated from the rule modules by `safetymon rules doc` (do not edit by hand);",
        "`tests/unit/rules/test_rules_doc.py` fails when it is stale or when it and",
        "`RULES.md` disagree on the rules. Urgencies are those the rule can raise (U0 pages",
        "at once, U3 goes to the DSMB listing); configuration keys are `[section] key` of the",
        "trial configuration file (`services/rules/trial_config/*.toml`).",
        "",
        "| Rule | Versions | Title | Triggers | Urgency | Recipients | Source | "
        "Configuration keys | Module |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows():
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    row.rule_id,
                    ", ".join(f"v{v}" for v in row.versions),
                    row.title,
                    row.triggers,
                    ", ".join(row.urgencies),
                    ", ".join(row.recipients),
                    row.source or EXTENSIONS.get(row.rule_id, ""),
                    ", ".join(f"`{k}`" for k in row.config_keys),
                    f"`{row.module}`",
                )
            )
            + " |"
        )
    lines += [
        "",
        "## RULES.md identifiers implemented inside other code",
        "",
        "Annotations that enrich another rule's signal, and the DSMB stopping rules the",
        "report evaluates.",
        "",
        "| RULES.md id | Implemented in |",
        "|---|---|",
    ]
    for rule_id, files in elsewhere(rules_md).items():
        where = ", ".join(f"`{f}`" for f in files) or "**not implemented**"
        lines.append(f"| {rule_id} | {where} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write(rules_md: Path, out: Path = RULES_DOC) -> Path:
    """Write the catalogue for the RULES.md at `rules_md` to `out`; return `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(rules_md.read_text(encoding="utf-8")), encoding="utf-8")
    return out
