"""The TestScript engine: runs one FHIR R4 TestScript against a FHIR server.

Order, as R4 says: fixtures (autocreate), `setup`, each `test`, `teardown`, fixtures
(autodelete). Within the setup or a test, the first failing assert stops it and the
actions after it are skipped (they would only report the same fault again); a failed
setup skips every test. Teardown always runs. A `warningOnly` assert that fails is
reported as a warning and does not fail its test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from carebridge.conformance import capabilities, extensions
from carebridge.conformance.asserts import evaluate_assert
from carebridge.conformance.body_patch import PatchError
from carebridge.conformance.context import RunContext
from carebridge.conformance.exchange import JSON, Exchange, send
from carebridge.conformance.fhirpath import ExpressionError
from carebridge.conformance.fixtures import Fixture, FixtureError, load_fixtures
from carebridge.conformance.operations import OperationError
from carebridge.conformance.operations import run as run_operation
from carebridge.conformance.results import FAILED, ActionResult, ScriptResult, TestResult
from carebridge.conformance.variables import UnresolvedVariable, Variables, builtins

ACTION_ERRORS = (OperationError, UnresolvedVariable, FixtureError, PatchError, ExpressionError, ValueError)


@dataclass
class Role:
    """How to act as one role: its Authorization header and facts scripts may use."""

    name: str
    authorization: str | None = None
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Settings:
    base_url: str
    roles: dict[str, Role] = field(default_factory=dict)
    default_role: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    fixture_dirs: list[Path] = field(default_factory=list)
    timeout: float = 30.0
    poll_timeout: float = 60.0


class Engine:
    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.client = client or httpx.Client(timeout=settings.timeout, follow_redirects=False)
        self._capability: dict | None = None
        self._capability_read = False

    def close(self) -> None:
        self.client.close()

    @property
    def default_auth(self) -> str | None:
        role = self.settings.roles.get(self.settings.default_role or "")
        return role.authorization if role else None

    def capability_statement(self) -> dict | None:
        if not self._capability_read:
            self._capability_read = True
            headers = {"Accept": JSON}
            if self.default_auth:
                headers["Authorization"] = self.default_auth
            ex = send(self.client, "GET", self.settings.base_url.rstrip("/") + "/metadata", headers, None)
            if ex.status == 200 and (ex.resource or {}).get("resourceType") == "CapabilityStatement":
                self._capability = ex.resource
        return self._capability

    # -- one script ----------------------------------------------------------------------
    def run(self, script: dict, *, suite: str = "", path: Path | None = None) -> ScriptResult:
        sid = script.get("id") or (path.stem if path else "script")
        result = ScriptResult(
            suite=suite,
            id=sid,
            name=script.get("name") or sid,
            title=script.get("title") or script.get("name") or sid,
            description=script.get("description") or "",
            url=script.get("url"),
            path=path,
            base_url=self.settings.base_url,
            issued=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        result.not_applicable = self.not_applicable(script, path)
        if result.not_applicable:
            return result
        script_dir = path.parent if path else None
        try:
            fixtures = load_fixtures(script, script_dir, self.settings.fixture_dirs)
        except FixtureError as exc:
            result.setup.append(ActionResult("operation", "error", str(exc), "load the fixtures"))
            result.tests = [
                self._skipped(t, "not run: a fixture could not be loaded") for t in script.get("test") or []
            ]
            return result
        ctx = RunContext(
            base_url=self.settings.base_url,
            client=self.client,
            script=script,
            fixtures=fixtures,
            default_auth=self.default_auth,
            poll_timeout=self.settings.poll_timeout,
        )
        ctx.variables = Variables(script.get("variable") or [], self._fixed_variables(), ctx.source)

        for f in fixtures.values():
            if f.autocreate:
                result.setup.append(self._autocreate(f, ctx))
        if not any(a.result in FAILED for a in result.setup):
            result.setup += self._actions((script.get("setup") or {}).get("action") or [], ctx)
        setup_ok = not any(a.result in FAILED for a in result.setup)
        for t in script.get("test") or []:
            if not setup_ok:
                result.tests.append(self._skipped(t, "not run: the setup failed"))
                continue
            tr = self._test(t)
            tr.actions = self._actions(t.get("action") or [], ctx)
            result.tests.append(tr)
        for action in (script.get("teardown") or {}).get("action") or []:
            result.teardown.append(self._action(action, ctx))
        for f in fixtures.values():
            if f.autodelete and f.created:
                ex = send(
                    self.client, "DELETE", f"{ctx.base_url.rstrip('/')}/{f.created}", self._headers(), None
                )
                result.teardown.append(_operation_result(ex, f"delete fixture {f.id}"))
        return result

    def not_applicable(self, script: dict, path: Path | None) -> str | None:
        if script.get("resourceType") != "TestScript":
            return f"not a TestScript (resourceType {script.get('resourceType')!r})"
        missing = capabilities.missing_roles(script, set(self.settings.roles))
        if missing:
            return "the config gives no role " + ", ".join(missing)
        search = ([path.parent] if path else []) + list(self.settings.fixture_dirs)
        required = capabilities.required_statements(script, search)
        if required:
            server = self.capability_statement()
            if server is None:
                return "the server's CapabilityStatement (GET metadata) could not be read"
            gaps = [g for r in required for g in capabilities.unmet(r, server)]
            if gaps:
                return "the server does not declare " + ", ".join(gaps)
        return None

    # -- pieces ---------------------------------------------------------------------------
    def _fixed_variables(self) -> dict[str, str]:
        fixed = builtins()
        for name, role in self.settings.roles.items():
            if role.authorization:
                fixed[f"auth.{name}"] = role.authorization
            for k, v in role.values.items():
                fixed[f"role.{name}.{k}"] = v
        fixed.update(self.settings.variables)
        return fixed

    def _headers(self) -> dict[str, str]:
        h = {"Accept": JSON}
        if self.default_auth:
            h["Authorization"] = self.default_auth
        return h

    @staticmethod
    def _test(t: dict) -> TestResult:
        return TestResult(
            id=t.get("id") or t.get("name") or "test",
            name=t.get("name") or t.get("id") or "test",
            description=t.get("description") or "",
            rule=extensions.value(t, extensions.RULE),
        )

    def _skipped(self, t: dict, why: str) -> TestResult:
        tr = self._test(t)
        tr.actions = [ActionResult("operation", "skip", why, "")]
        return tr

    def _actions(self, actions: list[dict], ctx: RunContext) -> list[ActionResult]:
        out: list[ActionResult] = []
        for i, action in enumerate(actions):
            r = self._action(action, ctx)
            out.append(r)
            if r.result in FAILED:
                for rest in actions[i + 1 :]:
                    kind = "operation" if "operation" in rest else "assert"
                    desc = (rest.get(kind) or {}).get("description", "")
                    out.append(ActionResult(kind, "skip", "not run: an earlier action failed", desc))
                break
        return out

    def _action(self, action: dict, ctx: RunContext) -> ActionResult:
        if "operation" in action:
            op = action["operation"]
            desc = op.get("description") or op.get("label") or ""
            try:
                ex = run_operation(op, ctx)
            except ACTION_ERRORS as exc:
                return ActionResult("operation", "error", str(exc), desc, ctx.last)
            return _operation_result(ex, desc)
        if "assert" in action:
            return evaluate_assert(action["assert"], ctx)
        return ActionResult("operation", "error", "an action must hold an operation or an assert", "")

    def _autocreate(self, f: Fixture, ctx: RunContext) -> ActionResult:
        if f.resource is None:
            return ActionResult("operation", "error", f"fixture {f.id} is not a resource", "autocreate")
        body = ctx.vars.substitute_json(f.resource)
        base = ctx.base_url.rstrip("/")
        rtype = body.get("resourceType")
        headers = {**self._headers(), "Content-Type": JSON}
        if body.get("id") and not f.contained:
            ex = send(self.client, "PUT", f"{base}/{rtype}/{body['id']}", headers, json.dumps(body).encode())
        else:
            body.pop("id", None)
            ex = send(self.client, "POST", f"{base}/{rtype}", headers, json.dumps(body).encode())
        created = (ex.resource or {}).get("id") if ex.status in (200, 201) else None
        if created:
            f.created = f"{rtype}/{created}"
            return ActionResult("operation", "pass", f"autocreate {f.id}: {f.created}", "autocreate", ex)
        return ActionResult(
            "operation", "error", f"autocreate {f.id} answered {ex.status or ex.error}", "autocreate", ex
        )


def _operation_result(ex: Exchange, description: str) -> ActionResult:
    if ex.error:
        return ActionResult("operation", "error", f"{ex.method} {ex.url}: {ex.error}", description, ex)
    return ActionResult("operation", "pass", f"{ex.method} {ex.url} -> {ex.status}", description, ex)
