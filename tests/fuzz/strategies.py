"""Hypothesis strategies for ingest submissions: valid ones, mangled ones and arbitrary JSON."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from services.ingest.core.units import LAB_CATALOGUE, POSSIBLE
from tests.factories import TRIAL

#: Generated inputs per fuzz test. The default profile is a meaningful sample that fits the
#: everyday `make test`; `make fuzz` runs SAFETYMON_FUZZ_PROFILE=full, over 10,000 in all
#: (4,000 + 1,500 + 1,500 property examples, 600 per HTTP operation and generation mode).
PROFILES: dict[str, dict[str, int]] = {
    "default": {"accept": 300, "valid": 150, "batches": 100, "http": 40, "timeout_s": 600},
    "full": {"accept": 4000, "valid": 1500, "batches": 1500, "http": 600, "timeout_s": 3600},
}
EXAMPLES = PROFILES[os.environ.get("SAFETYMON_FUZZ_PROFILE", "default")]

codes = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,12}", fullmatch=True)
sites = st.sampled_from(["S01", "S02", "S03"])
participants = st.builds(lambda n: f"FZ-{n:03d}", st.integers(0, 40))
moments = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2030, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
)
#: Characters a one-line text field takes (no C0 control characters, no DEL).
_one_line = st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f")
_criteria = st.sampled_from(["hospitalisation", "death"])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _envelope(event_type: str, payload: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "trial_id": TRIAL,
        "site_id": draw(sites),
        "participant_id": draw(participants),
        "occurred_at": draw(moments).isoformat(),
        "source": draw(st.sampled_from(["edc", "lab", "fuzz"])),
        # A small pool, so duplicates of (source, source_ref) happen often.
        "source_ref": f"ref-{draw(st.integers(0, 5000))}",
        "payload": payload,
    }


@st.composite
def valid_submissions(draw: st.DrawFn) -> dict[str, Any]:
    """A submission ingest accepts (or reports as a duplicate)."""
    kind = draw(st.sampled_from(["enrolment", "lab", "vitals", "ae"]))
    if kind == "enrolment":
        payload: dict[str, Any] = {
            "arm": draw(st.sampled_from(["A", "B", "C", "D"])),
            "baseline_meld": draw(st.integers(6, 40)),
        }
        return _envelope("participant_enrolled", payload, draw)
    if kind == "lab":
        loinc = draw(st.sampled_from(sorted(LAB_CATALOGUE)))
        # Within what ingest deems possible for the analyte (outside is bad input).
        low, high = POSSIBLE.get(LAB_CATALOGUE[loinc].name, (0, 5000))
        value = draw(st.floats(low, high, allow_nan=False))
        result = {"value": value, "unit": LAB_CATALOGUE[loinc].canonical}
        payload = {"loinc": loinc, "result": result}
        return _envelope("lab_result_recorded", payload, draw)
    if kind == "vitals":
        temperature = {"value": draw(st.floats(30, 43)), "unit": "Cel"}
        payload = {"observations": {"temperature": temperature}}
        return _envelope("vital_signs_recorded", payload, draw)
    payload = {
        "ae_ref": draw(codes),
        "term": draw(st.text(_one_line, min_size=1, max_size=60)),
        "ctcae_grade": draw(st.integers(1, 5)),
        "seriousness_criteria": draw(st.lists(_criteria, max_size=2, unique=True)),
    }
    return _envelope("adverse_event_reported", payload, draw)


@st.composite
def mangled_submissions(draw: st.DrawFn) -> object:
    """A valid submission with one thing broken, or replaced outright by arbitrary JSON."""
    item = draw(valid_submissions())
    how = draw(st.sampled_from(["drop", "replace", "extra", "payload", "nested", "whole"]))
    key = draw(st.sampled_from(sorted(item)))
    if how == "drop":
        item.pop(key)
    elif how == "replace":
        item[key] = draw(json_values)
    elif how == "extra":
        item[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
    elif how == "payload":
        item["payload"] = {**item["payload"], draw(st.text(max_size=12)): draw(json_values)}
    elif how == "nested":
        payload = dict(item["payload"])
        payload[draw(st.sampled_from(sorted(payload)))] = draw(json_values)
        item["payload"] = payload
    else:
        return draw(json_values)
    return item


any_items = st.one_of(valid_submissions(), mangled_submissions(), json_values)
