"""The demo feed ends at "now", like a running trial, and is deterministic given it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tools.demo import generate_events, generate_feed, iter_feed
from tools.demo.generator import HISTORIC_START
from tools.demo.now import NOW_VARIABLE, current_minute, demo_now

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
Item = dict[str, object]


def small(*, now: datetime | None = None, start: datetime | None = None) -> list[Item]:
    return generate_feed(participants=8, weeks=6, now=now, start=start)


def occurred(feed: list[Item]) -> list[datetime]:
    return [datetime.fromisoformat(str(item["occurred_at"])) for item in feed]


class TestEndsAtNow:
    def test_nothing_happens_after_now_and_the_last_day_is_busy(self) -> None:
        times = occurred(small(now=NOW))

        assert max(times) <= NOW
        assert NOW - max(times) < timedelta(days=2)

    def test_same_now_gives_byte_identical_feeds(self) -> None:
        one = small(now=NOW)
        two = small(now=NOW)

        assert json.dumps(one) == json.dumps(two)

    def test_seconds_of_now_do_not_matter(self) -> None:
        later = NOW + timedelta(seconds=59, microseconds=5)

        assert small(now=later) == small(now=NOW)

    def test_a_later_now_moves_the_history_by_whole_days(self) -> None:
        today = occurred(small(now=NOW))
        next_week = occurred(small(now=NOW + timedelta(days=7)))

        assert [b - a for a, b in zip(today, next_week, strict=False)] == [timedelta(days=7)] * min(
            len(today), len(next_week)
        )

    def test_placed_feed_is_the_historic_one_moved_then_cut(self) -> None:
        placed = small(now=NOW)
        historic = small(start=HISTORIC_START)
        shift = occurred(placed)[0] - occurred(historic)[0]

        assert shift % timedelta(days=1) == timedelta(0)
        assert 0 < len(historic) - len(placed) < len(historic) // 10
        assert [t + shift for t in occurred(historic)[: len(placed)]] == occurred(placed)

    def test_the_cut_leaves_results_not_yet_back(self) -> None:
        """The tail a running trial has not received: later sends, not fewer participants."""
        placed = small(now=NOW)
        historic = small(start=HISTORIC_START)

        assert {i["participant_id"] for i in placed} == {i["participant_id"] for i in historic}

    def test_generate_events_ends_each_cohort_by_now(self) -> None:
        times = occurred(list(generate_events(3000, now=NOW)))

        assert max(times) <= NOW


class TestPinnedStart:
    def test_start_pins_the_historic_2024_timeline(self) -> None:
        """Golden histories recorded against 2024 dates keep them."""
        times = occurred(small(start=HISTORIC_START))

        assert min(times).year == 2024

    def test_now_and_start_together_are_refused(self) -> None:
        with pytest.raises(ValueError, match="not both"):
            iter_feed(now=NOW, start=HISTORIC_START)

    def test_a_naive_now_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            iter_feed(now=datetime(2026, 3, 2, 9, 30))


class TestDemoNow:
    def test_the_variable_sets_now(self) -> None:
        assert demo_now({NOW_VARIABLE: "2026-03-02T17:30:00+08:00"}) == NOW

    def test_a_z_suffix_is_utc(self) -> None:
        assert demo_now({NOW_VARIABLE: "2026-03-02T09:30Z"}) == NOW

    def test_without_the_variable_now_is_the_current_minute(self) -> None:
        before = current_minute()

        now = demo_now({})

        assert now.second == now.microsecond == 0
        assert before <= now <= current_minute()

    @pytest.mark.parametrize("text", ["2026-03-02T09:30:00", "yesterday"])
    def test_a_time_without_offset_or_not_iso_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match=NOW_VARIABLE):
            demo_now({NOW_VARIABLE: text})
