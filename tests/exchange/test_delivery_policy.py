"""How hard the outbox tries (pure rules): exponential backoff with jitter, capped; the
partner's own Retry-After wins when it gives one; a down partner is probed less often."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from carebridge.server.delivery_policy import DeliveryConfig, backoff, hold_when_down, retry_after

CFG = DeliveryConfig(backoff_base=1.0, backoff_max=60.0, down_after=5)


def test_backoff_doubles_from_the_base_and_stops_at_the_cap() -> None:
    highest = [backoff(n, CFG, rand=lambda: 1.0) for n in range(1, 10)]
    assert highest == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_jitter_keeps_each_wait_between_half_and_all_of_its_ceiling() -> None:
    assert [backoff(n, CFG, rand=lambda: 0.0) for n in (1, 3, 20)] == [0.5, 2.0, 30.0]
    assert all(2.0 <= backoff(3, CFG) <= 4.0 for _ in range(200))


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert retry_after("7") == 7.0
    assert retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert retry_after("99999999") == 3600.0  # never longer than an hour


def test_retry_after_that_cannot_be_read_is_ignored() -> None:
    assert retry_after(None) is None
    assert retry_after("") is None
    assert retry_after("soon, probably") is None


def test_a_down_partner_is_probed_ever_less_often_up_to_the_cap() -> None:
    assert [hold_when_down(f, CFG) for f in (5, 6, 7, 20)] == [1.0, 2.0, 4.0, 60.0]
