"""Consent-filtered bulk export throughput from a 100k-resource store.

    python bench/export.py [--plans 100000] [--patients 10000] [--database URL] [--keep PATH]

Loads N CarePlans over M patients (each with a consent sharing four sections with a
voluntary partner's alliance; every CarePlan is in one of them) into a fresh SQLite
file (or the PostgreSQL database given), starts `carebridge serve`, and times
`GET /fhir/$export` from kick-off to the complete manifest, as the voluntary partner
(consent decides every resource) and as the custodian trust. Resources/s counts every
resource the export considered (Patients, Consents, CarePlans); the files are then
downloaded and their lines counted to check what came out.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from read import serve_carebridge, wait_up  # noqa: E402
from seed_store import populate  # noqa: E402

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


def run_export(base: str, token: str, types: str) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=600) as c:
        t0 = time.perf_counter()
        r = c.get(f"{base}/$export", params={"_type": types}, headers=ASYNC)
        r.raise_for_status()
        status = r.headers["Content-Location"]
        while True:
            r = c.get(status)
            if r.status_code == 200:
                break
            r.raise_for_status()
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        manifest = r.json()
        t1 = time.perf_counter()
        lines = 0
        size = 0
        for item in manifest["output"]:
            with c.stream("GET", item["url"]) as f:
                for chunk in f.iter_bytes():
                    lines += chunk.count(b"\n")
                    size += len(chunk)
        download = time.perf_counter() - t1
    return {"seconds": elapsed, "exported": lines, "bytes": size, "download_seconds": download}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plans", type=int, default=100_000)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--port", type=int, default=18090)
    ap.add_argument("--database", help="a PostgreSQL URL to use instead of a fresh SQLite file")
    ap.add_argument("--keep", help="reuse/keep the SQLite file at this path")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cb-bench-export-"))
    url = args.database or f"sqlite:///{Path(args.keep) if args.keep else tmp / 'bench.db'}"
    t0 = time.time()
    tokens = populate(url, plans=args.plans, patients=args.patients)
    considered = args.plans + 2 * args.patients  # CarePlans, Patients, Consents
    print(
        f"store: {args.plans} CarePlans + {args.patients} Patients + {args.patients} Consents "
        f"({considered} resources) ready in {time.time() - t0:.1f}s"
    )
    env = {**os.environ, "CAREBRIDGE_DATABASE": url, "CAREBRIDGE_EXPORT_DIR": str(tmp / "exports")}
    server = serve_carebridge(args.port, url, env)
    base = f"http://127.0.0.1:{args.port}/fhir"
    try:
        wait_up(f"{base}/metadata")
        print(
            f"{'requester':<12} {'run':>3} {'seconds':>8} {'considered/s':>13} {'exported':>9} "
            f"{'exported/s':>11} {'download MB/s':>14}"
        )
        for who in ("voluntary", "custodian"):
            for run in range(1, args.runs + 1):
                got = run_export(base, tokens[who], "Patient,Consent,CarePlan")
                print(
                    f"{who:<12} {run:>3} {got['seconds']:>8.2f} {considered / got['seconds']:>13,.0f} "
                    f"{got['exported']:>9,} {got['exported'] / got['seconds']:>11,.0f} "
                    f"{got['bytes'] / 1e6 / max(got['download_seconds'], 1e-9):>14,.0f}"
                )
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
