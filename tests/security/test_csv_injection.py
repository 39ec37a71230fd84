"""CSV formula injection: text cells a spreadsheet would run are written inert (OWASP).

An AE term such as `=HYPERLINK("http://evil","x")` must not reach a DSMB member's
spreadsheet as a formula; numbers (including negative ones) stay numbers.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kit.csv_safe import csv_text
from safetymon.export_sdtm import AE_COLUMNS, write_rows
from services.report.adapters.files import write_csv
from services.report.core.model import Column, Table

ATTACKS = ('=HYPERLINK("http://evil.example","x")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1",
           "-1+cmd", "\t=1+1", "\r=1+1")  # fmt: skip
#: Report text comes from validated facts, which hold no CR (the LF-terminated report CSV
#: would not quote one); the helper above covers it all the same.
ON_THE_LOG = tuple(text for text in ATTACKS if "\r" not in text)


@pytest.mark.parametrize("text", ATTACKS)
def test_a_formula_is_prefixed_with_a_quote(text: str) -> None:
    assert csv_text(text) == "'" + text


@pytest.mark.parametrize("text", ["Sepsis", "", "-3.2", "+4", "-1e-3", "12", "a=b", "S-01"])
def test_plain_text_and_numbers_are_unchanged(text: str) -> None:
    assert csv_text(text) == text


def _read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_the_dsmb_report_csv_neutralises_text_but_not_numbers(tmp_path: Path) -> None:
    table = Table(
        name="ae_listing", title="AEs",
        columns=(Column("term", "str", "Term"), Column("delta", "float", "Delta"),
                 Column("n", "int", "N")),
        rows=tuple((term, -3.2, -4) for term in ON_THE_LOG),
    )  # fmt: skip
    path = tmp_path / "ae_listing.csv"

    write_csv(table, path)

    rows = _read(path)[1:]
    assert [row[0] for row in rows] == ["'" + term for term in ON_THE_LOG]
    assert {(row[1], row[2]) for row in rows} == {("-3.2", "-4")}


def test_the_sdtm_export_neutralises_text_cells(tmp_path: Path) -> None:
    row = dict.fromkeys(AE_COLUMNS, "")
    rows = [{**row, "AETERM": term, "AESEQ": "1", "AETOXGR": "3"} for term in ATTACKS]
    out = tmp_path / "ae.csv"

    write_rows(rows, out)

    written = _read(out)
    header, body = written[0], written[1:]
    term, seq = header.index("AETERM"), header.index("AESEQ")
    assert [line[term] for line in body] == ["'" + t for t in ATTACKS]
    assert {line[seq] for line in body} == {"1"}
