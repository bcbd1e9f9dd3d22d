"""The delivery worker: a background thread in every server process.

It claims due deliveries, sends them from a small pool of threads (each with its own
pooled HTTP session), keeps its leases alive while they are in flight, and records the
outcomes. Any number of these may run against one database; see delivery.py.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait

from carebridge.adapters.mesh import MeshConfig
from carebridge.adapters.push import HttpSender, Outcome
from carebridge.server import delivery, outbox
from carebridge.server.db import Database
from carebridge.server.delivery_mesh import MeshTransport
from carebridge.server.delivery_policy import DeliveryConfig

log = logging.getLogger("carebridge.outbox")
PRUNE_EVERY = 600.0  # seconds between clearing out old finished deliveries
FINISH_TRIES = 5


class HttpTransport:
    """Deliveries over HTTP (FHIR REST). MESH (delivery_mesh.py) offers the same `send`."""

    def __init__(self, cfg: DeliveryConfig) -> None:
        self.http = HttpSender(cfg.connect_timeout, cfg.read_timeout, pool_size=cfg.threads)

    def send(self, d: delivery.Delivery) -> Outcome:
        if d.action == "delete":
            return self.http.delete(d.base, d.rtype, d.rid, d.headers)
        if d.notify_only:
            return self.http.notify(d.base, d.headers)
        assert d.body is not None
        return self.http.put(d.base, d.rtype, d.rid, d.body, d.headers)


class DeliveryWorker:
    def __init__(
        self, db: Database, cfg: DeliveryConfig | None = None, mesh: MeshConfig | None = None
    ) -> None:
        self.db = db
        self.cfg = cfg or DeliveryConfig.from_env()
        self.id = f"worker-{uuid.uuid4().hex[:12]}"
        self.transports: dict[str, Callable[[delivery.Delivery], Outcome]] = {
            "http": HttpTransport(self.cfg).send
        }
        self._mesh: MeshTransport | None = None
        mesh = mesh or MeshConfig.from_env()
        if mesh is not None:  # without CAREBRIDGE_MESH_URL nothing goes by MESH: it waits
            self._mesh = MeshTransport(mesh)
            self.transports["mesh"] = self._mesh.send
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._pool = ThreadPoolExecutor(max_workers=self.cfg.threads, thread_name_prefix="carebridge-push")
        self._thread = threading.Thread(target=self._run, name="carebridge-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        outbox.WAKE.set()
        if self._thread is not None:
            self._thread.join(timeout=self.cfg.connect_timeout + self.cfg.read_timeout + 5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._mesh is not None:
            self._mesh.close()

    def _run(self) -> None:
        pruned = time.monotonic()
        while not self._stop.is_set():
            try:
                busy = self.cycle()
                if time.monotonic() - pruned > PRUNE_EVERY:
                    pruned = time.monotonic()
                    delivery.prune(self.db, self.cfg.keep_days * 86400)
            except Exception:  # a database hiccup must not end deliveries for good
                log.exception("outbox cycle failed; trying again")
                busy = 0
            if not busy:
                woken = outbox.WAKE.wait(self.cfg.poll)
                outbox.WAKE.clear()
                if woken:
                    time.sleep(0.005)  # woken from inside the writer's transaction: let it commit

    def cycle(self) -> int:
        """One round: claim, send, record. Returns how many rows it handled."""
        batch, handled = delivery.claim(self.db, self.id, self.cfg)
        if not batch:
            return handled
        assert self._pool is not None
        # One task per sending thread, each working through its share in turn.
        shares = [batch[i :: self.cfg.threads] for i in range(min(self.cfg.threads, len(batch)))]
        futures: dict[Future, list[delivery.Delivery]] = {
            self._pool.submit(self._send_all, share): share for share in shares
        }
        waiting = set(futures)
        while waiting:
            _, waiting = wait(waiting, timeout=self.cfg.lease / 3, return_when=ALL_COMPLETED)
            if waiting and not self._stop.is_set():
                delivery.renew(self.db, self.id, [d.id for f in waiting for d in futures[f]], self.cfg)
        # They have been sent: recording that must not be lost to a passing conflict.
        for attempt in range(1, FINISH_TRIES + 1):
            try:
                delivery.finish(self.db, self.id, batch, self.cfg)
                break
            except Exception:
                if attempt == FINISH_TRIES:
                    raise  # the leases lapse and the deliveries are sent again (idempotent)
                log.warning("recording deliveries failed (try %d); trying again", attempt, exc_info=True)
                time.sleep(0.1 * attempt)
        return handled

    def _send_all(self, share: list[delivery.Delivery]) -> None:
        for d in share:
            d.outcome = self._send(d)

    def _send(self, d: delivery.Delivery) -> Outcome:
        send = self.transports.get(d.transport)
        if send is None:
            return Outcome(False, None, f"no transport '{d.transport}' in this worker")
        try:
            return send(d)
        except Exception as exc:  # never lose a delivery to a bug in a transport
            log.exception("transport %s failed", d.transport)
            return Outcome(False, None, f"{type(exc).__name__}: {exc}")
