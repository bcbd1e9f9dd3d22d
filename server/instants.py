"""FHIR dates and instants as comparable UTC strings.

A FHIR date has a precision (year, month, day, second); as a search value and as an
indexed value it stands for a range. Both ends are kept as fixed-width UTC strings
("YYYY-MM-DDTHH:MM:SS.ffffff") so ranges compare as text in either database.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_DATE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)

FMT = "%Y-%m-%dT%H:%M:%S.%f"


def _tz(text: str | None) -> timedelta:
    if not text or text == "Z":
        return timedelta(0)
    sign = 1 if text[0] == "+" else -1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))


@lru_cache(maxsize=8192)  # pure, and a batch of writes indexes the same stamp many times
def date_range(text: str) -> tuple[str, str] | None:
    """(low, high) inclusive UTC bounds of a FHIR date/dateTime/instant, or None if invalid."""
    m = _DATE.match(text.strip())
    if not m:
        return None
    year, month, day, hh, mi, ss, frac, tz = m.groups()
    try:
        y = int(year)
        if month is None:
            low = datetime(y, 1, 1)
            high = datetime(y, 12, 31, 23, 59, 59, 999999)
        elif day is None:
            mo = int(month)
            last = calendar.monthrange(y, mo)[1]
            low = datetime(y, mo, 1)
            high = datetime(y, mo, last, 23, 59, 59, 999999)
        elif hh is None:
            low = datetime(y, int(month), int(day))
            high = low + timedelta(days=1, microseconds=-1)
        else:
            low = datetime(y, int(month), int(day), int(hh), int(mi), int(ss or 0))
            if frac:
                low = low.replace(microsecond=int((frac[1:] + "000000")[:6]))
                high = low
            elif ss is None:
                high = low + timedelta(minutes=1, microseconds=-1)
            else:
                high = low + timedelta(seconds=1, microseconds=-1)
            off = _tz(tz)
            low, high = low - off, high - off
    except ValueError:
        return None
    return low.strftime(FMT), high.strftime(FMT)


def now_instant() -> str:
    """The current time as a FHIR instant (UTC, milliseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def instant_key(instant: str) -> str:
    rng = date_range(instant)
    return rng[0] if rng else instant


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@lru_cache(maxsize=8192)
def http_date(instant: str) -> str:
    """RFC 7231 date for Last-Modified (cached: every read of a version asks again)."""
    try:
        dt = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        dt = datetime.now(UTC)
    return (
        f"{_DAYS[dt.weekday()]}, {dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} GMT"
    )
