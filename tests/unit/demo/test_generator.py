"""The demo feed: deterministic, valid against the contracts, and clinically plausible."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from schemas import ALL_FACTS, Submission
from tools.demo import generate_events, generate_feed, iter_feed, summarise
from tools.demo._codes import meld

Item = dict[str, Any]
#: A fixed "now" keeps every test here deterministic (the feed ends at it).
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
INFECTIONS = {
    "Lung infection",
    "Urinary tract infection",
    "Peritoneal infection",
    "Catheter related infection",
    "Sepsis",
}
SUSPECTED = {"possible", "probable", "definite"}
TO_SI = {"1975-2": 17.1, "2160-0": 88.4}  # RULES.md §0.4: bilirubin, creatinine mg/dL
BILIRUBIN, CREATININE = ("14631-6", "1975-2"), ("14682-9", "2160-0")
INR, HAEMOGLOBIN = "6301-6", "718-7"


@pytest.fixture(scope="module")
def feed() -> list[Item]:
    return generate_feed(now=NOW)


@pytest.fixture(scope="module")
def by_participant(feed: list[Item]) -> dict[str, list[Item]]:
    grouped: dict[str, list[Item]] = defaultdict(list)
    for item in feed:
        grouped[item["participant_id"]].append(item)
    return grouped


def at(item: Item, field: str = "occurred_at") -> datetime:
    return datetime.fromisoformat(item[field])


def of_type(items: list[Item], event_type: str) -> list[Item]:
    return [item for item in items if item["event_type"] == event_type]


def latest_aes(items: list[Item]) -> dict[str, dict[str, Any]]:
    latest = {}
    for item in items:
        if item["event_type"] in {"adverse_event_reported", "adverse_event_updated"}:
            latest[item["payload"]["ae_ref"]] = item["payload"]
    return latest


def labs_in(items: list[Item], *loincs: str) -> list[tuple[datetime, float]]:
    """(collection time, value in SI units) of the labs with these LOINC codes."""
    values = []
    for item in of_type(items, "lab_result_recorded"):
        loinc, result = item["payload"]["loinc"], item["payload"]["result"]
        if loinc in loincs:
            factor = TO_SI.get(loinc, 10.0 if result["unit"] == "g/dL" else 1.0)
            values.append((at(item), result["value"] * factor))
    return sorted(values)


class TestDeterminism:
    @pytest.mark.slow
    def test_same_seed_gives_byte_identical_json(self, feed: list[Item]) -> None:
        again = generate_feed(now=NOW)

        assert json.dumps(again, ensure_ascii=False) == json.dumps(feed, ensure_ascii=False)

    def test_different_seed_gives_a_different_feed(self) -> None:
        one = generate_feed(seed=1, participants=8, weeks=6, now=NOW)
        two = generate_feed(seed=2, participants=8, weeks=6, now=NOW)

        assert json.dumps(one) != json.dumps(two)

    @pytest.mark.slow
    def test_iter_feed_yields_the_items_of_generate_feed(self) -> None:
        arguments: dict[str, Any] = {"seed": 7, "participants": 16, "weeks": 10, "now": NOW}

        assert list(iter_feed(**arguments)) == generate_feed(**arguments)

    def test_invalid_arguments_fail_at_the_call(self) -> None:
        with pytest.raises(ValueError, match="participants"):
            iter_feed(participants=0)


class TestContracts:
    @pytest.mark.slow
    def test_every_item_is_a_submission_with_a_valid_payload(self, feed: list[Item]) -> None:
        for item in feed:
            Submission.model_validate(item)
            payload_model = ALL_FACTS[item["event_type"]].model_fields["payload"].annotation
            assert payload_model is not None
            payload_model.model_validate(item["payload"])

    def test_source_and_source_ref_are_unique(self, feed: list[Item]) -> None:
        keys = Counter((item["source"], item["source_ref"]) for item in feed)

        assert [key for key, count in keys.items() if count > 1] == []

    def test_sources_are_the_four_source_systems(self, feed: list[Item]) -> None:
        assert {item["source"] for item in feed} == {"edc", "lab", "vitals", "pharmacy"}

    def test_participant_ids_are_pseudonymous_codes(self, feed: list[Item]) -> None:
        ids = {item["participant_id"] for item in feed}

        assert ids == {f"P-{n:03d}" for n in range(1, 121)}

    def test_times_mix_utc_and_asia_shanghai_offsets(self, feed: list[Item]) -> None:
        suffixes = Counter(item["occurred_at"][-6:] == "+08:00" for item in feed)

        assert suffixes[True] > 0
        assert suffixes[False] > suffixes[True]
        assert all(i["occurred_at"].endswith(("Z", "+08:00")) for i in feed)

    def test_units_come_in_the_spellings_labs_send(self, feed: list[Item]) -> None:
        units = {i["payload"]["result"]["unit"] for i in of_type(feed, "lab_result_recorded")}

        assert {"umol/L", "µmol/L", "mg/dL", "mg/dl", "10*9/L", "10^9/L", "g/L", "g/dL"} <= units
        assert {"{INR}", "U/L", "mmol/L"} <= units


class TestCohort:
    def test_120_participants_randomised_1_1_1_1_at_3_sites(self, feed: list[Item]) -> None:
        summary = summarise(feed)

        assert summary["participants"] == 120
        assert summary["participants_per_arm"] == {"A": 30, "B": 30, "C": 30, "D": 30}
        assert set(summary["participants_per_site"]) == {"S01", "S02", "S03"}
        assert json.loads(json.dumps(summary)) == summary

    def test_enrolment_spans_about_six_months(self, feed: list[Item]) -> None:
        enrolled = sorted(at(i) for i in of_type(feed, "participant_enrolled"))

        assert timedelta(days=150) < enrolled[-1] - enrolled[0] < timedelta(days=183)

    def test_baseline_meld_is_below_30_and_matches_the_baseline_labs(
        self, by_participant: dict[str, list[Item]]
    ) -> None:
        for items in by_participant.values():
            enrolment = items[0]
            randomised = at(enrolment)
            baseline = [i for i in items if at(i) < randomised]
            bilirubin = labs_in(baseline, *BILIRUBIN)[-1][1]
            inr = labs_in(baseline, INR)[-1][1]
            creatinine = labs_in(baseline, *CREATININE)[-1][1]

            assert enrolment["event_type"] == "participant_enrolled"
            assert 12 <= enrolment["payload"]["baseline_meld"] <= 29
            assert meld(bilirubin, inr, creatinine) == enrolment["payload"]["baseline_meld"]

    def test_meld_reproduces_the_rules_test_vectors(self) -> None:
        vectors = [
            ((10.26, 0.9, 61.88), 6),
            ((85.5, 1.6, 88.4), 18),
            ((171.0, 2.0, 132.6), 27),
            ((342.0, 0.95, 53.04), 18),
            ((256.5, 2.2, 70.72), 25),
            ((34.2, 1.2, 88.4), 11),
            ((34.2, 1.3, 88.4), 12),
        ]

        assert [meld(*inputs) for inputs, _ in vectors] == [score for _, score in vectors]


class TestSafetyContent:
    def test_sae_death_and_ae_counts_are_plausible_for_aclf(self, feed: list[Item]) -> None:
        summary = summarise(feed)

        assert 15 <= summary["serious_adverse_events"] <= 25
        assert 8 <= summary["deaths"] <= 12
        assert 2.0 <= summary["adverse_events"] / 120 <= 4.0

    def test_a_susar_candidate_is_reported(self, feed: list[Item]) -> None:
        candidates = [
            ae
            for ae in latest_aes(feed).values()
            if ae["seriousness_criteria"]
            and ae["relatedness_uc_msc"] in SUSPECTED
            and ae["expectedness"] == "unexpected"
        ]

        assert len(candidates) >= 1

    def test_an_ae_becomes_serious_in_a_later_update(self, feed: list[Item]) -> None:
        first: dict[str, dict[str, Any]] = {}
        upgraded = []
        for item in feed:
            if item["event_type"] == "adverse_event_reported":
                first[item["payload"]["ae_ref"]] = item["payload"]
            elif item["event_type"] == "adverse_event_updated":
                before = first[item["payload"]["ae_ref"]]
                if not before["seriousness_criteria"] and item["payload"]["seriousness_criteria"]:
                    upgraded.append(item["payload"]["ae_ref"])

        assert upgraded

    def test_every_sae_is_reported_to_the_sponsor_once(self, feed: list[Item]) -> None:
        serious = {ref for ref, ae in latest_aes(feed).items() if ae["seriousness_criteria"]}
        reports = Counter(i["payload"]["ae_ref"] for i in of_type(feed, "sae_reported_to_sponsor"))

        assert set(reports) == serious
        assert set(reports.values()) == {1}

    def test_each_death_has_a_fatal_ae_and_nothing_happens_after_it(
        self, by_participant: dict[str, list[Item]]
    ) -> None:
        deaths = 0
        for items in by_participant.values():
            recorded = of_type(items, "death_recorded")
            if not recorded:
                continue
            deaths += 1
            death = recorded[0]
            died = at(death)
            position = items.index(death)
            fatal = latest_aes(items)[death["payload"]["related_ae_ref"]]

            assert len(recorded) == 1
            assert all(at(i) <= died for i in items)
            assert [i["event_type"] for i in items[position + 1 :]] == ["adverse_event_updated"]
            assert (fatal["outcome"], fatal["ctcae_grade"]) == ("fatal", 5)
            assert "death" in fatal["seriousness_criteria"]
        assert deaths >= 8

    def test_nothing_happens_after_a_withdrawal(
        self, by_participant: dict[str, list[Item]]
    ) -> None:
        withdrawn = 0
        for items in by_participant.values():
            for leaving in of_type(items, "participant_withdrawn"):
                withdrawn += 1

                assert items[-1] is leaving
                assert all(at(i) <= at(leaving) for i in items)
        assert withdrawn >= 1

    def test_procedures_follow_the_protocol_of_each_arm(
        self, by_participant: dict[str, list[Item]]
    ) -> None:
        for items in by_participant.values():
            arm = items[0]["payload"]["arm"]
            done = of_type(items, "treatment_administered")
            infusions = [i for i in done if i["payload"]["treatment"] == "uc_msc_infusion"]
            exchanges = [i for i in done if i["payload"]["treatment"] == "plasma_exchange"]
            finished = not (
                of_type(items, "death_recorded") or of_type(items, "participant_withdrawn")
            )
            starts = sorted(at(i) for i in exchanges)

            assert (len(infusions) > 0) == (arm in {"B", "D"})
            assert (len(exchanges) > 0) == (arm in {"C", "D"})
            if finished:
                assert len(infusions) == (4 if arm in {"B", "D"} else 0)
                assert len(exchanges) == (3 if arm in {"C", "D"} else 0)
            for infusion in infusions:
                duration = at(infusion["payload"], "ended_at") - at(infusion)
                assert infusion["payload"]["dose_cells_per_kg"] == 1e5
                assert timedelta(minutes=27) <= duration <= timedelta(minutes=34)
            for exchange in exchanges:
                assert exchange["payload"]["volume_ml"] == 2000
                assert exchange["payload"]["replacement_fluid"] == "ffp"
            every_three_days = timedelta(days=3)
            assert all(abs(b - a - every_three_days) <= HOUR for a, b in pairwise(starts))
            if arm == "D" and len(infusions) >= 2:
                for infusion in sorted(infusions, key=at)[:2]:
                    assert any(
                        at(pe["payload"], "ended_at") <= at(infusion) <= at(pe) + 12 * HOUR
                        for pe in exchanges
                    )


class TestEventsOfSpecialInterest:
    def test_hepatic_encephalopathy_comes_with_west_haven_2_or_more(
        self, by_participant: dict[str, list[Item]]
    ) -> None:
        for items in by_participant.values():
            grades = [
                (at(i), i["payload"]["west_haven_grade"])
                for i in of_type(items, "clinical_assessment_recorded")
            ]
            for ae in of_type(items, "adverse_event_reported"):
                if ae["payload"]["term"] == "Hepatic encephalopathy":
                    onset = at(ae)
                    assert any(onset <= t <= onset + 6 * HOUR and g >= 2 for t, g in grades)

    def test_variceal_bleeding_comes_with_a_haemoglobin_fall_of_3_g_dl_in_24_h(
        self, by_participant: dict[str, list[Item]]
    ) -> None:
        bleeds = 0
        for items in by_participant.values():
            for ae in of_type(items, "adverse_event_reported"):
                if ae["payload"]["term"] != "Oesophageal varices haemorrhage":
                    continue
                bleeds += 1
                hb = [(t, v) for t, v in labs_in(items, HAEMOGLOBIN) if t >= at(ae)]
                assert any(
                    t1 < t2 <= t1 + 24 * HOUR and v1 - v2 >= 30 for t1, v1 in hb for t2, v2 in hb
                )
        assert bleeds >= 1

    def test_kidney_injury_comes_with_a_creatinine_rise_within_48_h(
        self, by_participant: dict[str, list[Item]]
    ) -> None:
        episodes = 0
        for items in by_participant.values():
            creatinine = labs_in(items, *CREATININE)
            for ae in of_type(items, "adverse_event_reported"):
                if ae["payload"]["term"] not in {"Acute kidney injury", "Creatinine increased"}:
                    continue
                episodes += 1
                assert any(
                    t1 < t2 <= t1 + 48 * HOUR and v2 - v1 >= 26.5
                    for t1, v1 in creatinine
                    for t2, v2 in creatinine
                    if abs(t2 - at(ae)) <= HOUR
                )
        assert episodes >= 1

    def test_fever_after_procedures_is_observed_in_the_window(
        self, by_participant: dict[str, list[Item]]
    ) -> None:
        after_procedure: Counter[str] = Counter()
        for items in by_participant.values():
            temperatures = [
                (at(i), i["payload"]["observations"]["temperature"]["value"])
                for i in of_type(items, "vital_signs_recorded")
            ]
            procedures = [
                (i["payload"]["treatment"], at(i)) for i in of_type(items, "treatment_administered")
            ]
            for ae in of_type(items, "adverse_event_reported"):
                term, onset = ae["payload"]["term"], at(ae)
                if term not in INFECTIONS | {"Fever"}:
                    continue
                assert any(
                    onset <= t <= onset + HOUR and value >= 38.0 for t, value in temperatures
                )
                for treatment, start in procedures:
                    window = 7 * 24 * HOUR if treatment == "uc_msc_infusion" else 72 * HOUR
                    if treatment != "rbc_transfusion" and start < onset <= start + window:
                        after_procedure[term] += 1

        assert after_procedure["Fever"] >= 1
        assert sum(after_procedure[t] for t in INFECTIONS) >= 1

    def test_procedure_reactions_occur_in_their_windows(
        self, by_participant: dict[str, list[Item]]
    ) -> None:
        seen: Counter[str] = Counter()
        for items in by_participant.values():
            done = of_type(items, "treatment_administered")
            for ae in of_type(items, "adverse_event_reported"):
                term, onset = ae["payload"]["term"], at(ae)
                kind = {
                    "Infusion related reaction": "uc_msc_infusion",
                    "Fever": "uc_msc_infusion",
                    "Paresthesia": "plasma_exchange",
                }.get(term)
                if kind is None:
                    continue
                seen[term] += 1
                assert any(
                    p["payload"]["treatment"] == kind
                    and at(p) <= onset <= at(p["payload"], "ended_at") + 24 * HOUR
                    for p in done
                )

        assert set(seen) == {"Infusion related reaction", "Fever", "Paresthesia"}


class TestArrivalOrder:
    def test_participants_arrive_with_their_randomisation_first(
        self, by_participant: dict[str, list[Item]]
    ) -> None:
        assert all(
            items[0]["event_type"] == "participant_enrolled" for items in by_participant.values()
        )

    def test_lab_results_arrive_hours_after_collection(self, feed: list[Item]) -> None:
        """Nothing ahead of a routine lab result happened more than 5 h after its collection."""
        latest = datetime.min.replace(tzinfo=at(feed[0]).tzinfo)
        for item in feed:
            occurred = at(item)
            if item["event_type"] == "lab_result_recorded" and item["payload"]["loinc"] != "600-7":
                assert latest <= occurred + 5 * HOUR
            latest = max(latest, occurred)

    def test_blood_cultures_arrive_two_to_three_days_late(self, feed: list[Item]) -> None:
        latest = datetime.min.replace(tzinfo=at(feed[0]).tzinfo)
        cultures = 0
        for item in feed:
            occurred = at(item)
            if item["event_type"] == "lab_result_recorded" and item["payload"]["loinc"] == "600-7":
                cultures += 1
                assert occurred + 24 * HOUR <= latest <= occurred + 72 * HOUR
            latest = max(latest, occurred)
        assert cultures >= 1


class TestScaling:
    def test_generate_events_yields_at_least_n_valid_submissions(self) -> None:
        events = list(generate_events(1000, now=NOW))

        assert len(events) >= 1000
        assert len({(e["source"], e["source_ref"]) for e in events}) == len(events)
        for event in events[::50]:
            Submission.model_validate(event)

    def test_generate_events_numbers_a_large_cohort_with_wider_ids(self) -> None:
        first = next(generate_events(1_000_000, now=NOW))

        assert first["participant_id"].startswith("P-0")
        assert len(first["participant_id"]) == len("P-0001")
