"""Build the DSMB report's tables, charts and stopping-rule status (core layer; pure).

Input is the `Extract` the queries return; output is a `Report` whose tables go unchanged
to HTML, CSV and Parquet. Nothing here reads the clock: the as-of time comes in with the
position, so the same extract always gives the same report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from clinical.ae_terms import AESI, BODY_SYSTEMS
from clinical.codes import normalise_term
from services.report.core import stopping
from services.report.core.config import ARMS, UNCODED_TERM, ReportConfig
from services.report.core.model import (
    AeCount,
    Cell,
    Chart,
    Column,
    Extract,
    Kind,
    Report,
    SaeRow,
    Series,
    StopStatus,
    Table,
    number,
)

AE_KINDS: Final = (
    ("any", "Any AE"),
    ("grade3", "CTCAE grade ≥ 3"),
    ("serious", "Serious AE"),
    ("related", "Related (possible, probable, definite) to UC-MSC or PE"),
    ("fatal", "Fatal AE (outcome fatal or grade 5)"),
)
_CATEGORY_LABELS: Final = {c.key: c.label for c in AESI}
_DAY: Final = 86400.0


def iso(moment: datetime | None) -> str | None:
    """Print an instant as ISO 8601 UTC to the second, the one format every file uses."""
    return None if moment is None else f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _cols(*spec: tuple[str, Kind, str]) -> tuple[Column, ...]:
    return tuple(Column(name, kind, label) for name, kind, label in spec)


def _ratio(numerator: float, denominator: float, scale: float, digits: int) -> float | None:
    return None if denominator <= 0 else round(numerator / denominator * scale, digits)


def build_report(extract: Extract, config: ReportConfig) -> Report:
    """Turn the log's aggregates into the report."""
    tables = (
        exposure_table(extract, config),
        ae_summary_table(extract),
        _terms_table(extract, config),
        _aesi_table(extract),
        _infection_findings_table(extract),
        sae_listing(extract.saes, extract.position.as_of, config),
        _death_listing(extract, config),
        _shift_table(extract),
        _meld_table(extract),
        cumulative_table(extract),
        stopping_table(extract, config),
    )
    return Report(
        trial_id=config.trial_id,
        config_version=config.version,
        position=extract.position,
        tables=tables,
        charts=(_meld_chart(extract), *_cumulative_charts(tables[9], config)),
        stops=stop_statuses(tables[10]),
    )


def exposure_table(extract: Extract, config: ReportConfig) -> Table:
    """Enrolment, follow-up and procedures given against planned, by arm (§8.1 (1)-(2))."""
    by_arm = {row.arm: row for row in extract.exposure}
    rows: list[tuple[Cell, ...]] = []
    for arm in ARMS:
        row = by_arm.get(arm)
        randomised = row.randomised if row else 0
        rows.append(
            (
                arm,
                randomised,
                row.withdrawn if row else 0,
                row.deaths if row else 0,
                round((row.patient_days if row else 0.0) / 7, 2),
                row.uc_msc_given if row else 0,
                randomised * config.planned_uc_msc[arm],
                row.pe_given if row else 0,
                randomised * config.planned_pe[arm],
            )
        )
    return Table(
        "enrolment_exposure",
        "Enrolment and exposure by arm",
        _cols(
            ("arm", "str", "Arm"),
            ("randomised", "int", "Randomised"),
            ("withdrawn", "int", "Withdrawn"),
            ("deaths", "int", "Deaths"),
            ("patient_weeks", "float", "Patient-weeks"),
            ("uc_msc_given", "int", "UC-MSC infusions given"),
            ("uc_msc_planned", "int", "UC-MSC infusions planned"),
            ("pe_given", "int", "PE sessions given"),
            ("pe_planned", "int", "PE sessions planned"),
        ),
        tuple(rows),
        note=(
            f"Planned = randomised × the protocol's per-participant count ({config.version}). "
            "Patient-weeks run from randomisation to the earliest of death, withdrawal, "
            f"day {config.follow_up_days} and the as-of time."
        ),
    )


