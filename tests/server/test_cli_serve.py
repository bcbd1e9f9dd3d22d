"""`carebridge serve --demo` (CONTRACTS.md section 1; issue 3 "Done when"): a newcomer
starts the server, pastes one of the printed curl lines, and reads Millie's care plan."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import _pg_available, drop_pg_schema, free_port, pg_schema_url

CLI_MAIN = "from carebridge.server.cli import main; main()"
CARE_PLAN_CURL = re.compile(r"^curl .*/fhir/CarePlan/millie-plan'$")


class Served:
    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc = proc
        self.port = port
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_until_answering(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("carebridge serve exited:\n" + "\n".join(self.lines))
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/fhir/metadata", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("carebridge serve did not answer:\n" + "\n".join(self.lines))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`carebridge serve --demo` in a subprocess, on a fresh database, until the module ends."""
    if request.param == "postgresql" and (reason := _pg_available()):
        pytest.skip(reason)
    url = (
        f"sqlite:///{tmp_path_factory.mktemp('serve') / 'demo.db'}"
        if request.param == "sqlite"
        else pg_schema_url()
    )
    port = free_port()
    command = ["carebridge"] if shutil.which("carebridge") else [sys.executable, "-c", CLI_MAIN]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [*command, "serve", "--demo", "--port", str(port), "--database", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    served = Served(proc, port)
    try:
        served.wait_until_answering()
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if request.param == "postgresql":
            drop_pg_schema(url)


def test_a_printed_curl_line_reads_millies_care_plan(served: Served):
    curl_lines = [line for line in served.lines if CARE_PLAN_CURL.match(line)]
    assert curl_lines, "no curl line for Millie's care plan in:\n" + "\n".join(served.lines)
    if shutil.which("curl"):
        args = shlex.split(curl_lines[0]) + ["--write-out", "\n%{http_code}"]
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
        body, status = done.stdout.rsplit("\n", 1)
    else:  # the same request, made the way curl would
        token = re.search(r"Bearer ([^']+)'", curl_lines[0]).group(1)
        url = re.search(r"'(http[^']+)'$", curl_lines[0]).group(1)
        r = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        body, status = r.text, str(r.status_code)
    assert status == "200", body
    plan = json.loads(body)
    assert plan["resourceType"] == "CarePlan"
    assert plan["id"] == "millie-plan"
    assert plan["subject"]["reference"] == "Patient/millie"


def test_serve_demo_prints_a_token_for_every_demo_partner(served: Served):
    exports = [line for line in served.lines if line.startswith("export ") and "_TOKEN=" in line]
    names = {line.split("=", 1)[0].removeprefix("export ") for line in exports}
    assert {"AWP_BATH_CMHT_TOKEN", "KEYNSHAM_GP_TOKEN", "BATH_MIND_TOKEN", "MILLIE_APP_TOKEN"} <= names
    gp_token = next(line.split("=", 1)[1] for line in exports if line.startswith("export KEYNSHAM_GP_TOKEN="))
    r = httpx.get(
        f"http://127.0.0.1:{served.port}/fhir/CarePlan/millie-plan",
        headers={"Authorization": f"Bearer {gp_token}"},
    )
    assert r.status_code == 404  # Millie said no to her GP reading her plan in advance
