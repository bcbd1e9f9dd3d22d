"""Whether a script applies to this server and this configuration, before it runs.

A script is not applicable (reported, never failed) when it needs a role the config
does not give, or when its `metadata.capability` marked `required` names a
CapabilityStatement (shipped beside the suite) whose resources, interactions or
operations the server's own CapabilityStatement does not declare. References that
cannot be resolved (HL7's `CapabilityStatement/example`) are not checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROLE_USE = re.compile(r"\$\{(?:auth\.([\w-]+)|role\.([\w-]+)\.[\w-]+)\}")


def roles_needed(script: dict) -> set[str]:
    text = json.dumps(script)
    return {a or b for a, b in ROLE_USE.findall(text)}


def missing_roles(script: dict, roles: set[str]) -> list[str]:
    return sorted(roles_needed(script) - roles)


def required_statements(script: dict, search_dirs: list[Path]) -> list[dict]:
    wanted = [
        c.get("capabilities")
        for c in (script.get("metadata") or {}).get("capability") or []
        if c.get("required") and c.get("capabilities")
    ]
    if not wanted:
        return []
    known: dict[str, dict] = {}
    for d in search_dirs:
        for path in Path(d).glob("*.json"):
            try:
                r = json.loads(path.read_bytes())
            except ValueError:
                continue
            if isinstance(r, dict) and r.get("resourceType") == "CapabilityStatement" and r.get("url"):
                known[r["url"]] = r
    return [known[w] for w in wanted if w in known]


def unmet(required: dict, server: dict) -> list[str]:
    """What `required` declares that the server's CapabilityStatement does not."""
    have_ops: set[str] = set()
    have_interactions: dict[str, set[str]] = {}
    for rest in server.get("rest") or []:
        have_ops |= {o.get("name") for o in rest.get("operation") or []}
        for r in rest.get("resource") or []:
            have_interactions.setdefault(r.get("type"), set()).update(
                i.get("code") for i in r.get("interaction") or []
            )
            have_ops |= {o.get("name") for o in r.get("operation") or []}
    missing: list[str] = []
    for rest in required.get("rest") or []:
        missing += [
            f"operation ${o['name']}" for o in rest.get("operation") or [] if o.get("name") not in have_ops
        ]
        for r in rest.get("resource") or []:
            rtype = r.get("type")
            if rtype not in have_interactions:
                missing.append(f"resource type {rtype}")
                continue
            missing += [
                f"{i.get('code')} on {rtype}"
                for i in r.get("interaction") or []
                if i.get("code") not in have_interactions[rtype]
            ]
            missing += [
                f"operation ${o['name']} on {rtype}"
                for o in r.get("operation") or []
                if o.get("name") not in have_ops
            ]
    return missing