def ae_summary_table(extract: Extract) -> Table:
    """AE summary by arm: participants (%), events, events per 100 patient-weeks (§8.1 (3))."""
    counts: Mapping[tuple[str, str], AeCount] = {(c.arm, c.kind): c for c in extract.ae_counts}
    exposure = {row.arm: row for row in extract.exposure}
    rows: list[tuple[Cell, ...]] = []
    for arm in ARMS:
        randomised = exposure[arm].randomised if arm in exposure else 0
        weeks = exposure[arm].patient_days / 7 if arm in exposure else 0.0
        deaths = exposure[arm].deaths if arm in exposure else 0
        kinds = [*AE_KINDS, ("death", "Deaths (death recorded)")]
        for kind, label in kinds:
            found = counts.get((arm, kind))
            participants = deaths if kind == "death" else (found.participants if found else 0)
            events = deaths if kind == "death" else (found.events if found else 0)
            rows.append(
                (
                    arm,
                    kind,
                    label,
                    randomised,
                    participants,
                    _ratio(participants, randomised, 100, 1),
                    events,
                    _ratio(events, weeks, 100, 2),
                )
            )
    return Table(
        "ae_summary",
        "Adverse-event summary by arm",
        _cols(
            ("arm", "str", "Arm"),
            ("kind", "str", "Kind"),
            ("label", "str", "Adverse events"),
            ("randomised", "int", "N"),
            ("participants", "int", "Participants"),
            ("percent", "float", "%"),
            ("events", "int", "Events"),
            ("rate_per_100_patient_weeks", "float", "Events per 100 patient-weeks"),
        ),
        tuple(rows),
        note="An AE counts once, in its latest version; its grade is the worst reported.",
    )


def shown_term(term: str, config: ReportConfig) -> str:
    """A reported AE term as the report may show it: a catalogue term, else withheld.

    The term is typed at a site and may carry a name or a hospital number; the verbatim goes
    only into a closed-session report configured for it (`verbatim_terms`).
    """
    if config.verbatim_terms or normalise_term(term) in BODY_SYSTEMS:
        return term
    return UNCODED_TERM


def _terms_table(extract: Extract, config: ReportConfig) -> Table:
    rows = sorted(
        (t.body_system, shown_term(t.term, config), t.arm, t.participants, t.events, t.worst_grade)
        for t in extract.terms
    )
    return Table(
        "ae_by_term",
        "Adverse events by body system and term, with the worst CTCAE grade",
        _cols(
            ("body_system", "str", "Body system (SOC)"),
            ("term", "str", "Term"),
            ("arm", "str", "Arm"),
            ("participants", "int", "Participants"),
            ("events", "int", "Events"),
            ("worst_grade", "int", "Worst grade"),
        ),
        tuple(rows),
    )


def _aesi_table(extract: Extract) -> Table:
    order = {c.key: i for i, c in enumerate(AESI)}
    rows = sorted(extract.aesi, key=lambda a: (order[a.category], a.window, a.arm))
    return Table(
        "aesi_by_window",
        "Events of special interest by arm and procedure window",
        _cols(
            ("category", "str", "Category"),
            ("label", "str", "Event of special interest"),
            ("window", "str", "Onset window"),
            ("arm", "str", "Arm"),
            ("participants", "int", "Participants"),
            ("events", "int", "Events"),
        ),
        tuple(
            (a.category, _CATEGORY_LABELS[a.category], a.window, a.arm, a.participants, a.events)
            for a in rows
        ),
        note=(
            "Windows: after UC-MSC = onset within 7 days of an infusion start; after PE = "
            "within 72 hours of a PE start (RULES.md §4.1 W_INF). Infusion reactions and PE "
            "complications count only inside their reaction windows (W_IR_MSC, W_IR_PE)."
        ),
    )


def _infection_findings_table(extract: Extract) -> Table:
    rows = sorted(extract.infection_findings, key=lambda f: (f.finding, f.window, f.arm))
    return Table(
        "infection_findings_by_window",
        "Infection findings by arm and procedure window",
        _cols(
            ("finding", "str", "Finding"),
            ("label", "str", "Infection finding"),
            ("window", "str", "Window"),
            ("arm", "str", "Arm"),
            ("participants", "int", "Participants"),
            ("findings", "int", "Findings"),
        ),
        tuple((f.finding, f.label, f.window, f.arm, f.participants, f.findings) for f in rows),
        note=(
            "Fever, ascitic PMN >= 250/mm³ and positive blood cultures (a common skin commensal "
            "from its second set on the same or next day), at collection or observation time, "
            "as the rules' INF-01, INF-04 and INF-05 see them. Windows as for the events of "
            "special interest: after UC-MSC = within 7 days of an infusion start, after PE = "
            "within 72 hours of a PE start (W_INF). SIRS and qSOFA, which combine several "
            "observations, are in the alerts and the audit, not in this table."
        ),
    )


