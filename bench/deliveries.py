"""Outbox delivery: deliveries per second to a local partner, and commit-to-delivery latency.

    python bench/deliveries.py [--resources 2000] [--versions 5] [--workers 2] [--database URL]

A voluntary partner subscribes (FHIR rest-hook) to CarePlans of R patients, each of
whom shares that section with it; the partner is a minimal local FHIR endpoint
(bench/partner_app.py under uvicorn) that records when each PUT arrives.

1. Throughput: with no server running, R x V changes are committed (V versions of each
   of R CarePlans: 10,000 by default), then `carebridge serve --workers W` starts and
   drains the outbox; deliveries/s = deliveries / (last arrival - first arrival). Each
   resource's versions must arrive in order; the run checks it.
2. Latency: with the server running, one change is committed every 20 ms for
   --latency-seconds; latency = partner arrival time - commit time (same clock).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from read import serve_app, serve_carebridge, wait_up  # noqa: E402
from seed_store import ALLIANCE, SECTIONS, TRUST, VOLUNTARY, care_plan, consent, nhs_number  # noqa: E402

from carebridge.mappings.vocabulary import NHS_NUMBER_SYSTEM  # noqa: E402
from carebridge.server import partners, store  # noqa: E402
from carebridge.server.db import Database  # noqa: E402
from carebridge.server.subscriptions import OWNER_SYSTEM  # noqa: E402


def seed(db: Database, resources: int, endpoint: str) -> None:
    with db.write() as c:
        store.put(c, {"resourceType": "Organization", "name": "Bench alliance"}, rid=ALLIANCE, method="PUT")
    partners.add(
        db, partners.Partner(TRUST, "Bench trust", "trust", partners.DEFAULT_SCOPES["trust"]), replace=True
    )
    partners.add(
        db,
        partners.Partner(
            VOLUNTARY, "Bench voluntary", "voluntary", partners.DEFAULT_SCOPES["voluntary"], part_of=ALLIANCE
        ),
        replace=True,
    )
    with db.write() as c:
        for i in range(resources):
            pid = f"p-{i}"
            store.put(
                c,
                {
                    "resourceType": "Patient",
                    "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs_number(i)}],
                    "managingOrganization": {"reference": f"Organization/{TRUST}"},
                },
                rid=pid,
                method="PUT",
            )
            store.put(c, consent(pid), rid=f"consent-{i}", method="PUT")
            store.put(c, care_plan(i, pid, SECTIONS[0]), rid=f"cp-{i}", method="PUT")
        sub = {
            "resourceType": "Subscription",
            "status": "active",
            "reason": "benchmark",
            "criteria": f"CarePlan?_tag=https://carebridge.example/fhir/CodeSystem/care-plan-section|{SECTIONS[0]}",
            "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"},
            "meta": {"tag": [{"system": OWNER_SYSTEM, "code": VOLUNTARY}]},
        }
        store.put(c, sub, rid="bench-sub", method="PUT")


def change(db: Database, i: int, n: int) -> tuple[str, int]:
    with db.write() as c:
        row = store.current(c, "CarePlan", f"cp-{i}")
        assert row is not None
        plan = row.resource()
        plan["description"] = f"change {n}"
        new, _ = store.put(c, plan, rid=f"cp-{i}", method="PUT")
    return f"/fhir/CarePlan/cp-{i}", new.version


def arrivals(partner: str) -> list[tuple[str, str, int, float]]:
    return [tuple(a) for a in httpx.get(f"{partner}/stats", timeout=30).json()["arrivals"]]  # type: ignore[misc]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resources", type=int, default=2000)
    ap.add_argument("--versions", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--latency-seconds", type=float, default=20)
    ap.add_argument("--port", type=int, default=18100)
    ap.add_argument(
        "--database", help="a PostgreSQL URL (an empty database/schema) instead of a fresh SQLite file"
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cb-bench-push-"))
    url = args.database or f"sqlite:///{tmp / 'bench.db'}"
    partner = f"http://127.0.0.1:{args.port + 1}"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(serve_app("partner_app", args.port + 1, dict(os.environ)))
        db = Database(url)
        seed(db, args.resources, f"{partner}/fhir")
        total = args.resources * args.versions
        t0 = time.time()
        for n in range(args.versions):
            for i in range(args.resources):
                change(db, i, n)
        print(
            f"queued {total} deliveries ({args.resources} CarePlans x {args.versions} versions) "
            f"in {time.time() - t0:.1f}s; database {url.split('?')[0]}"
        )
        wait_up(f"{partner}/stats")
        env = {**os.environ, "CAREBRIDGE_DATABASE": url}
        procs.append(serve_carebridge(args.port, url, env, args.workers))
        deadline = time.time() + 600
        while len(got := arrivals(partner)) < total and time.time() < deadline:
            time.sleep(0.5)
        times = sorted(a[3] for a in got)
        span = times[-1] - times[0]
        per_resource: dict[str, list[int]] = {}
        for _, path, version, _ in sorted(got, key=lambda a: a[3]):
            per_resource.setdefault(path, []).append(version)
        in_order = all(v == sorted(v) for v in per_resource.values())
        print(
            f"throughput: {len(got)} deliveries in {span:.2f}s = {len(got) / span:,.0f} deliveries/s "
            f"on {args.workers} worker(s); per-resource order kept: {in_order}"
        )

        httpx.post(f"{partner}/reset")
        committed: dict[tuple[str, int], float] = {}
        end = time.time() + args.latency_seconds
        n = args.versions
        while time.time() < end:
            key = change(db, n % args.resources, n)
            committed[key] = time.time()
            n += 1
            time.sleep(0.02)
        time.sleep(2)
        lat = []
        for _, path, version, at in arrivals(partner):
            if (path, version) in committed:
                lat.append((at - committed[(path, version)]) * 1000)
        lat.sort()
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(
            f"latency: {len(lat)}/{len(committed)} changes delivered; commit to delivery p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms, max {lat[-1]:.1f} ms"
        )
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
