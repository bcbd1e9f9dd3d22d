"""FHIR date, dateTime and instant values as half-open ranges of UTC microseconds.

A FHIR time value is as precise as it is written: "2026" means the whole year,
"2026-05-03" the whole day, "2026-05-03T10:00:00Z" that second. Each value is parsed
once (cached) into ``(lo, hi)``: the first microsecond it covers and the first it no
longer covers. Then:

* a Period ``{start, end}`` covers ``[start.lo, end.hi)``: both edges inclusive at
  their own precision ("end": "2027-05-03" includes all of 3 May); a missing edge is
  open;
* an instant ``now`` is inside a Period when ``start.lo <= now < end.hi``;
* a resource's (possibly partial) clinical date falls inside a Period only when its
  whole range does: ``start.lo <= lo and hi <= end.hi``. A partial date that merely
  overlaps is not "inside", because we cannot tell that it is.

Values without a time zone (all dates, and dateTimes written without one, which FHIR
forbids but senders produce) are read as UTC. Integers make comparisons exact and fast.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
# Open edges: far outside any real date, and still plain ints.
MIN_US = -(1 << 62)
MAX_US = 1 << 62

_VALUE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // _ONE_US


@lru_cache(maxsize=65536)
def fhir_range(value: str) -> tuple[int, int] | None:
    """``(lo, hi)`` microseconds covered by a FHIR date/dateTime/instant, or None."""
    if not isinstance(value, str):
        return None
    m = _VALUE.fullmatch(value.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, tz = m.groups()
    y = int(year)
    try:
        if month is None:
            lo = datetime(y, 1, 1, tzinfo=UTC)
            hi = datetime(y + 1, 1, 1, tzinfo=UTC)
        elif day is None:
            mo = int(month)
            lo = datetime(y, mo, 1, tzinfo=UTC)
            hi = datetime(y + mo // 12, mo % 12 + 1, 1, tzinfo=UTC)
        elif hour is None:
            lo = datetime(y, int(month), int(day), tzinfo=UTC)
            hi = lo + timedelta(days=1)
        else:
            if tz is None or tz == "Z":
                zone = UTC
            else:
                sign = -1 if tz[0] == "-" else 1
                zone = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
            if second is None:
                lo = datetime(y, int(month), int(day), int(hour), int(minute), tzinfo=zone)
                step = timedelta(minutes=1)
            elif frac is None:
                lo = datetime(
                    y, int(month), int(day), int(hour), int(minute), int(second), tzinfo=zone
                )
                step = timedelta(seconds=1)
            else:
                digits = frac[:6]
                micro = int(digits.ljust(6, "0"))
                lo = datetime(
                    y, int(month), int(day), int(hour), int(minute), int(second), micro,
                    tzinfo=zone,
                )
                step = timedelta(microseconds=10 ** (6 - len(digits)))
            hi = lo + step
    except (ValueError, OverflowError):
        return None  # e.g. month 13, 30 February, year 9999 + 1
    return to_us(lo), to_us(hi)


def period_range(period: object) -> tuple[int, int] | None:
    """``(lo, hi)`` a FHIR Period covers; None when it is not a readable Period."""
    if not isinstance(period, dict):
        return None
    lo, hi = MIN_US, MAX_US
    start = period.get("start")
    if start is not None:
        r = fhir_range(start)
        if r is None:
            return None
        lo = r[0]
    end = period.get("end")
    if end is not None:
        r = fhir_range(end)
        if r is None:
            return None
        hi = r[1]
    return lo, hi