def sponsor_clock(row: SaeRow, as_of: datetime, config: ReportConfig) -> tuple[str | None, str]:
    """SAE-02: the sponsor due time and whether the report met it, as of `as_of`."""
    if row.awareness_at is None:
        return None, "no awareness time"
    due = row.awareness_at + timedelta(hours=config.sponsor_clock_hours)
    if row.reported_at is not None:
        return iso(due), "on time" if row.reported_at <= due else "late"
    return iso(due), "overdue" if as_of > due else "pending"


def _days_since(moment: datetime, procedure_at: datetime | None) -> float | None:
    if procedure_at is None:
        return None
    return round((moment - procedure_at).total_seconds() / _DAY, 1)


def sae_listing(saes: Iterable[SaeRow], as_of: datetime, config: ReportConfig) -> Table:
    """SAE listing with criteria, causality, expectedness, outcome and clock compliance."""
    rows: list[tuple[Cell, ...]] = []
    for sae in sorted(saes, key=lambda s: (s.arm, s.participant_id, s.onset_at, s.ae_ref)):
        due, clock = sponsor_clock(sae, as_of, config)
        rows.append(
            (
                sae.participant_id,
                sae.site_id,
                sae.arm,
                sae.ae_ref,
                shown_term(sae.term, config),
                iso(sae.onset_at),
                sae.worst_grade,
                sae.criteria,
                sae.relatedness_uc_msc,
                sae.relatedness_pe,
                sae.expectedness,
                sae.outcome,
                sae.susar,
                sae.last_procedure,
                _days_since(sae.onset_at, sae.last_procedure_at),
                iso(sae.awareness_at),
                iso(sae.reported_at),
                due,
                clock,
            )
        )
    return Table(
        "sae_listing",
        "Serious adverse events",
        _cols(
            ("participant_id", "str", "Participant"),
            ("site_id", "str", "Site"),
            ("arm", "str", "Arm"),
            ("ae_ref", "str", "AE"),
            ("term", "str", "Term"),
            ("onset_at", "str", "Onset (UTC)"),
            ("worst_grade", "int", "Worst grade"),
            ("criteria", "str", "Seriousness criteria"),
            ("relatedness_uc_msc", "str", "Causality UC-MSC"),
            ("relatedness_pe", "str", "Causality PE"),
            ("expectedness", "str", "Expectedness"),
            ("outcome", "str", "Outcome"),
            ("susar", "bool", "SUSAR"),
            ("last_procedure", "str", "Last procedure"),
            ("days_since_last_procedure", "float", "Days since last procedure"),
            ("awareness_at", "str", "Investigator aware (UTC)"),
            ("reported_to_sponsor_at", "str", "Reported to sponsor (UTC)"),
            ("sponsor_due_at", "str", "Sponsor due (UTC)"),
            ("sponsor_clock", "str", "24 h clock"),
        ),
        tuple(rows),
        note=(
            "SUSAR = serious, at least possibly related to UC-MSC and unexpected (SAE-04). "
            f"The clock is awareness + {config.sponsor_clock_hours} h (SAE-02)."
        ),
    )


def _death_listing(extract: Extract, config: ReportConfig) -> Table:
    rows: list[tuple[Cell, ...]] = []
    for death in sorted(extract.deaths, key=lambda d: (d.arm, d.participant_id)):
        days = _days_since(death.died_at, death.last_procedure_at)
        rows.append(
            (
                death.participant_id,
                death.site_id,
                death.arm,
                iso(death.died_at),
                death.cause,
                death.related_ae_ref,
                death.last_procedure,
                days,
                days is not None and days <= config.sentinel_days,
            )
        )
    return Table(
        "death_listing",
        "Deaths",
        _cols(
            ("participant_id", "str", "Participant"),
            ("site_id", "str", "Site"),
            ("arm", "str", "Arm"),
            ("died_at", "str", "Died (UTC)"),
            ("cause", "str", "Cause category"),
            ("related_ae_ref", "str", "Related AE"),
            ("last_procedure", "str", "Last procedure"),
            ("days_since_last_procedure", "float", "Days since last procedure"),
            ("procedure_proximate", "bool", f"≤ {config.sentinel_days} d after a procedure"),
        ),
        tuple(rows),
    )


