"""Consent-enforced, audited reads and searches vs the same without enforcement.

    python bench/consent_read.py [--plans 100000] [--patients 10000] [--seconds 10] [--workers 1 2]

(b) read by id of random CarePlans, 100k CarePlans over 10k patients with a consent
    each, as a voluntary partner whose every read is decided by consent and audited,
    next to the unenforced read (bench/unenforced_app.py) and a fixed 3 KB endpoint;
(c) a search page of 50 for one patient of whose 2,000 CarePlans 90% are denied to the
    voluntary partner, next to the same page for the custodian (nothing filtered).
Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from read import LUA, run_wrk, serve_app, serve_carebridge, wait_up  # noqa: E402
from seed_store import SECTIONS, populate, populate_crowded_patient  # noqa: E402

SEARCH_LUA = """
request = function()
  return wrk.format("GET", "%(path)s", {["Authorization"] = "Bearer %(token)s"})
end
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plans", type=int, default=100_000)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--port", type=int, default=18180)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="cb-bench-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    t0 = time.time()
    tokens = populate(url, plans=args.plans, patients=args.patients)
    populate_crowded_patient(url, "crowded", plans=2000, shared_fraction=0.1)
    print(f"store ready in {time.time() - t0:.1f}s ({args.plans} CarePlans, {args.patients} patients)")
    env = {**os.environ, "CAREBRIDGE_DATABASE": url}
    rows = []
    for workers in args.workers:
        procs = [
            serve_carebridge(args.port, url, env, workers),
            serve_app("unenforced_app", args.port + 1, env, workers),
            serve_app("fixed_app", args.port + 2, env, workers),
        ]
        try:
            wait_up(f"http://127.0.0.1:{args.port}/fhir/metadata")
            wait_up(f"http://127.0.0.1:{args.port + 1}/fhir/CarePlan/cp-1")
            wait_up(f"http://127.0.0.1:{args.port + 2}/fixed")
            row = {"workers": workers}
            row["fixed"] = run_wrk(f"http://127.0.0.1:{args.port + 2}/fixed", args.seconds, args.connections)
            for key, port, who in (
                ("unenforced", args.port + 1, "voluntary"),
                ("enforced", args.port, "voluntary"),
            ):
                script = tmp / f"{key}.lua"
                script.write_text(
                    LUA
                    % {
                        "plans": args.plans,
                        "sample": args.plans,
                        "seed": random.randint(1, 10**6),
                        "path": "/fhir/CarePlan/",
                        "token": tokens[who],
                    }
                )
                row[key] = run_wrk(f"http://127.0.0.1:{port}", args.seconds, args.connections, str(script))
            for key, who in (("page-unfiltered", "custodian"), ("page-90%-denied", "voluntary")):
                script = tmp / f"{key}.lua"
                script.write_text(
                    SEARCH_LUA % {"path": "/fhir/CarePlan?patient=crowded&_count=50", "token": tokens[who]}
                )
                row[key] = run_wrk(
                    f"http://127.0.0.1:{args.port}", args.seconds, args.connections, str(script)
                )
            rows.append(row)
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=20)
    print()
    print(f"SQLite, loopback, {args.connections} connections, {args.seconds}s per run; sections {SECTIONS}")
    print(f"{'workers':>7} {'what':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for row in rows:
        for key, label in (
            ("fixed", "fixed 3 KB FastAPI body"),
            ("unenforced", "read by id, no consent, no audit"),
            ("enforced", "read by id, consent + audit"),
            ("page-unfiltered", "search page of 50, custodian"),
            ("page-90%-denied", "search page of 50, 90% denied"),
        ):
            r = row[key]
            print(
                f"{row['workers']:>7} {label:<34} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                f"{r['errors']:>8}"
            )
        print(
            f"{'':>7} enforced / unenforced = {row['enforced']['rps'] / row['unenforced']['rps']:.2f}x; "
            "filtered / unfiltered page = "
            f"{row['page-90%-denied']['rps'] / row['page-unfiltered']['rps']:.2f}x"
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
