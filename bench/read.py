"""Read-by-id throughput: carebridge vs a fixed 3 KB FastAPI endpoint, same run.

    python bench/read.py [--plans 100000] [--patients 10000] [--seconds 10] [--workers 1 2]

Loads N CarePlans over M patients into a fresh SQLite file (each patient with a consent,
and a voluntary-sector partner some of them share with), starts `carebridge serve` with
1 and 2 workers, and drives authenticated reads of random CarePlans with wrk on
loopback, as the custodian trust (no consent lookup needed) and as a voluntary partner
(consent decides every read). A FastAPI app returning a fixed 3 KB body is measured the
same way, as the ceiling. Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from seed_store import populate  # noqa: E402


def wait_up(url: str, headers: dict[str, str] | None = None, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, headers=headers or {}, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {url} did not come up")


LUA = """
local ids = {}
for i = 1, %(plans)d do ids[i] = "cp-" .. i end
math.randomseed(%(seed)d)
request = function()
  local path = "%(path)s" .. ids[math.random(1, %(sample)d)]
  return wrk.format("GET", path, {["Authorization"] = "Bearer %(token)s"})
end
"""


def run_wrk(url: str, seconds: int, connections: int, script: str | None = None) -> dict[str, float]:
    cmd = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": pct("50"), "p99": pct("99"), "errors": int(non2xx.group(1)) if non2xx else 0}


# The same HTTP server settings for the bench's own apps as carebridge serves with.
UVICORN_FLAGS = ["--log-level", "warning", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]


def serve(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def serve_carebridge(port: int, url: str, env: dict[str, str], workers: int = 1) -> subprocess.Popen:
    """`carebridge serve`, run by this interpreter."""
    cli = "from carebridge.server.cli import main; main()"
    cmd = [
        sys.executable,
        "-c",
        cli,
        "serve",
        "--port",
        str(port),
        "--database",
        url,
        "--workers",
        str(workers),
    ]
    return serve(cmd, env)


def serve_app(module: str, port: int, env: dict[str, str], workers: int = 1) -> subprocess.Popen:
    """One of the bench's own ASGI apps (`bench/MODULE.py`, attribute `app`) under uvicorn."""
    cmd = [sys.executable, "-m", "uvicorn", f"{module}:app", "--app-dir", str(HERE), "--port", str(port)]
    return serve([*cmd, "--workers", str(workers), *UVICORN_FLAGS], env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plans", type=int, default=100_000)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--keep", help="reuse/keep the database file at this path")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    tmp = Path(tempfile.mkdtemp(prefix="cb-bench-"))
    db_path = Path(args.keep) if args.keep else tmp / "bench.db"
    url = f"sqlite:///{db_path}"
    t0 = time.time()
    tokens = populate(url, plans=args.plans, patients=args.patients)
    print(f"store: {args.plans} CarePlans over {args.patients} patients ready in {time.time() - t0:.1f}s")

    env = {**os.environ, "CAREBRIDGE_DATABASE": url}
    results = []
    for workers in args.workers:
        fixed = serve_app("fixed_app", args.port + 1, env, workers)
        server = serve_carebridge(args.port, url, env, workers)
        try:
            wait_up(f"http://127.0.0.1:{args.port + 1}/fixed")
            wait_up(f"http://127.0.0.1:{args.port}/fhir/metadata")
            row = {"workers": workers}
            row["fixed"] = run_wrk(f"http://127.0.0.1:{args.port + 1}/fixed", args.seconds, args.connections)
            for who in ("custodian", "voluntary"):
                script = tmp / f"{who}.lua"
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
                row[who] = run_wrk(
                    f"http://127.0.0.1:{args.port}", args.seconds, args.connections, str(script)
                )
            results.append(row)
        finally:
            for p in (server, fixed):
                p.terminate()
                p.wait(timeout=20)

    print()
    print(f"read by id, {args.connections} connections, {args.seconds}s per run, SQLite, loopback")
    print(
        f"{'workers':>7} {'endpoint':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'non-2xx':>8} {'vs fixed':>9}"
    )
    for row in results:
        base = row["fixed"]["rps"]
        for key, label in (
            ("fixed", "fixed 3 KB FastAPI body"),
            ("custodian", "CarePlan read (custodian)"),
            ("voluntary", "CarePlan read (by consent)"),
        ):
            r = row[key]
            print(
                f"{row['workers']:>7} {label:<28} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                f"{r['errors']:>8} {r['rps'] / base:>8.2f}x"
            )
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
