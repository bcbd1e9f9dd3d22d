"""The small readers the engine relies on: FHIR time values and references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from carebridge.consent.dates import MAX_US, MIN_US, fhir_range, period_range, to_us
from carebridge.consent.refs import normalize_ref


def us(*args: int, tz: timezone = UTC) -> int:
    return to_us(datetime(*args, tzinfo=tz))


@pytest.mark.parametrize("value, lo, hi", [
    ("2026", us(2026, 1, 1), us(2027, 1, 1)),
    ("2026-12", us(2026, 12, 1), us(2027, 1, 1)),
    ("2026-02", us(2026, 2, 1), us(2026, 3, 1)),
    ("2026-05-03", us(2026, 5, 3), us(2026, 5, 4)),
    ("2026-05-03T10:00:00Z", us(2026, 5, 3, 10), us(2026, 5, 3, 10, 0, 1)),
    ("2026-05-03T10:00:00+01:00", us(2026, 5, 3, 9), us(2026, 5, 3, 9, 0, 1)),
    ("2026-05-03T10:00:00.5Z", us(2026, 5, 3, 10) + 500_000, us(2026, 5, 3, 10) + 600_000),
    ("2026-05-03T10:00:00.123456Z", us(2026, 5, 3, 10) + 123_456, us(2026, 5, 3, 10) + 123_457),
    ("2026-05-03T10:00Z", us(2026, 5, 3, 10), us(2026, 5, 3, 10, 1)),
    ("2026-05-03T10:00:00", us(2026, 5, 3, 10), us(2026, 5, 3, 10, 0, 1)),  # no zone: UTC
])
def test_time_values_cover_their_precision(value, lo, hi):
    assert fhir_range(value) == (lo, hi)


@pytest.mark.parametrize("value", ["", "May 2026", "2026-13", "2026-02-30", "2026-05-03T25:00Z",
                                   "20260503", "2026-05-03 10:00"])
def test_unreadable_time_values(value):
    assert fhir_range(value) is None


def test_periods_are_open_where_an_edge_is_missing():
    assert period_range({}) == (MIN_US, MAX_US)
    assert period_range({"start": "2026"}) == (us(2026, 1, 1), MAX_US)
    assert period_range({"end": "2026"}) == (MIN_US, us(2027, 1, 1))
    assert period_range({"start": "soon"}) is None
    assert period_range("2026") is None


def test_naive_datetimes_are_utc():
    assert to_us(datetime(2026, 5, 3)) == us(2026, 5, 3)
    bst = timezone(timedelta(hours=1))
    assert to_us(datetime(2026, 5, 3, 1, tzinfo=bst)) == us(2026, 5, 3)


@pytest.mark.parametrize("ref, expected", [
    ("Organization/bath-mind", "Organization/bath-mind"),
    ("https://carebridge.example/fhir/Organization/bath-mind", "Organization/bath-mind"),
    ("Organization/bath-mind/_history/4", "Organization/bath-mind"),
    ("http://h/fhir/Patient/millie/_history/1", "Patient/millie"),
    ("#contained-1", None),
    ("urn:uuid:9d3f1c2a-0000-4000-8000-000000000000", None),
    ("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919", None),
    ("millie", None),
    ("", None),
])
def test_references_are_normalised_to_type_and_id(ref, expected):
    assert normalize_ref(ref) == expected
