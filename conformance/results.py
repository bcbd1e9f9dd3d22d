"""What running a TestScript found: per action, per test, per script."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from carebridge.conformance.exchange import Exchange

FAILED = ("fail", "error")


@dataclass
class ActionResult:
    kind: str  # "operation" | "assert"
    result: str  # pass | fail | warning | error | skip
    message: str
    description: str = ""
    exchange: Exchange | None = None  # the request/response it sent or looked at


@dataclass
class TestResult:
    id: str
    name: str
    description: str = ""
    rule: str | None = None
    actions: list[ActionResult] = field(default_factory=list)

    @property
    def result(self) -> str:
        results = {a.result for a in self.actions}
        if "error" in results:
            return "error"
        if "fail" in results:
            return "fail"
        if not results or results == {"skip"}:
            return "skip"
        return "pass"

    @property
    def failure(self) -> ActionResult | None:
        return next((a for a in self.actions if a.result in FAILED), None)

    @property
    def warnings(self) -> list[ActionResult]:
        return [a for a in self.actions if a.result == "warning"]


@dataclass
class ScriptResult:
    suite: str
    id: str
    name: str
    title: str = ""
    description: str = ""
    url: str | None = None
    path: Path | None = None
    base_url: str = ""
    setup: list[ActionResult] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)
    teardown: list[ActionResult] = field(default_factory=list)
    not_applicable: str | None = None  # why it was not run
    issued: str = ""

    @property
    def setup_failure(self) -> ActionResult | None:
        return next((a for a in self.setup if a.result in FAILED), None)

    @property
    def result(self) -> str:
        if self.not_applicable:
            return "skip"
        if self.setup_failure or any(t.result in FAILED for t in self.tests):
            return "fail"
        return "pass"

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "skip": 0}
        for t in self.tests:
            out["fail" if t.result in FAILED else t.result] += 1
        return out
