"""TestScript assert operators over what an assert found (a list of values).

`equals`, `in`, `greaterThan` and `lessThan` look at the first value (as XPath does
for HL7's examples); `contains` and `empty` look at all of them.
"""

from __future__ import annotations

from typing import Any

from carebridge.conformance.fhirpath import text

OPERATORS = (
    "equals",
    "notEquals",
    "in",
    "notIn",
    "greaterThan",
    "lessThan",
    "empty",
    "notEmpty",
    "contains",
    "notContains",
    "eval",
)


class OperatorError(Exception):
    """An assert that cannot be evaluated as written."""


def check(operator: str, actual: list, expected: str | None) -> tuple[bool, str]:
    """(passed, what was found), for the report."""
    values = [text(v) for v in actual]
    found = _shown(values)
    if operator in ("empty", "notEmpty"):
        empty = all(v == "" for v in values)
        return (empty if operator == "empty" else not empty), found
    if operator == "eval":
        return actual == [True], found
    if expected is None:
        raise OperatorError(f"operator {operator} needs a value to compare with")
    first = values[0] if values else None
    if operator == "equals":
        return first == expected, found
    if operator == "notEquals":
        return first != expected, found
    if operator in ("in", "notIn"):
        options = [o.strip() for o in expected.split(",")]
        inside = first is not None and first in options
        return (inside if operator == "in" else not inside), found
    if operator in ("greaterThan", "lessThan"):
        if first is None:
            return False, found
        a, b = _ordered(first), _ordered(expected)
        try:
            return (a > b if operator == "greaterThan" else a < b), found
        except TypeError:
            raise OperatorError(f"cannot order {first!r} against {expected!r}") from None
    if operator in ("contains", "notContains"):
        hit = any(expected in v for v in values)
        return (hit if operator == "contains" else not hit), found
    raise OperatorError(f"unknown operator {operator!r}; use one of {', '.join(OPERATORS)}")


def _ordered(v: str) -> Any:
    try:
        return float(v)
    except ValueError:
        return v  # ISO dates and instants order as text


def _shown(values: list[str]) -> str:
    if not values:
        return "nothing"
    shown = ", ".join(repr(v) if len(v) < 200 else repr(v[:200] + "...") for v in values[:5])
    return shown + (f" (and {len(values) - 5} more)" if len(values) > 5 else "")


def contains_minimum(actual: Any, minimum: Any) -> list[str]:
    """Where `actual` lacks something `minimum` has ([] = it has all of it).

    Objects must hold each key of the minimum with a value that itself contains the
    minimum's; each item of a minimum list must be contained by some item of the list.
    """
    return _missing(actual, minimum, "")


def _missing(actual: Any, minimum: Any, where: str) -> list[str]:
    if isinstance(minimum, dict):
        if not isinstance(actual, dict):
            return [f"{where or 'resource'}: expected an object"]
        out: list[str] = []
        for k, v in minimum.items():
            if k not in actual:
                out.append(f"{where}.{k}".lstrip(".") + ": missing")
            else:
                out += _missing(actual[k], v, f"{where}.{k}")
        return out
    if isinstance(minimum, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list"]
        out = []
        for i, item in enumerate(minimum):
            if not any(not _missing(a, item, "") for a in actual):
                out.append(f"{where}[{i}]".lstrip(".") + ": no matching item")
        return out
    return [] if actual == minimum else [f"{where.lstrip('.')}: {actual!r} is not {minimum!r}"]
