"""Write the three reports of a run into one directory."""

from __future__ import annotations

import json
from pathlib import Path

from carebridge.conformance.report_html import html
from carebridge.conformance.report_json import bundle
from carebridge.conformance.report_junit import junit
from carebridge.conformance.results import ScriptResult


def write_reports(results: list[ScriptResult], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = [directory / "report.html", directory / "junit.xml", directory / "testreport.json"]
    out[0].write_text(html(results), encoding="utf-8")
    out[1].write_bytes(junit(results))
    out[2].write_text(json.dumps(bundle(results), indent=2, ensure_ascii=False), encoding="utf-8")
    return out
