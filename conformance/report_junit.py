"""junit.xml for CI systems: a testsuite per script, a testcase per test."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from carebridge.conformance.results import ScriptResult


def junit(results: list[ScriptResult]) -> bytes:
    root = ET.Element("testsuites", name="carebridge conformance")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for r in results:
        suite = ET.SubElement(root, "testsuite", name=f"{r.suite}/{r.id}")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        cases = r.tests or []
        if r.not_applicable or not cases:
            case = ET.SubElement(suite, "testcase", classname=f"{r.suite}.{r.id}", name=r.title)
            counts["tests"] += 1
            if r.not_applicable:
                ET.SubElement(case, "skipped", message=f"not applicable: {r.not_applicable}")
                counts["skipped"] += 1
        setup_failure = r.setup_failure
        if setup_failure and not r.not_applicable:
            case = ET.SubElement(suite, "testcase", classname=f"{r.suite}.{r.id}", name="setup")
            counts["tests"] += 1
            el = ET.SubElement(
                case,
                "error" if setup_failure.result == "error" else "failure",
                message=f"{setup_failure.description}: {setup_failure.message}",
            )
            el.text = _exchange_text(setup_failure)
            counts["errors" if setup_failure.result == "error" else "failures"] += 1
        for t in cases if not r.not_applicable else []:
            name = f"{t.id}: {t.name}" if t.id != t.name else t.name
            case = ET.SubElement(suite, "testcase", classname=f"{r.suite}.{r.id}", name=name)
            counts["tests"] += 1
            f = t.failure
            if t.result == "skip":
                ET.SubElement(case, "skipped", message=t.actions[0].message if t.actions else "skipped")
                counts["skipped"] += 1
            elif f is not None:
                tag = "error" if f.result == "error" else "failure"
                rule = f" [{t.rule}]" if t.rule else ""
                el = ET.SubElement(case, tag, message=f"{f.description}: {f.message}{rule}")
                el.text = _exchange_text(f)
                counts["errors" if tag == "error" else "failures"] += 1
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _exchange_text(a: object) -> str:
    ex = getattr(a, "exchange", None)
    if ex is None:
        return ""
    body = (ex.response_body or b"")[:2000].decode("utf-8", "replace")
    return f"{ex.method} {ex.url}\n-> {ex.status or ex.error}\n{body}"
