"""`safetymon calc`: the clinical calculators of the rules core on the command line (edge).

Quantities are "number unit" strings ("8 mg/dL", "459.68 umol/L"); each is converted to its
canonical SI unit by the ingest units module, keyed by the option's LOINC code (RULES.md
§0.5), then handed to the pure calculators. A malformed quantity or an unconvertible unit is
a usage error naming the option (exit code 2), never a guess.
"""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Final

import typer

if TYPE_CHECKING:
    from clinical.calculators import CalculatorError, MeldLabs
    from services.ingest.core.units import Analyte

calc_app = typer.Typer(help="Clinical calculators: MELD family, CTCAE v5.0 lab grades.")

_QUANTITY: Final = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*$")
# CTCAE term -> LOINC of the analyte it grades (RULES.md §0.5); "temperature" is a vital.
_TERM_ANALYTE: Final[dict[str, str]] = {
    "Alanine aminotransferase increased": "1742-6",
    "Aspartate aminotransferase increased": "1920-8",
    "Blood bilirubin increased": "14631-6",
    "INR increased": "6301-6",
    "Platelet count decreased": "777-3",
    "Neutrophil count decreased": "751-8",
    "White blood cell decreased": "6690-2",
    "Anemia": "718-7",
    "Creatinine increased": "14682-9",
    "Hypocalcemia": "2000-8",
    "Hypocalcemia (ionised)": "1994-3",
    "Hyponatremia": "2951-2",
    "Hyperkalemia": "2823-3",
    "Fever": "temperature",
}
_UNITLESS: Final = frozenset({"6301-6"})  # INR: a bare number is its own unit


class Sex(StrEnum):
    """Sex as MELD 3.0 uses it (female adds 1.33)."""

    F = "F"
    M = "M"


def _analyte(code: str) -> Analyte:
    from services.ingest.core.units import LAB_CATALOGUE, VITAL_CATALOGUE

    return LAB_CATALOGUE.get(code) or VITAL_CATALOGUE[code]


def _quantity(text: str, *, code: str, option: str) -> Decimal:
    """Parse "number unit" and convert it to the canonical unit of the LOINC `code`."""
    from services.ingest.core.errors import UnknownUnitError
    from services.ingest.core.units import normalise

    analyte = _analyte(code)
    match = _QUANTITY.match(text)
    if match is None:
        msg = f"{text!r} is not a quantity; expected 'number unit', e.g. '12.3 {analyte.canonical}'"
        raise typer.BadParameter(msg, param_hint=option)
    number, unit = match.groups()
    if not unit and code not in _UNITLESS:
        msg = f"{text!r} has no unit; expected e.g. '{number} {analyte.canonical}'"
        raise typer.BadParameter(msg, param_hint=option)
    if not unit:
        return Decimal(number)
    try:
        value = normalise(float(number), analyte, unit)
    except UnknownUnitError as exc:
        msg = f"{exc}; expected e.g. '{number} {analyte.canonical}'"
        raise typer.BadParameter(msg, param_hint=option) from exc
    return Decimal(repr(value))


def _usage_error(exc: CalculatorError) -> typer.BadParameter:
    """Turn a calculator's refusal into a usage error naming the option at fault."""
    hint = None if exc.field is None else "--" + exc.field.replace("_", "-")
    return typer.BadParameter(str(exc), param_hint=hint)


def _optional_quantity(text: str | None, *, code: str, option: str) -> Decimal | None:
    return None if text is None else _quantity(text, code=code, option=option)


def _check_meld_3_inputs(sodium: str | None, albumin: str | None, sex: Sex | None) -> bool:
    """Return whether MELD 3.0 is asked for; only part of its inputs is a usage error."""
    given = {
        "--sodium": sodium is not None,
        "--albumin": albumin is not None,
        "--sex": sex is not None,
    }
    if all(given.values()):
        return True
    if not (given["--albumin"] or given["--sex"]):
        return False  # MELD and MELD-Na only
    missing = ", ".join(option for option, present in given.items() if not present)
    msg = f"MELD 3.0 needs --sodium, --albumin and --sex together; missing {missing}"
    raise typer.BadParameter(msg, param_hint=missing)


_QUANTITY_HELP: Final = 'a "number unit" string, e.g. '


