"""Retry timing for temporary delivery failures (pure core; the caller supplies the randomness)."""

from __future__ import annotations

DEFAULT_BASE_SECONDS = 1.0
DEFAULT_CAP_SECONDS = 60.0


def retry_delay(
    attempt: int,
    *,
    jitter: float,
    base: float = DEFAULT_BASE_SECONDS,
    cap: float = DEFAULT_CAP_SECONDS,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    Exponential backoff capped at `cap`, with "equal jitter": half the delay is fixed and
    half scales with `jitter` in [0, 1), so retries spread out but never collapse to zero.
    There is no final attempt: a U0 notification keeps being retried at the cap.
    """
    exponent = min(max(attempt - 1, 0), 32)
    ceiling = min(cap, base * 2.0**exponent)
    return ceiling / 2 + ceiling / 2 * min(max(jitter, 0.0), 1.0)
