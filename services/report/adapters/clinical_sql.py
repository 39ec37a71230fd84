"""SQL of the clinical kernel's procedure windows and infection findings (adapters layer).

The windows are `clinical.windows`' (RULES.md §4.1): the infection windows W_INF_MSC and
W_INF_PE are open at the procedure start and closed at start + their hours; the reaction
windows W_IR_MSC and W_IR_PE are closed, from the start to the end + their hours (a procedure
sent without an end lasted its nominal time, applied where `procs.end_at` is made). The
infection findings are those of the rules' INF-01 (fever), INF-04 (spontaneous bacterial
peritonitis) and INF-05 (bacteraemia: a common commensal counts from its second set, on the
same or the next site day), at the thresholds the rules default to (`clinical.infection`).
"""

from __future__ import annotations

from typing import Final

from clinical import infection, organisms
from clinical.labs import SYSTEMIC_SPECIMENS
from services.report.core.config import ReportConfig

#: procs.kind of each procedure.
MSC: Final = "UC-MSC"
PE: Final = "PE"
FINDINGS: Final = {
    "fever": "Fever (INF-01, >= 38.0 °C)",
    "sbp": "Spontaneous bacterial peritonitis (INF-04, ascitic PMN >= 250/mm³)",
    "bacteraemia": "Bacteraemia (INF-05, commensals from a second set)",
}


def window_sql(kind: str, window: str, *, at: str, participant: str, c: ReportConfig) -> str:
    """DuckDB boolean: `at` lies in a `window` ("infection" | "reaction") of a `kind` procedure."""
    if window == "infection":
        hours = int(c.msc_window_hours if kind == MSC else c.pe_window_hours)
        inside = f"{at} > p.start_at AND {at} <= p.start_at + INTERVAL {hours} HOUR"
    else:
        hours = int(c.msc_reaction_hours if kind == MSC else c.pe_reaction_hours)
        inside = f"{at} >= p.start_at AND {at} <= p.end_at + INTERVAL {hours} HOUR"
    return (
        f"EXISTS (SELECT 1 FROM procs p WHERE p.participant_id = {participant} "
        f"AND p.kind = '{kind}' AND {inside})"
    )


def infection_findings_sql(c: ReportConfig) -> str:
    """SELECT of (finding, participant_id, arm, at, in_msc, in_pe) over `facts` and `enrol`."""
    systemic = ", ".join(f"'{s}'" for s in SYSTEMIC_SPECIMENS)
    value = "coalesce(f.p.result.normalised_value, f.p.result.value)"
    cultures = f"""
        SELECT f.participant_id, f.occurred_at AS at, f.p.organism.code AS code,
               f.p.organism.display AS display
        FROM facts f
        WHERE f.event_type = 'lab_result_recorded' AND f.p.loinc = '600-7'
          AND coalesce(f.p.specimen, 'serum') IN ({systemic})
          AND {value} >= {infection.CULTURE_GROWTH}"""
    second_set = (
        "EXISTS (SELECT 1 FROM cultures o WHERE o.participant_id = c.participant_id "
        "AND o.code IS NOT DISTINCT FROM c.code AND o.at < c.at "
        f"AND abs(date_diff('day', {organisms.site_day_sql('o.at')}, "
        f"{organisms.site_day_sql('c.at')})) <= 1)"
    )
    temperature = (
        "coalesce(f.p.observations.temperature.normalised_value, "
        "f.p.observations.temperature.value)"
    )
    findings = f"""
        SELECT 'fever' AS finding, f.participant_id, f.occurred_at AS at FROM facts f
        WHERE f.event_type = 'vital_signs_recorded' AND {temperature} >= {infection.FEVER_C}
        UNION ALL
        SELECT 'sbp', f.participant_id, f.occurred_at FROM facts f
        WHERE f.event_type = 'lab_result_recorded' AND f.p.loinc = '751-8'
          AND f.p.specimen = 'ascitic_fluid' AND {value} >= {infection.SBP_ASCITIC_PMN_E9_L}
        UNION ALL
        SELECT 'bacteraemia', c.participant_id, c.at FROM cultures c
        WHERE NOT {organisms.commensal_sql("c.code", "c.display")} OR {second_set}"""
    msc = window_sql(MSC, "infection", at="x.at", participant="x.participant_id", c=c)
    pe = window_sql(PE, "infection", at="x.at", participant="x.participant_id", c=c)
    return f"""WITH cultures AS ({cultures}), found AS ({findings})
        SELECT x.finding, x.participant_id, e.arm, x.at, {msc} AS in_msc, {pe} AS in_pe
        FROM found x JOIN enrol e USING (participant_id)"""