@calc_app.command("meld")
def meld_command(  # noqa: PLR0913 - one parameter per command-line option
    *,
    bilirubin: Annotated[str, typer.Option(help=f"Total bilirubin, {_QUANTITY_HELP}'8 mg/dL'.")],
    inr: Annotated[str, typer.Option(help="INR, a bare number, e.g. 1.8.")],
    creatinine: Annotated[
        str, typer.Option(help=f"Serum creatinine, {_QUANTITY_HELP}'459.68 umol/L'.")
    ],
    dialysis: Annotated[
        bool, typer.Option(help="≥ 2 dialysis treatments or 24 h CVVHD in the prior week.")
    ] = False,
    sodium: Annotated[
        str | None, typer.Option(help=f"Serum sodium, {_QUANTITY_HELP}'126 mmol/L' (MELD-Na).")
    ] = None,
    albumin: Annotated[
        str | None, typer.Option(help=f"Serum albumin, {_QUANTITY_HELP}'3.0 g/dL' (MELD 3.0).")
    ] = None,
    sex: Annotated[
        Sex | None, typer.Option(case_sensitive=False, help="F or M (MELD 3.0).")
    ] = None,
) -> None:
    """Print MELD (OPTN), MELD-Na (with --sodium) and MELD 3.0 (with --sodium --albumin --sex)."""
    from clinical import calculators as calc

    wants_meld_3 = _check_meld_3_inputs(sodium, albumin, sex)
    try:
        labs = _meld_labs(bilirubin, inr, creatinine, sodium=sodium, albumin=albumin)
        labs = dataclasses.replace(labs, dialysis=dialysis)
        scores = {"meld": calc.meld(labs)}
        if sodium is not None:
            scores["meld_na"] = calc.meld_na(labs)
        if wants_meld_3:
            meld_3 = calc.meld_3(labs, female=sex is Sex.F)
            scores |= {"meld_3": meld_3.capped, "meld_3_uncapped": meld_3.uncapped}
    except calc.CalculatorError as exc:
        raise _usage_error(exc) from exc
    typer.echo(json.dumps(scores))


def _meld_labs(
    bilirubin: str, inr: str, creatinine: str, *, sodium: str | None, albumin: str | None
) -> MeldLabs:
    """Parse the MELD options and convert SI to the conventional units the scores use."""
    from clinical import calculators as calc

    albumin_g_l = _optional_quantity(albumin, code="1751-7", option="--albumin")
    return calc.MeldLabs(
        bilirubin=calc.bilirubin_mg_dl(_quantity(bilirubin, code="14631-6", option="--bilirubin")),
        inr=_quantity(inr, code="6301-6", option="--inr"),
        creatinine=calc.creatinine_mg_dl(
            _quantity(creatinine, code="14682-9", option="--creatinine")
        ),
        sodium=_optional_quantity(sodium, code="2951-2", option="--sodium"),
        albumin=None if albumin_g_l is None else calc.albumin_g_dl(albumin_g_l),
    )


def _term_code(term: str) -> str:
    from clinical.calculators import supported_terms

    if term not in _TERM_ANALYTE:
        names = "; ".join(supported_terms())
        msg = f"unknown CTCAE term {term!r}; supported terms: {names}"
        raise typer.BadParameter(msg, param_hint="TERM")
    return _TERM_ANALYTE[term]


@calc_app.command("ctcae")
def ctcae_command(  # noqa: PLR0913 - one parameter per command-line option
    *,
    term: Annotated[str, typer.Argument(help="CTCAE v5.0 term, e.g. 'Blood bilirubin increased'.")],
    value: Annotated[str, typer.Option(help=f"The result, {_QUANTITY_HELP}'60 umol/L'.")],
    uln: Annotated[str | None, typer.Option(help="Upper limit of normal, same form.")] = None,
    lln: Annotated[str | None, typer.Option(help="Lower limit of normal, same form.")] = None,
    baseline: Annotated[str | None, typer.Option(help="Baseline value, same form.")] = None,
    anticoagulated: Annotated[bool, typer.Option(help="INR: on anticoagulation.")] = False,
    symptomatic: Annotated[bool, typer.Option(help="Hyponatremia: symptomatic.")] = False,
    hours_above_40: Annotated[
        float | None, typer.Option(min=0, help="Fever: hours above 40.0 °C.")
    ] = None,
) -> None:
    """Print the CTCAE v5.0 grade of one lab value (INR without a unit)."""
    from clinical.calculators import CalculatorError, GradingContext, grade

    code = _term_code(term)
    context = GradingContext(
        uln=_optional_quantity(uln, code=code, option="--uln"),
        lln=_optional_quantity(lln, code=code, option="--lln"),
        baseline=_optional_quantity(baseline, code=code, option="--baseline"),
        anticoagulated=anticoagulated,
        symptomatic=symptomatic,
        hours_above_40=None if hours_above_40 is None else Decimal(repr(hours_above_40)),
    )
    measured = _quantity(value, code=code, option="--value")
    try:
        result = grade(term, measured, context)
    except CalculatorError as exc:
        raise _usage_error(exc) from exc
    typer.echo(json.dumps({"term": term, "grade": result}))
