"""The suites shipped with carebridge: conformance/suites/<name>/*.json TestScripts."""

from __future__ import annotations

import json
from pathlib import Path

SUITES_DIR = Path(__file__).parent / "suites"
# The order a reader meets them in: the plain FHIR API first, then what builds on it.
ORDER = ("core", "careplan", "consent", "transfer", "security")


def names() -> list[str]:
    found = [p.name for p in SUITES_DIR.iterdir() if p.is_dir() and any(p.glob("*.json"))]
    return sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def scripts(name: str) -> list[Path]:
    """The TestScripts of one suite, in file-name order (other JSON there are fixtures)."""
    folder = SUITES_DIR / name
    if not folder.is_dir():
        raise KeyError(f"no suite {name!r}; the suites are: {', '.join(names())}")
    return [p for p in sorted(folder.glob("*.json")) if load(p).get("resourceType") == "TestScript"]


def load(path: Path) -> dict:
    return json.loads(path.read_bytes())
