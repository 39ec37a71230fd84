"""Read the report's aggregates from an event-log Parquet snapshot with DuckDB (adapters).

Everything is set-based SQL over the log prefix `seq ≤ position`, where the position is the
last event recorded at or before the as-of time: corrections applied (a `fact_corrected`
replaces or retracts the payload it names), AEs folded to their latest version, procedures
joined with ASOF joins, lab grades and MELD computed by the expressions of `grading_sql`.
Python sees only the aggregated rows. One in-memory DuckDB connection per extract; the
Parquet file is only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import duckdb

from clinical import adverse_events as ae_class
from clinical.ae_terms import (
    AESI,
    BLEEDING,
    BODY_SYSTEMS,
    CATHETER_INFECTION,
    INFUSION_REACTION_TERMS,
    UNCLASSIFIED,
    category_sql,
    matcher_sql,
    normalise_term_sql,
)
from clinical.codes import ANAPHYLAXIS
from clinical.labs import SYSTEMIC_SPECIMENS, lab_kind_rows
from clinical.sql import in_list, literal
from clinical.windows import WindowLengths
from services.report.adapters.clinical_sql import (
    FINDINGS,
    MSC,
    PE,
    infection_findings_sql,
    window_sql,
)
from services.report.adapters.grading_sql import grade_sql, meld_sql
from services.report.core.catalogue import BLOOD_CULTURE_LOINC, LAB_KINDS
from services.report.core.config import ReportConfig
from services.report.core.errors import SourceError
from services.report.core.model import (
    AeCount,
    AesiCount,
    AesiOnset,
    ArmExposure,
    DeathRow,
    Extract,
    InfectionFindingCount,
    LogPosition,
    MeldPoint,
    MortalityCount,
    SaeRow,
    ShiftCount,
    StopCounts,
    TermCount,
)

GENESIS_HASH: Final = "0" * 64
_TYPES: Final = (
    "participant_enrolled",
    "participant_withdrawn",
    "treatment_administered",
    "lab_result_recorded",
    "vital_signs_recorded",
    "adverse_event_reported",
    "adverse_event_updated",
    "death_recorded",
    "sae_reported_to_sponsor",
    "fact_corrected",
)


#: The payload fields the report reads, parsed once per event into a typed STRUCT: every
#: later access is a field read, not another JSON parse (the 1M-event benchmark's hot spot).
PAYLOAD: Final = (
    '{"arm": "VARCHAR", "treatment": "VARCHAR", "ended_at": "VARCHAR", "ae_ref": "VARCHAR", '
    '"term": "VARCHAR", "meddra_llt_code": "VARCHAR", "ctcae_grade": "INTEGER", '
    '"seriousness_criteria": "VARCHAR[]", "planned_admission_for_procedure": "BOOLEAN", '
    '"relatedness_uc_msc": "VARCHAR", "relatedness_plasma_exchange": "VARCHAR", '
    '"expectedness": "VARCHAR", "outcome": "VARCHAR", "awareness_at": "VARCHAR", '
    '"cause_category": "VARCHAR", "related_ae_ref": "VARCHAR", "loinc": "VARCHAR", '
    '"result": {"value": "DOUBLE", "normalised_value": "DOUBLE"}, '
    '"normalised_reference_low": "DOUBLE", "normalised_reference_high": "DOUBLE", '
    '"specimen": "VARCHAR", "organism": {"code": "VARCHAR", "display": "VARCHAR"}, '
    '"observations": {"temperature": {"value": "DOUBLE", "normalised_value": "DOUBLE"}}, '
    '"supersedes_event_id": "VARCHAR", "replacement": "JSON"}'
)


def _parsed_sql(path: str) -> str:
    """The log's rows the report reads, with their payloads parsed into a typed STRUCT."""
    return (
        "SELECT seq, event_id, event_type, participant_id, site_id, occurred_at, "
        f"""from_json(content, '{{"payload": {PAYLOAD}}}').payload AS p """
        f"FROM read_parquet({path}) WHERE event_type IN {in_list(_TYPES)}"
    )