def _shift_table(extract: Extract) -> Table:
    rows = sorted(
        (s.term, s.arm, s.baseline_grade, s.worst_grade, s.participants) for s in extract.shifts
    )
    return Table(
        "lab_shift",
        "Laboratory shift: baseline vs worst post-baseline CTCAE v5.0 grade",
        _cols(
            ("term", "str", "CTCAE term"),
            ("arm", "str", "Arm"),
            ("baseline_grade", "int", "Baseline grade"),
            ("worst_grade", "int", "Worst post-baseline grade"),
            ("participants", "int", "Participants"),
        ),
        tuple(sorted(rows, key=lambda r: (r[0], r[1], -1 if r[2] is None else r[2], r[3]))),
        note=(
            "Baseline = last value before randomisation (empty when none); post-baseline = "
            "values from randomisation to the end of follow-up (RULES.md §7 grading)."
        ),
    )


def _meld_table(extract: Extract) -> Table:
    rows = sorted((m.arm, m.week, m.participants, m.q1, m.median, m.q3) for m in extract.meld)
    return Table(
        "meld_by_week",
        "MELD (OPTN) by arm and study week",
        _cols(
            ("arm", "str", "Arm"),
            ("week", "int", "Week"),
            ("participants", "int", "Participants"),
            ("q1", "float", "Q1"),
            ("median", "float", "Median"),
            ("q3", "float", "Q3"),
        ),
        tuple(rows),
        note=(
            "Each participant's last MELD of the week; MELD from INR with the latest bilirubin "
            "and creatinine at most 48 h earlier (RULES.md §5.1)."
        ),
    )


def _meld_chart(extract: Extract) -> Chart:
    series = tuple(
        Series(
            f"Arm {arm}",
            tuple(
                (float(m.week), m.median)
                for m in sorted(extract.meld, key=lambda m: m.week)
                if m.arm == arm
            ),
        )
        for arm in ARMS
    )
    return Chart("meld", "Median MELD by arm", "Week since randomisation", "MELD", series)


def cumulative_table(extract: Extract) -> Table:
    """Cumulative proportion of participants with a first AESI by day, per category and arm."""
    randomised = {row.arm: row.randomised for row in extract.exposure}
    order = {c.key: i for i, c in enumerate(AESI)}
    rows: list[tuple[Cell, ...]] = []
    running: dict[tuple[str, str], int] = {}
    onsets = sorted(extract.aesi_onsets, key=lambda o: (order[o.category], o.arm, o.day))
    for onset in onsets:
        key = (onset.category, onset.arm)
        running[key] = running.get(key, 0) + onset.participants
        total = randomised.get(onset.arm, 0)
        rows.append(
            (
                onset.category,
                onset.arm,
                onset.day,
                running[key],
                total,
                _ratio(running[key], total, 100, 2),
            )
        )
    return Table(
        "aesi_cumulative",
        "Cumulative incidence of events of special interest by arm",
        _cols(
            ("category", "str", "Category"),
            ("arm", "str", "Arm"),
            ("day", "int", "Day since randomisation"),
            ("participants", "int", "Participants with a first event by then"),
            ("randomised", "int", "Randomised"),
            ("percent", "float", "Cumulative %"),
        ),
        tuple(rows),
        note="Crude cumulative proportion (deaths and withdrawals are not censored).",
    )


def _cumulative_charts(table: Table, config: ReportConfig) -> tuple[Chart, ...]:
    charts = []
    for category in AESI:
        series = []
        for arm in ARMS:
            points: list[tuple[float, float]] = [(0.0, 0.0)]
            for row in table.rows:
                if row[0] == category.key and row[1] == arm:
                    points.append((number(row[2]), number(row[5])))
            points.append((float(config.follow_up_days), points[-1][1]))
            series.append(Series(f"Arm {arm}", tuple(points)))
        charts.append(
            Chart(
                f"cumulative_{category.key}",
                f"{category.label}: cumulative incidence",
                "Day since randomisation",
                "% of randomised",
                tuple(series),
                step=True,
            )
        )
    return tuple(charts)


