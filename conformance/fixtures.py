"""TestScript fixtures: the resources a script sends and compares against.

`fixture.resource.reference` is resolved, in order, as a contained resource (`#id`), a
file beside the script (`patient.json`, `xxe.xml`), or `Type/id` looked up among the
JSON files of the fixture directories (how HL7's examples name `Patient/example`).
A contained `Binary`, and any non-JSON file, is kept as raw bytes and sent exactly as
written (hostile XML stays unparsed here).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from carebridge.conformance.exchange import JSON, XML


class FixtureError(Exception):
    """A fixture that cannot be found or read."""


@dataclass
class Fixture:
    id: str
    resource: dict | None = None  # parsed JSON
    raw: bytes | None = None  # as written, when the file is not JSON
    media: str = JSON
    contained: bool = False  # its id is local to the script, not a server id
    autocreate: bool = False
    autodelete: bool = False
    created: str | None = None  # "Type/id" on the server after autocreate

    def header(self, name: str, *, request: bool = False) -> str | None:
        return None  # static fixtures have no headers


def load_fixtures(script: dict, script_dir: Path | None, fixture_dirs: list[Path]) -> dict[str, Fixture]:
    index = _Index(fixture_dirs)
    out: dict[str, Fixture] = {}
    for f in script.get("fixture") or []:
        ref = ((f.get("resource") or {}).get("reference") or "").strip()
        if not f.get("id") or not ref:
            raise FixtureError(f"fixture {f.get('id')!r} needs an id and a resource reference")
        fixture = _resolve(f["id"], ref, script, script_dir, index)
        fixture.autocreate = bool(f.get("autocreate"))
        fixture.autodelete = bool(f.get("autodelete"))
        out[f["id"]] = fixture
    return out


def _resolve(fid: str, ref: str, script: dict, script_dir: Path | None, index: _Index) -> Fixture:
    if ref.startswith("#"):
        for c in script.get("contained") or []:
            if c.get("id") == ref[1:]:
                if c.get("resourceType") == "Binary":
                    # A body that is not a FHIR resource at all (hostile XML): sent as written.
                    raw = base64.b64decode(c.get("data") or "")
                    return Fixture(fid, raw=raw, media=c.get("contentType") or XML, contained=True)
                return Fixture(fid, resource=c, contained=True)
        raise FixtureError(f"fixture {fid}: no contained resource {ref}")
    if script_dir is not None and (script_dir / ref).is_file():
        return _from_file(fid, script_dir / ref)
    found = index.find(ref)
    if found is not None:
        return _from_file(fid, found)
    raise FixtureError(f"fixture {fid}: cannot find {ref} beside the script or in the fixture directories")


def _from_file(fid: str, path: Path) -> Fixture:
    data = path.read_bytes()
    if path.suffix == ".json":
        try:
            return Fixture(fid, resource=json.loads(data))
        except ValueError as exc:
            raise FixtureError(f"fixture {fid}: {path.name} is not JSON: {exc}") from None
    return Fixture(fid, raw=data, media=XML if path.suffix == ".xml" else "application/octet-stream")


class _Index:
    """Type/id -> JSON file, over the fixture directories (read once, when first asked)."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs
        self._by_ref: dict[str, Path] | None = None

    def find(self, ref: str) -> Path | None:
        if self._by_ref is None:
            self._by_ref = {}
            for d in self.dirs:
                for path in sorted(Path(d).glob("*.json")):
                    try:
                        r = json.loads(path.read_bytes())
                    except ValueError:
                        continue
                    if isinstance(r, dict) and r.get("resourceType") and r.get("id"):
                        self._by_ref.setdefault(f"{r['resourceType']}/{r['id']}", path)
        return self._by_ref.get(ref)
