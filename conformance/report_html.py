"""report.html: what a person reads: pass/fail per test, the rule each checks, and for
each failure the exact request and response."""

from __future__ import annotations

import contextlib
import json
import re
from collections import OrderedDict
from datetime import UTC, datetime

from jinja2 import Environment

from carebridge.conformance.exchange import Exchange
from carebridge.conformance.report_template import TEMPLATE
from carebridge.conformance.results import FAILED, ScriptResult

BODY_LIMIT = 4000
SHOWN_HEADERS = ("content-type", "location", "content-location", "etag", "last-modified", "www-authenticate")


def html(results: list[ScriptResult]) -> str:
    env = Environment(autoescape=True)
    suites: OrderedDict[str, dict] = OrderedDict()
    failures = []
    totals = {"tests": 0, "pass": 0, "fail": 0, "skip": 0}
    for r in results:
        anchor = _anchor(f"{r.suite}-{r.id}")
        view = {
            "title": r.title,
            "description": r.description,
            "file": r.path.name if r.path else "",
            "result": r.result,
            "anchor": anchor,
            "not_applicable": r.not_applicable,
            "setup_failure": r.setup_failure,
            "setup_exchange": _shown(r.setup_failure.exchange) if r.setup_failure else None,
            "tests": [],
        }
        s = suites.setdefault(
            r.suite, {"name": r.suite, "scripts": 0, "pass": 0, "fail": 0, "skip": 0, "results": []}
        )
        s["scripts"] += 1
        if r.setup_failure:
            failures.append(
                {"suite": r.suite, "script": r.title, "test": "setup", "rule": None, "anchor": anchor}
            )
        for t in r.tests:
            result = "fail" if t.result in FAILED else t.result
            tanchor = _anchor(f"{anchor}-{t.id}")
            view["tests"].append(
                {
                    "name": t.name,
                    "description": t.description,
                    "rule": t.rule,
                    "result": t.result,
                    "failure": t.failure,
                    "exchange": _shown(t.failure.exchange) if t.failure else None,
                    "warnings": t.warnings,
                    "anchor": tanchor,
                }
            )
            s[result] += 1
            totals[result] += 1
            totals["tests"] += 1
            if result == "fail" and not r.setup_failure:
                failures.append(
                    {"suite": r.suite, "script": r.title, "test": t.name, "rule": t.rule, "anchor": tanchor}
                )
        if r.not_applicable:
            s["skip"] += 1
            totals["skip"] += 1
        s["results"].append(view)
    for s in suites.values():
        s["result"] = (
            "fail" if any(v["result"] == "fail" for v in s["results"]) else ("pass" if s["pass"] else "skip")
        )
    failed = any(r.result == "fail" for r in results)
    return env.from_string(TEMPLATE).render(
        results=results,
        suites=list(suites.values()),
        failures=failures,
        totals=totals,
        failed=failed,
        status_word="FAIL" if failed else "PASS",
        base_url=results[0].base_url if results else "",
        issued=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _anchor(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def _shown(ex: Exchange | None) -> dict[str, str] | None:
    if ex is None:
        return None
    req = [f"{ex.method} {ex.url}"]
    for k, v in ex.request_headers.items():
        req.append(f"{k}: {redact(k, v)}")
    if ex.request_body:
        req += ["", _body(ex.request_body)]
    if ex.error:
        resp = [f"no response: {ex.error}"]
    else:
        resp = [f"HTTP {ex.status}"]
        resp += [f"{k}: {ex.response_headers[k]}" for k in SHOWN_HEADERS if k in ex.response_headers]
        if ex.response_body:
            resp += ["", _body(ex.response_body)]
    return {"request": "\n".join(req), "response": "\n".join(resp)}


def redact(name: str, value: str) -> str:
    """Tokens stay out of reports: enough to tell them apart, never enough to use."""
    if name.lower() != "authorization":
        return value
    scheme, _, token = value.partition(" ")
    return f"{scheme} {token[:10]}... (redacted)" if len(token) > 10 else value


def _body(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    if len(text) > BODY_LIMIT:
        text = text[:BODY_LIMIT] + f"\n... ({len(text) - BODY_LIMIT} more characters)"
    return text
