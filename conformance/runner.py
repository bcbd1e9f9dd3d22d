"""Run a selection of suites (and extra TestScript files) and collect their results."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from carebridge.conformance import suites
from carebridge.conformance.engine import Engine
from carebridge.conformance.results import ScriptResult


@dataclass(frozen=True)
class Item:
    suite: str
    path: Path


def select(names: Iterable[str] | None = None, extra: Iterable[Path] = ()) -> list[Item]:
    """Items for the named suites (all when `names` is None), then any extra script files."""
    chosen = suites.names() if names is None else list(names)
    items = [Item(name, path) for name in chosen for path in suites.scripts(name)]
    items += [Item("extra", Path(p)) for p in extra]
    return items


def run(
    engine: Engine,
    items: list[Item],
    on_result: Callable[[ScriptResult], None] | None = None,
) -> list[ScriptResult]:
    results = []
    for item in items:
        result = engine.run(suites.load(item.path), suite=item.suite, path=item.path)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def failed(results: list[ScriptResult]) -> bool:
    return any(r.result == "fail" for r in results)
