"""The official MESH API sandbox (`mesh-sandbox`), run by the tests with uvicorn on a free
loopback port: in-memory store, no TLS, full MESH authentication.

Its canned mailboxes stand in for the parties: X26ABC1 is carebridge's own mailbox,
X26ABC2 the GP practice's. Stopping it loses what it held, as a restarted in-memory
MESH would; it comes back on the same port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx

from carebridge.adapters.mesh import MeshConfig
from tests.conftest import free_port

CAREBRIDGE_MAILBOX = "X26ABC1"
GP_MAILBOX = "X26ABC2"
PASSWORD = "password"  # the sandbox's canned mailboxes all use this
SHARED_KEY = "carebridge-test-key"


ROOT = Path(__file__).resolve().parents[2]


def sandbox_python() -> str:
    """An interpreter with the pinned mesh-sandbox: its own venv, as its fastapi pin cannot
    share ours (see pyproject.toml). Made once per machine, then reused."""
    if given := os.environ.get("CAREBRIDGE_MESH_SANDBOX_PYTHON"):
        return given
    pin = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    requirement = pin["mesh-sandbox"][0]
    venv = Path.home() / ".cache" / "carebridge" / requirement.replace("==", "-")
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", requirement], check=True, timeout=600)
    return str(python)


class Sandbox:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "STORE_MODE": "memory", "AUTH_MODE": "full", "SHARED_KEY": SHARED_KEY}
        self.proc = subprocess.Popen(
            [
                sandbox_python(),
                "-m",
                "uvicorn",
                "mesh_sandbox.api:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):  # bounded: about 20 seconds
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("mesh-sandbox did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def config(self, mailbox: str = CAREBRIDGE_MAILBOX) -> MeshConfig:
        return MeshConfig(url=self.url, mailbox=mailbox, password=PASSWORD, shared_key=SHARED_KEY)
