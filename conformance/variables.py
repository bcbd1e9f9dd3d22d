"""TestScript variables: `${name}` in URLs, headers, values and fixture bodies.

A variable is read when it is used, so it sees the latest response: from a header
(`headerField`), a FHIRPath `expression` or a `path` over its `sourceId` (or the last
response), else its `defaultValue`. Values given on the command line or in the config
win over the script's own; built-ins give each run fresh ids.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from carebridge.conformance.fhirpath import evaluate, first_text, from_path

PATTERN = re.compile(r"\$\{([^}]+)\}")


class Source(Protocol):
    resource: dict | None

    def header(self, name: str, *, request: bool = False) -> str | None: ...


class UnresolvedVariable(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"variable ${{{name}}} has no value (not defined, or its source gave nothing)")
        self.name = name


def builtins() -> dict[str, str]:
    """Fresh per script run: ids no earlier run used, and an NHS number that validates.

    `none` is the empty string: a requestHeader set to ${none} is not sent at all (FHIR
    strings cannot be empty, so a script cannot write "" itself).
    """
    return {"runId": uuid.uuid4().hex[:10], "nhsNumber": sample_nhs_number(), "none": ""}


def sample_nhs_number(rng: random.Random | None = None) -> str:
    """A 999-range (test) NHS number with a correct modulus-11 check digit."""
    rng = rng or random.Random()
    while True:
        digits = "999" + "".join(rng.choice("0123456789") for _ in range(6))
        check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return digits + str(check)


class Variables:
    def __init__(
        self,
        definitions: list[dict],
        fixed: dict[str, str],
        source: Callable[[str | None], Source | None],
    ) -> None:
        self.definitions = {d["name"]: d for d in definitions if d.get("name")}
        self.fixed = fixed
        self.source = source

    def get(self, name: str) -> str | None:
        if name in self.fixed:
            return self.fixed[name]
        d = self.definitions.get(name)
        if d is None:
            return None
        value: str | None = None
        src = self.source(d.get("sourceId"))
        if src is not None:
            if d.get("headerField"):
                value = src.header(d["headerField"])
            elif d.get("expression"):
                value = first_text(evaluate(src.resource, self.substitute(d["expression"])))
            elif d.get("path"):
                value = first_text(evaluate(src.resource, from_path(self.substitute(d["path"]))))
        if value in (None, ""):
            value = d.get("defaultValue")
        return value

    def substitute(self, text: str) -> str:
        def one(m: re.Match) -> str:
            value = self.get(m.group(1))
            if value is None:
                raise UnresolvedVariable(m.group(1))
            return value

        return PATTERN.sub(one, text)

    def substitute_json(self, node: Any) -> Any:
        if isinstance(node, str):
            return self.substitute(node)
        if isinstance(node, list):
            return [self.substitute_json(v) for v in node]
        if isinstance(node, dict):
            return {k: self.substitute_json(v) for k, v in node.items()}
        return node
