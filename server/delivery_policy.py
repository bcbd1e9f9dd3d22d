"""How hard the outbox tries: timeouts, backoff with jitter, Retry-After, marking a
partner down. Pure: numbers in, numbers out; settings come from the environment.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def _env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class DeliveryConfig:
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    backoff_base: float = 1.0  # first retry after about this many seconds
    backoff_max: float = 300.0  # retries never wait longer than this
    down_after: int = 5  # consecutive failures before a partner is marked down
    max_attempts: int = 60  # then the delivery is marked failed (`carebridge outbox retry`)
    poll: float = 0.05  # seconds between looks at the outbox when idle
    batch: int = 200  # deliveries claimed at once
    threads: int = 16  # deliveries in flight at once, per worker process
    lease: float = 15.0  # a claim not renewed for this long is taken over by another worker
    keep_days: float = 7.0  # finished deliveries are forgotten after this (for `outbox status`)

    @classmethod
    def from_env(cls) -> DeliveryConfig:
        d = cls()
        return cls(
            connect_timeout=_env("CAREBRIDGE_PUSH_CONNECT_TIMEOUT", d.connect_timeout),
            read_timeout=_env("CAREBRIDGE_PUSH_READ_TIMEOUT", d.read_timeout),
            backoff_base=_env("CAREBRIDGE_OUTBOX_BACKOFF_BASE", d.backoff_base),
            backoff_max=_env("CAREBRIDGE_OUTBOX_BACKOFF_MAX", d.backoff_max),
            down_after=int(_env("CAREBRIDGE_OUTBOX_DOWN_AFTER", d.down_after)),
            max_attempts=int(_env("CAREBRIDGE_OUTBOX_MAX_ATTEMPTS", d.max_attempts)),
            poll=_env("CAREBRIDGE_OUTBOX_POLL", d.poll),
            batch=int(_env("CAREBRIDGE_OUTBOX_BATCH", d.batch)),
            threads=int(_env("CAREBRIDGE_OUTBOX_THREADS", d.threads)),
            lease=_env("CAREBRIDGE_OUTBOX_LEASE", d.lease),
            keep_days=_env("CAREBRIDGE_OUTBOX_KEEP_DAYS", d.keep_days),
        )


def backoff(attempt: int, cfg: DeliveryConfig, rand: Callable[[], float] = random.random) -> float:
    """Seconds before retry number `attempt` (1, 2, ...): exponential, capped, with jitter
    (half fixed, half random) so retries from many workers do not arrive together."""
    ceiling = min(cfg.backoff_max, cfg.backoff_base * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + rand() * ceiling / 2


def hold_when_down(failures: int, cfg: DeliveryConfig) -> float:
    """How long a down partner is left alone before the next probe."""
    return min(cfg.backoff_max, cfg.backoff_base * 2 ** max(failures - cfg.down_after, 0))


def retry_after(value: str | None, now: datetime | None = None, *, cap: float = 3600.0) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP-date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), cap)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), cap)