class DuckDBLogSource:
    """`SafetyData` over an `event_log.parquet` written by ingest's audit snapshot.

    With a `projection` directory, the parsed rows of a snapshot are kept there as Parquet
    (`parsed-<last seq>-<head hash>.parquet`) and reused by every later report on that
    snapshot: parsing the JSON content is most of the cost of a report, and an append-only,
    hash-chained log is identified exactly by its last seq and head hash. The projection is
    a cache: a report is the same with or without it.
    """

    def __init__(
        self, event_log: Path, *, projection: Path | None = None, threads: int | None = None
    ) -> None:
        self._path = event_log
        self._projection = projection
        self._threads = threads

    def extract(self, as_of: datetime, config: ReportConfig) -> Extract:
        """Aggregate the log as of `as_of` (recorded time).

        Raises:
            SourceError: the file is missing or is not an event-log snapshot.

        """
        if not self._path.is_file():
            raise SourceError(f"no event log at {self._path}")
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            if self._threads:
                con.execute(f"SET threads = {int(self._threads)}")
            queries = _Queries(con, literal(str(self._path)), self._source(con), as_of, config)
            return queries.run()
        except duckdb.Error as exc:
            raise SourceError(f"cannot read {self._path}: {exc}") from exc
        finally:
            con.close()

    def _source(self, con: duckdb.DuckDBPyConnection) -> str:
        """SQL of the parsed rows: from the projection when there is one, else the log."""
        path = literal(str(self._path))
        if self._projection is None:
            return f"({_parsed_sql(path)})"
        row = con.execute(f"SELECT max(seq), arg_max(hash, seq) FROM read_parquet({path})")
        last, head = row.fetchone() or (None, None)
        target = self._projection / f"parsed-{last or 0}-{(head or GENESIS_HASH)[:16]}.parquet"
        if not target.is_file():
            self._projection.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            con.execute(
                f"COPY ({_parsed_sql(path)} ORDER BY seq) TO {literal(str(partial))} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
            partial.replace(target)
            # Older snapshots' projections are never read again: keep only the newest.
            for stale in self._projection.glob("parsed-*.parquet"):
                if stale != target:
                    stale.unlink()
        return f"read_parquet({literal(str(target))})"


class _Queries:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: str,
        source: str,
        as_of: datetime,
        config: ReportConfig,
    ) -> None:
        self.con = con
        self.path = path
        self.source = source
        self.as_of = as_of
        self.config = config
        #: The nominal procedure durations of the clinical kernel (the report's config has
        #: the window lengths, not these).
        self.lengths = WindowLengths()

    def q(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    def run(self) -> Extract:
        position = self._position()
        self._prepare(position.seq)
        return Extract(
            position=position,
            exposure=self._exposure(),
            ae_counts=self._ae_counts(),
            terms=self._terms(),
            aesi=self._aesi(),
            aesi_onsets=self._aesi_onsets(),
            infection_findings=self._infection_findings(),
            saes=self._saes(),
            deaths=self._deaths(),
            shifts=self._shifts(),
            meld=self._meld(),
            stops=self._stops(),
            mortality=self._mortality(),
        )

    def _position(self) -> LogPosition:
        (seq,) = self.q(
            f"SELECT coalesce(max(seq), 0) FROM read_parquet({self.path}) WHERE recorded_at <= ?",
            [self.as_of],
        )[0]
        head = self.q(f"SELECT hash FROM read_parquet({self.path}) WHERE seq = ?", [seq])
        return LogPosition(
            as_of=self.as_of, seq=int(seq), chain_head=head[0][0] if head else GENESIS_HASH,
            events=int(seq),
        )  # fmt: skip

    def _prepare(self, seq: int) -> None:
        c = self.config
        ex = self.con.execute
        ex(f"CREATE TEMP MACRO norm_term(t) AS {normalise_term_sql('t')}")
        ex(
            # A view, not a table: only `facts` below materialises the parsed payloads, once.
            f"CREATE TEMP VIEW log AS SELECT * FROM {self.source} AS parsed WHERE seq <= {int(seq)}"
        )
        ex(
            """CREATE TEMP TABLE corrections AS
            SELECT p.supersedes_event_id AS target,
                   arg_max(coalesce(CAST(p.replacement AS VARCHAR), 'null'), seq) AS payload
            FROM log WHERE event_type = 'fact_corrected' GROUP BY 1"""
        )
        ex(
            f"""CREATE TEMP TABLE facts AS
            SELECT l.seq, l.event_type, l.participant_id, l.site_id, l.occurred_at,
                   CASE WHEN c.target IS NULL THEN l.p
                        ELSE from_json(c.payload, '{PAYLOAD}') END AS p
            FROM log l LEFT JOIN corrections c ON c.target = l.event_id
            WHERE l.event_type <> 'fact_corrected' AND coalesce(c.payload, '') <> 'null'"""
        )
        ex(
            f"""CREATE TEMP TABLE enrol AS
            WITH e AS (
                SELECT participant_id, arg_max(site_id, seq) AS site_id,
                       arg_max(p.arm, seq) AS arm, arg_max(occurred_at, seq) AS randomised_at
                FROM facts WHERE event_type = 'participant_enrolled' GROUP BY 1),
            d AS (SELECT participant_id, min(occurred_at) AS died_at FROM facts
                  WHERE event_type = 'death_recorded' GROUP BY 1),
            w AS (SELECT participant_id, min(occurred_at) AS withdrawn_at FROM facts
                  WHERE event_type = 'participant_withdrawn' GROUP BY 1)
            SELECT e.*, d.died_at, w.withdrawn_at,
                   least(?::TIMESTAMPTZ, coalesce(d.died_at, ?::TIMESTAMPTZ),
                         coalesce(w.withdrawn_at, ?::TIMESTAMPTZ),
                         e.randomised_at + INTERVAL {int(c.follow_up_days)} DAY) AS fu_end
            FROM e LEFT JOIN d USING (participant_id) LEFT JOIN w USING (participant_id)""",
            [self.as_of, self.as_of, self.as_of],
        )
        # A procedure sent without its end lasted its nominal time (clinical.windows).
        assumed_msc = int(self.lengths.assumed_msc_minutes)
        assumed_pe = int(self.lengths.assumed_pe_minutes)
        ex(
            f"""CREATE TEMP TABLE treatments AS
            SELECT f.participant_id, f.occurred_at AS start_at, f.p.treatment AS treatment,
                   coalesce(TRY_CAST(f.p.ended_at AS TIMESTAMPTZ),
                            f.occurred_at + CASE f.p.treatment
                                WHEN 'uc_msc_infusion' THEN INTERVAL {assumed_msc} MINUTE
                                WHEN 'plasma_exchange' THEN INTERVAL {assumed_pe} MINUTE
                                ELSE INTERVAL 0 MINUTE END) AS end_at
            FROM facts f JOIN enrol e USING (participant_id)
            WHERE f.event_type = 'treatment_administered'"""
        )
        ex(
            """CREATE TEMP TABLE procs AS
            SELECT participant_id, start_at, end_at,
                   CASE treatment WHEN 'uc_msc_infusion' THEN 'UC-MSC' ELSE 'PE' END AS kind
            FROM treatments WHERE treatment IN ('uc_msc_infusion', 'plasma_exchange')"""
        )
        # The AE classifications are clinical.adverse_events', rendered over these columns.
        cols = ae_class.Columns(
            criteria="a.criteria_list",
            planned="a.planned",
            grade="a.grade",
            outcome="a.outcome",
            rel_msc="a.rel_msc",
            rel_pe="a.rel_pe",
            expectedness="a.expectedness",
        )
        ae_sql = ae_class.predicates(cols)
        ex(
            """CREATE TEMP TABLE ae_latest AS
            SELECT f.participant_id, f.p.ae_ref AS ae_ref,
                   arg_max(f.p.term, f.seq) AS term,
                   arg_max(f.p.meddra_llt_code, f.seq) AS llt,
                   max(f.p.ctcae_grade) AS worst_grade,
                   arg_max(f.p.ctcae_grade, f.seq) AS grade,
                   arg_max(coalesce(f.p.seriousness_criteria, []), f.seq) AS criteria_list,
                   arg_max(coalesce(f.p.planned_admission_for_procedure, false), f.seq)
                       AS planned,
                   arg_max(coalesce(f.p.relatedness_uc_msc, 'not_applicable'), f.seq)
                       AS rel_msc,
                   arg_max(coalesce(f.p.relatedness_plasma_exchange, 'not_applicable'),
                           f.seq) AS rel_pe,
                   arg_max(coalesce(f.p.expectedness, 'unknown'), f.seq) AS expectedness,
                   arg_max(coalesce(f.p.outcome, 'unknown'), f.seq) AS outcome,
                   arg_max(f.occurred_at, f.seq) AS onset_at,
                   arg_min(TRY_CAST(f.p.awareness_at AS TIMESTAMPTZ), f.seq) AS awareness_at
            FROM facts f
            WHERE f.event_type IN ('adverse_event_reported', 'adverse_event_updated')
            GROUP BY 1, 2"""
        )

        def in_window(kind: str, window: str) -> str:
            return window_sql(kind, window, at="a.onset_at", participant="a.participant_id", c=c)

        ex(
            f"""CREATE TEMP TABLE ae AS
            WITH a AS (
                SELECT a.*, e.arm, e.site_id, e.randomised_at, norm_term(a.term) AS nterm,
                       {ae_sql["serious"]} AS serious,
                       {ae_sql["related"]} AS related,
                       {ae_sql["fatal"]} AS fatal,
                       {ae_sql["susar_candidate"]} AS susar_candidate,
                       array_to_string({ae_class.qualifying_criteria_sql(cols)}, '; ')
                           AS criteria
                FROM ae_latest a JOIN enrol e USING (participant_id)),
            m AS (
                SELECT a.participant_id, a.ae_ref, m.start_at AS msc_start
                FROM a ASOF LEFT JOIN (SELECT * FROM procs WHERE kind = 'UC-MSC') m
                  ON a.participant_id = m.participant_id AND a.onset_at >= m.start_at),
            q AS (
                SELECT a.participant_id, a.ae_ref, q.start_at AS pe_start
                FROM a ASOF LEFT JOIN (SELECT * FROM procs WHERE kind = 'PE') q
                  ON a.participant_id = q.participant_id AND a.onset_at >= q.start_at)
            SELECT a.*, m.msc_start, q.pe_start,
                   {in_window(MSC, "infection")} AS in_msc,
                   {in_window(PE, "infection")} AS in_pe,
                   {in_window(MSC, "reaction")} AS in_msc_reaction,
                   {in_window(PE, "reaction")} AS in_pe_reaction,
                   greatest(m.msc_start, q.pe_start) AS last_procedure_at,
                   CASE WHEN m.msc_start IS NULL AND q.pe_start IS NULL THEN NULL
                        WHEN q.pe_start IS NULL OR m.msc_start >= q.pe_start THEN 'UC-MSC'
                        ELSE 'PE' END AS last_procedure
            FROM a JOIN m USING (participant_id, ae_ref) JOIN q USING (participant_id, ae_ref)"""
        )
        categories = " UNION ALL ".join(
            f"SELECT {literal(cat.key)} AS category, participant_id, ae_ref, arm, onset_at, "
            f"randomised_at, in_msc, in_pe FROM ae WHERE " + category_sql(cat)
            for cat in AESI
        )
        ex(f"CREATE TEMP TABLE aesi AS {categories}")
        ex(
            """CREATE TEMP TABLE deaths AS
            SELECT d.participant_id, e.site_id, e.arm, d.occurred_at AS died_at,
                   d.p.cause_category AS cause, d.p.related_ae_ref AS related_ae_ref,
                   pr.kind AS last_procedure, pr.start_at AS last_procedure_at
            FROM (SELECT * FROM facts WHERE event_type = 'death_recorded') d
            JOIN enrol e USING (participant_id)
            ASOF LEFT JOIN procs pr
              ON d.participant_id = pr.participant_id AND d.occurred_at >= pr.start_at"""
        )
        # The graded kinds by LOINC *and specimen* (clinical.labs): an ascitic WBC or a
        # urine sodium is no blood result; a specimen left out is the contract's serum.
        terms = {k.kind: k.term for k in LAB_KINDS}
        kinds = " UNION ALL ".join(
            f"SELECT {literal(loinc)} AS loinc, {literal(specimen)} AS specimen, "
            f"{literal(kind)} AS kind, {literal(terms[kind])} AS term"
            for loinc, specimen, kind, _unit in lab_kind_rows()
            if kind in terms
        )
        ex(f"CREATE TEMP TABLE lab_kinds AS {kinds}")
        ex(
            """CREATE TEMP TABLE labs AS
            SELECT f.participant_id, e.arm, e.randomised_at, e.fu_end,
                   f.occurred_at AS taken_at, f.seq,
                   k.kind, k.term,
                   -- Cast once here to the grading's exact decimal type (grading_sql).
                   CAST(coalesce(f.p.result.normalised_value, f.p.result.value)
                        AS DECIMAL(18, 6)) AS value,
                   CAST(f.p.normalised_reference_low AS DECIMAL(18, 6)) AS low,
                   CAST(f.p.normalised_reference_high AS DECIMAL(18, 6)) AS high
            FROM facts f JOIN enrol e USING (participant_id)
            JOIN lab_kinds k
              ON k.loinc = f.p.loinc AND k.specimen = coalesce(f.p.specimen, 'serum')
            WHERE f.event_type = 'lab_result_recorded'"""
        )
        ex(f"CREATE TEMP TABLE infection_findings AS {infection_findings_sql(c)}")

    def _exposure(self) -> tuple[ArmExposure, ...]:
        rows = self.q(
            """SELECT e.arm, count(*), count(e.withdrawn_at), count(e.died_at),
                      sum(greatest(0, epoch(e.fu_end) - epoch(e.randomised_at))) / 86400.0,
                      coalesce(sum(t.msc), 0), coalesce(sum(t.pe), 0)
               FROM enrol e LEFT JOIN (
                   SELECT participant_id,
                          count(*) FILTER (WHERE treatment = 'uc_msc_infusion') AS msc,
                          count(*) FILTER (WHERE treatment = 'plasma_exchange') AS pe
                   FROM treatments GROUP BY 1) t USING (participant_id)
               GROUP BY e.arm ORDER BY e.arm"""
        )
        return tuple(
            ArmExposure(arm, int(n), int(w), int(d), float(days or 0.0), int(m), int(pe))
            for arm, n, w, d, days, m, pe in rows
        )

    def _ae_counts(self) -> tuple[AeCount, ...]:
        kinds = {
            "any": "true",
            "grade3": "worst_grade >= 3",
            "serious": "serious",
            "related": "related",
            "fatal": "fatal",
        }
        sql = " UNION ALL ".join(
            f"SELECT arm, {literal(k)}, count(DISTINCT participant_id), count(*) FROM ae "
            f"WHERE {cond} GROUP BY arm"
            for k, cond in kinds.items()
        )
        return tuple(
            AeCount(arm, kind, int(p), int(n)) for arm, kind, p, n in self.q(sql + " ORDER BY 1, 2")
        )

    def _terms(self) -> tuple[TermCount, ...]:
        systems = " UNION ALL ".join(
            f"SELECT {literal(term)} AS nterm, {literal(soc)} AS soc"
            for term, soc in BODY_SYSTEMS.items()
        )
        rows = self.q(
            f"""WITH soc AS ({systems}),
            t AS (SELECT nterm, min(term) AS term FROM ae GROUP BY 1)
            SELECT coalesce(soc.soc, {literal(UNCLASSIFIED)}), t.term, ae.arm,
                   count(DISTINCT ae.participant_id), count(*), max(ae.worst_grade)
            FROM ae JOIN t USING (nterm) LEFT JOIN soc USING (nterm)
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
        )
        return tuple(TermCount(s, t, a, int(p), int(n), int(g)) for s, t, a, p, n, g in rows)

    def _aesi(self) -> tuple[AesiCount, ...]:
        rows = self.q(
            """SELECT category,
                      CASE WHEN in_msc AND in_pe THEN 'after UC-MSC and PE'
                           WHEN in_msc THEN 'after UC-MSC' WHEN in_pe THEN 'after PE'
                           ELSE 'outside procedure windows' END AS window,
                      arm, count(DISTINCT participant_id), count(*)
               FROM aesi GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
        )
        return tuple(AesiCount(c, w, a, int(p), int(n)) for c, w, a, p, n in rows)

    def _infection_findings(self) -> tuple[InfectionFindingCount, ...]:
        rows = self.q(
            """SELECT finding,
                      CASE WHEN in_msc AND in_pe THEN 'after UC-MSC and PE'
                           WHEN in_msc THEN 'after UC-MSC' WHEN in_pe THEN 'after PE'
                           ELSE 'outside procedure windows' END AS window,
                      arm, count(DISTINCT participant_id), count(*)
               FROM infection_findings GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
        )
        return tuple(
            InfectionFindingCount(f, FINDINGS[f], w, a, int(p), int(n)) for f, w, a, p, n in rows
        )

    def _aesi_onsets(self) -> tuple[AesiOnset, ...]:
        rows = self.q(
            """WITH first AS (
                   SELECT category, participant_id, arm,
                          CAST(greatest(0, floor(
                              (epoch(min(onset_at)) - epoch(any_value(randomised_at)))
                                                 / 86400)) AS INTEGER) AS day
                   FROM aesi GROUP BY 1, 2, 3)
               SELECT category, arm, day, count(*) FROM first GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
        )
        return tuple(AesiOnset(c, a, int(d), int(n)) for c, a, d, n in rows)

    def _saes(self) -> tuple[SaeRow, ...]:
        rows = self.q(
            """WITH reported AS (
                   SELECT participant_id, p.ae_ref AS ae_ref, min(occurred_at) AS reported_at
                   FROM facts WHERE event_type = 'sae_reported_to_sponsor' GROUP BY 1, 2)
               SELECT participant_id, site_id, arm, ae_ref, term, onset_at, worst_grade, criteria,
                      rel_msc, rel_pe, expectedness, outcome,
                      susar_candidate,
                      last_procedure, last_procedure_at, awareness_at, r.reported_at
               FROM ae LEFT JOIN reported r USING (participant_id, ae_ref)
               WHERE serious ORDER BY arm, participant_id, onset_at, ae_ref"""
        )
        return tuple(SaeRow(*row) for row in rows)

    def _deaths(self) -> tuple[DeathRow, ...]:
        rows = self.q(
            """SELECT participant_id, site_id, arm, died_at, cause, related_ae_ref,
                      last_procedure, last_procedure_at
               FROM deaths ORDER BY arm, participant_id, died_at"""
        )
        return tuple(DeathRow(*row) for row in rows)

    def _shifts(self) -> tuple[ShiftCount, ...]:
        baseline_grade = grade_sql(
            "b.kind", "b.v", "coalesce(b.lo, f.lo)", "coalesce(b.hi, f.hi)", "NULL"
        )
        post_grade = grade_sql("l.kind", "l.value", "l.low", "l.high", "b.v")
        rows = self.q(
            f"""WITH b AS (
                   SELECT participant_id, kind, arg_max(value, taken_at) AS v,
                          arg_max({{'x': low}}, taken_at).x AS lo,
                          arg_max({{'x': high}}, taken_at).x AS hi
                   FROM labs WHERE taken_at < randomised_at AND value >= 0 GROUP BY 1, 2),
               post AS (
                   SELECT * FROM labs
                   WHERE taken_at >= randomised_at AND taken_at <= fu_end AND value >= 0),
               f AS (
                   SELECT participant_id, kind, arg_min({{'x': low}}, taken_at).x AS lo,
                          arg_min({{'x': high}}, taken_at).x AS hi
                   FROM post GROUP BY 1, 2),
               g AS (
                   SELECT l.participant_id, l.arm, l.term, l.kind, max({post_grade}) AS worst
                   FROM post l LEFT JOIN b USING (participant_id, kind)
                   GROUP BY 1, 2, 3, 4),
               bg AS (
                   SELECT b.participant_id, b.kind, {baseline_grade} AS grade
                   FROM b LEFT JOIN f USING (participant_id, kind))
               SELECT g.term, g.arm, bg.grade, g.worst, count(*)
               FROM g LEFT JOIN bg USING (participant_id, kind)
               WHERE g.worst IS NOT NULL
               GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3 NULLS FIRST, 4"""
        )
        return tuple(
            ShiftCount(t, a, None if b is None else int(b), int(w), int(n))
            for t, a, b, w, n in rows
        )

    def _meld(self) -> tuple[MeldPoint, ...]:
        hours = int(self.config.meld_pairing_hours)
        score = meld_sql("k.b_value", "k.value", "k.c_value", "k.dialysis")
        rows = self.q(
            f"""WITH inr AS (
                   SELECT * FROM labs
                   WHERE kind = 'inr' AND taken_at >= randomised_at AND taken_at <= fu_end),
               bili AS (SELECT participant_id, taken_at, value FROM labs WHERE kind = 'bilirubin'),
               cr AS (SELECT participant_id, taken_at, value FROM labs WHERE kind = 'creatinine'),
               rrt AS (SELECT participant_id, start_at FROM treatments
                       WHERE treatment = 'renal_replacement_therapy'),
               j AS (SELECT i.*, b.taken_at AS b_at, b.value AS b_value FROM inr i
                     ASOF JOIN bili b
                       ON i.participant_id = b.participant_id AND i.taken_at >= b.taken_at),
               k0 AS (SELECT j.*, c.taken_at AS c_at, c.value AS c_value FROM j
                      ASOF JOIN cr c
                        ON j.participant_id = c.participant_id AND j.taken_at >= c.taken_at),
               k AS (SELECT k0.*, (SELECT count(*) FROM rrt r
                                   WHERE r.participant_id = k0.participant_id
                                     AND r.start_at BETWEEN k0.taken_at - INTERVAL 7 DAY
                                                        AND k0.taken_at) >= 2
                                   AS dialysis
                     FROM k0
                     WHERE k0.taken_at - k0.b_at <= INTERVAL {hours} HOUR
                       AND k0.taken_at - k0.c_at <= INTERVAL {hours} HOUR),
               scored AS (
                   SELECT participant_id, arm, taken_at,
                          CAST(floor((epoch(taken_at) - epoch(randomised_at)) / 604800) AS INTEGER)
                              AS week,
                          {score} AS meld
                   FROM k),
               weekly AS (
                   SELECT participant_id, arm, week, arg_max(meld, taken_at) AS meld
                   FROM scored WHERE week BETWEEN 0 AND {self.config.follow_up_days // 7}
                   GROUP BY 1, 2, 3)
               SELECT arm, week, count(*), quantile_cont(meld, 0.25), median(meld),
                      quantile_cont(meld, 0.75)
               FROM weekly GROUP BY 1, 2 ORDER BY 1, 2"""
        )
        return tuple(
            MeldPoint(
                a, int(w), int(n), round(float(q1), 2), round(float(m), 2), round(float(q3), 2)
            )
            for a, w, n, q1, m, q3 in rows
        )

    def _stops(self) -> tuple[StopCounts, ...]:
        c = self.config
        window = f"INTERVAL {int(c.stop01.window_days)} DAY"
        sentinel = f"INTERVAL {int(c.sentinel_days)} DAY"
        reactions = in_list(INFUSION_REACTION_TERMS)
        bleeding = category_sql(BLEEDING)
        catheter = matcher_sql(CATHETER_INFECTION)
        rows = self.q(
            f"""WITH
            linked AS (
                SELECT d.*, a.related AS ae_related, a.ae_ref AS linked_ref
                FROM deaths d LEFT JOIN ae a
                  ON a.participant_id = d.participant_id AND a.ae_ref = d.related_ae_ref),
            prst AS (
                SELECT participant_id FROM ae
                WHERE last_procedure_at IS NOT NULL AND onset_at <= last_procedure_at + {window}
                  AND ((serious AND related)
                       OR (nterm IN {reactions} AND (worst_grade >= 3 OR nterm = '{ANAPHYLAXIS}'))
                       OR (({bleeding}) AND related AND EXISTS (
                             SELECT 1 FROM treatments t
                             WHERE t.participant_id = ae.participant_id
                               AND t.treatment = 'rbc_transfusion'
                               AND t.start_at BETWEEN ae.onset_at
                                   AND ae.onset_at + INTERVAL {int(c.transfusion_hours)} HOUR))
                       OR (({catheter}) AND EXISTS (
                             SELECT 1 FROM facts f
                             WHERE f.event_type = 'lab_result_recorded'
                               AND f.participant_id = ae.participant_id
                               AND f.p.loinc = '{BLOOD_CULTURE_LOINC}'
                               AND coalesce(f.p.specimen, 'serum') IN {in_list(SYSTEMIC_SPECIMENS)}
                               AND f.p.result.value >= 1
                               AND f.occurred_at BETWEEN
                                   ae.onset_at - INTERVAL {int(c.culture_hours)} HOUR
                                   AND ae.onset_at + INTERVAL {int(c.culture_hours)} HOUR)))
                UNION ALL
                SELECT participant_id FROM linked
                WHERE last_procedure_at IS NOT NULL AND died_at <= last_procedure_at + {window}
                  AND coalesce(ae_related, linked_ref IS NULL)
                UNION ALL
                SELECT l.participant_id FROM labs l
                ASOF JOIN (SELECT * FROM procs WHERE kind = 'PE') pe
                  ON l.participant_id = pe.participant_id AND l.taken_at >= pe.start_at
                WHERE l.kind = 'ica' AND l.value < 0.9
                  AND l.taken_at <= pe.end_at + INTERVAL {int(c.pe_reaction_hours)} HOUR),
            last_proc AS (SELECT participant_id, max(start_at) AS last_at FROM procs GROUP BY 1),
            evaluable AS (
                SELECT participant_id FROM last_proc WHERE last_at + {window} <= ?::TIMESTAMPTZ
                UNION SELECT participant_id FROM prst),
            sentinel AS (
                SELECT participant_id FROM ae
                WHERE worst_grade >= 4 AND related AND last_procedure_at IS NOT NULL
                  AND onset_at <= last_procedure_at + {sentinel}
                UNION ALL
                SELECT participant_id FROM linked
                WHERE last_procedure_at IS NOT NULL AND died_at <= last_procedure_at + {sentinel}
                  AND coalesce(ae_related, linked_ref IS NULL)),
            susar AS (
                SELECT arm, nterm, min(term) AS term, count(*) AS n FROM ae
                WHERE susar_candidate
                GROUP BY 1, 2),
            susar_arm AS (
                SELECT arm, sum(n) AS total, first(term ORDER BY n DESC, nterm) AS top_term,
                       max(n) AS top
                FROM susar GROUP BY 1)
            SELECT e.arm,
                   count(DISTINCT e.participant_id) FILTER (
                       WHERE e.participant_id IN (SELECT participant_id FROM prst)),
                   count(DISTINCT e.participant_id) FILTER (
                       WHERE e.participant_id IN (SELECT participant_id FROM evaluable)),
                   (SELECT count(*) FROM sentinel s JOIN enrol x USING (participant_id)
                    WHERE x.arm = e.arm),
                   coalesce(any_value(sa.total), 0), any_value(sa.top_term),
                   coalesce(any_value(sa.top), 0)
            FROM enrol e LEFT JOIN susar_arm sa USING (arm)
            GROUP BY e.arm ORDER BY e.arm""",
            [self.as_of],
        )
        return tuple(
            StopCounts(a, int(x), int(n), int(s), int(su), t, int(top))
            for a, x, n, s, su, t, top in rows
        )

    def _mortality(self) -> tuple[MortalityCount, ...]:
        windows = " UNION ALL ".join(
            f"SELECT {int(w)} AS days" for w in self.config.stop02.windows_days
        )
        rows = self.q(
            f"""WITH w AS ({windows})
            SELECT e.arm, w.days,
                   count(*) FILTER (WHERE e.died_at <= e.randomised_at + to_days(w.days)),
                   count(*) FILTER (
                       WHERE e.died_at <= e.randomised_at + to_days(w.days)
                          OR (e.randomised_at + to_days(w.days) <= ?::TIMESTAMPTZ
                              AND coalesce(e.withdrawn_at >= e.randomised_at + to_days(w.days),
                                           true)))
            FROM enrol e CROSS JOIN w GROUP BY 1, 2 ORDER BY 1, 2""",
            [self.as_of],
        )
        return tuple(MortalityCount(a, int(d), int(x), int(n)) for a, d, x, n in rows)
