"""The times and allowances an auditor types, read strictly (pure).

An as-of bound that silently meant another instant would answer another question, so a
text that is not a date, a date and time, or an urgency allowance is refused with why.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from schemas import Urgency


def parse_moment(text: str) -> datetime:
    """An as-of time: ISO 8601; a bare date means the end of that day; no offset means UTC.

    Raises:
        ValueError: the text is not a date or a date and time, or its instant in UTC lies
            outside the years 1 to 9999 (e.g. 0001-01-01T00:00:00+14:00).

    """
    try:
        day = date.fromisoformat(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        try:
            # Comparisons with the log's UTC times would overflow later, far from the input.
            moment.astimezone(UTC)
        except OverflowError as exc:
            msg = f"{text} is out of range: in UTC it lies outside the years 1 to 9999"
            raise ValueError(msg) from exc
        return moment
    return datetime.combine(day, time.max, tzinfo=UTC)


def parse_allowance(text: str) -> tuple[Urgency, timedelta]:
    """`U0=15m`, `U1=2h`, `U2=1d` or `U0=90s` as an urgency and an allowance.

    Raises:
        ValueError: not URGENCY=NUMBER followed by s, m, h or d.

    """
    urgency, _, amount = text.partition("=")
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if not amount or amount[-1] not in units:
        raise ValueError(f"{text!r}: expected e.g. U0=15m (units s, m, h, d)")
    return Urgency(urgency.strip().upper()), timedelta(**{units[amount[-1]]: float(amount[:-1])})
