"""docs/rules.md is the code's rule catalogue, and it and RULES.md name the same rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from safetymon import rules_doc

ROOT = Path(__file__).resolve().parents[3]
RULES_MD = ROOT.parent / "shared" / "RULES.md"


def _rules_md() -> str:
    return RULES_MD.read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_committed_catalogue_is_what_the_code_generates() -> None:
    """Regenerate with `safetymon rules doc`."""
    committed = (ROOT / rules_doc.RULES_DOC).read_text(encoding="utf-8")
    assert committed == rules_doc.render(_rules_md())


@pytest.mark.slow
def test_every_rules_md_rule_is_implemented_somewhere() -> None:
    """A RULES.md rule is a rule module, or code that names it (an annotation, a stop rule)."""
    own = {row.rule_id for row in rules_doc.rows()}
    missing = [rule_id for rule_id, files in rules_doc.elsewhere(_rules_md()).items() if not files]
    assert missing == []
    assert set(rules_doc.RULE_ID_PATTERN.findall(_rules_md())) <= own | set(
        rules_doc.elsewhere(_rules_md())
    )


@pytest.mark.slow
def test_every_rule_of_the_code_is_in_rules_md() -> None:
    """The other way: no rule fires that a clinician cannot find in RULES.md."""
    in_rules_md = set(rules_doc.RULE_ID_PATTERN.findall(_rules_md()))
    unknown = [
        row.rule_id
        for row in rules_doc.rows()
        if row.rule_id not in in_rules_md and row.rule_id not in rules_doc.EXTENSIONS
    ]
    assert unknown == []
    assert set(rules_doc.EXTENSIONS) <= {row.rule_id for row in rules_doc.rows()}


def test_each_row_says_what_a_clinician_needs() -> None:
    for row in rules_doc.rows():
        assert row.title, row.rule_id
        assert row.urgencies, row.rule_id
        assert row.recipients, row.rule_id
        assert row.source or row.rule_id in rules_doc.EXTENSIONS, row.rule_id


@pytest.mark.slow
def test_the_command_writes_the_catalogue_and_refuses_a_missing_rules_md(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from safetymon.cli import app

    out = tmp_path / "rules.md"
    runner = CliRunner()
    written = runner.invoke(app, ["rules", "doc", "--rules-md", str(RULES_MD), "--out", str(out)])
    missing = runner.invoke(app, ["rules", "doc", "--rules-md", str(tmp_path / "none.md")])

    assert written.exit_code == 0, written.output
    assert out.read_text(encoding="utf-8") == rules_doc.render(_rules_md())
    assert missing.exit_code != 0