def stopping_table(extract: Extract, config: ReportConfig) -> Table:
    """STOP-01..04 per arm with posterior probabilities and boundaries (RULES.md §8.2)."""
    stops = {s.arm: s for s in extract.stops}
    mortality = {(m.arm, m.window_days): m for m in extract.mortality}
    rows: list[tuple[Cell, ...]] = []
    s1 = config.stop01
    for arm in config.procedure_arms:
        x, n = (stops[arm].prst_events, stops[arm].prst_evaluable) if arm in stops else (0, 0)
        posterior = stopping.posterior_exceeds(
            x, n, prior_alpha=s1.prior_alpha, prior_beta=s1.prior_beta, rate=s1.rate
        )
        bound = stopping.stop01_boundary(
            n, prior_alpha=s1.prior_alpha, prior_beta=s1.prior_beta, rate=s1.rate,
            probability=s1.probability,
        )  # fmt: skip
        triggered = posterior >= s1.probability
        rows.append(
            (
                "STOP-01", arm, s1.window_days, x, n, round(posterior, 4), s1.probability,
                f"stop at ≥ {bound} of {n}" if bound is not None else f"not reachable at n = {n}",
                None, triggered,
                "stop enrolment to the arm; convene the DSMB" if triggered else "continue",
            )
        )  # fmt: skip
    s2 = config.stop02
    for window in s2.windows_days:
        control = mortality.get((config.control_arm, window))
        control_counts = (control.deaths, control.evaluable) if control else (0, 0)
        for arm in ARMS:
            if arm == config.control_arm:
                continue
            found = mortality.get((arm, window))
            counts = (found.deaths, found.evaluable) if found else (0, 0)
            result = stopping.compare_mortality(
                counts, control_counts, probability=s2.probability, min_difference=s2.min_difference
            )
            rows.append(
                (
                    "STOP-02", arm, window, counts[0], counts[1], round(result.probability, 4),
                    s2.probability,
                    f"Pr(p_{arm} > p_{config.control_arm}) ≥ {s2.probability} and difference "
                    f"≥ {round(s2.min_difference * 100)} points "
                    f"(control {control_counts[0]}/{control_counts[1]})",
                    None if result.difference is None else round(result.difference, 4),
                    result.triggered,
                    "flag for the DSMB" if result.triggered else "continue",
                )
            )  # fmt: skip
    for arm in config.procedure_arms:
        events = stops[arm].sentinel_events if arm in stops else 0
        triggered = events > 0
        rows.append(
            (
                "STOP-03", arm, config.sentinel_days, events, None, None, None,
                "pause at ≥ 1 death or grade-4 event, at least possibly related", None,
                triggered,
                "pause procedures in the arm; ad hoc DSMB review" if triggered else "continue",
            )
        )  # fmt: skip
    for arm in ARMS:
        found_stop = stops.get(arm)
        susars = found_stop.susars if found_stop else 0
        top = found_stop.susar_top_count if found_stop else 0
        triggered = top >= config.susar_same_term
        top_term = found_stop.susar_top_term if found_stop else None
        term = shown_term(top_term, config) if top_term else None
        rows.append(
            (
                "STOP-04", arm, None, susars, None, None, None,
                f"ad hoc meeting at ≥ {config.susar_same_term} SUSARs of one term"
                + (f" (most: {top} × {term})" if term else ""),
                None, triggered,
                "ad hoc DSMB meeting" if triggered
                else ("each SUSAR to the DSMB chair ≤ 24 h" if susars else "continue"),
            )
        )  # fmt: skip
    return Table(
        "stopping_rules",
        "Stopping-rule status by arm (RULES.md §8.2)",
        _cols(
            ("rule", "str", "Rule"),
            ("arm", "str", "Arm"),
            ("window_days", "int", "Window (days)"),
            ("events", "int", "Events"),
            ("n", "int", "n"),
            ("probability", "float", "Posterior probability"),
            ("threshold", "float", "Probability boundary"),
            ("boundary", "str", "Boundary"),
            ("difference", "float", "Observed difference"),
            ("triggered", "bool", "Triggered"),
            ("action", "str", "Action"),
        ),
        tuple(rows),
        note=(
            f"STOP-01: Pr(θ > {s1.rate} | x, n) under Beta({s1.prior_alpha}, {s1.prior_beta}); "
            "n = participants past the window after their last procedure, plus those with an "
            "event. STOP-02: Beta(1, 1) priors on mortality within the window; n = "
            "participants followed through the window, or who died in it."
        ),
    )


def stop_statuses(table: Table) -> tuple[StopStatus, ...]:
    """One status per stopping-rule row: the rule, arm, trigger and the action to take."""
    return tuple(
        StopStatus(str(row[0]), str(row[1]), bool(row[9]), str(row[10])) for row in table.rows
    )
