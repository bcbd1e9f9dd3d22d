"""TestScript asserts: each looks at one response (or request, or fixture) and passes,
fails, or with `warningOnly` warns. The message says what was expected and found."""

from __future__ import annotations

from carebridge.conformance.compare import OperatorError, check, contains_minimum
from carebridge.conformance.context import RunContext
from carebridge.conformance.exchange import Exchange
from carebridge.conformance.fhirpath import ExpressionError, evaluate, from_path, text
from carebridge.conformance.operations import mime
from carebridge.conformance.results import ActionResult
from carebridge.conformance.variables import UnresolvedVariable

RESPONSE_CODES = {
    "okay": 200,
    "created": 201,
    "noContent": 204,
    "notModified": 304,
    "bad": 400,
    "forbidden": 403,
    "notFound": 404,
    "methodNotAllowed": 405,
    "conflict": 409,
    "gone": 410,
    "preconditionFailed": 412,
    "unprocessable": 422,
}
BASE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"
OPERATOR_WORDS = {
    "equals": "",
    "notEquals": "not",
    "in": "one of",
    "notIn": "none of",
    "greaterThan": "more than",
    "lessThan": "less than",
    "empty": "empty",
    "notEmpty": "present",
    "contains": "containing",
    "notContains": "not containing",
}


class AssertError(Exception):
    """An assert that cannot be evaluated (as opposed to one that fails)."""


def evaluate_assert(a: dict, ctx: RunContext) -> ActionResult:
    description = a.get("description") or a.get("label") or _describe(a)
    try:
        passed, message, exchange = _evaluate(a, ctx)
    except (AssertError, OperatorError, ExpressionError, UnresolvedVariable) as exc:
        return ActionResult("assert", "error", str(exc), description, ctx.last)
    result = "pass" if passed else "warning" if a.get("warningOnly") else "fail"
    return ActionResult("assert", result, message, description, exchange)


def _describe(a: dict) -> str:
    keys = [k for k in a if k not in ("warningOnly", "direction", "extension")]
    return "assert " + ", ".join(f"{k}={a[k]}" for k in keys)


def _evaluate(a: dict, ctx: RunContext) -> tuple[bool, str, Exchange | None]:
    v = ctx.vars
    value = v.substitute(a["value"]) if a.get("value") is not None else None
    request_side = a.get("direction") == "request"
    source = ctx.source(a.get("sourceId"))
    if source is None:
        raise AssertError(f"nothing to check: {a.get('sourceId') or 'no request has been sent yet'}")
    ex = source if isinstance(source, Exchange) else None
    if ex is not None and ex.error and not request_side:
        return False, f"no response: {ex.error}", ex

    if a.get("compareToSourceId"):
        other = ctx.source(a["compareToSourceId"])
        if other is None:
            raise AssertError(f"compareToSourceId {a['compareToSourceId']} is no fixture or response")
        theirs = _expression(a, "compareToSourceExpression", "compareToSourcePath")
        if theirs is None:
            raise AssertError("compareToSourceId needs compareToSourceExpression or compareToSourcePath")
        theirs = v.substitute(theirs)
        mine = v.substitute(_expression(a, "expression", "path") or theirs)
        expected = evaluate(other.resource, theirs)
        if not expected:
            return False, f"{theirs} found nothing in {a['compareToSourceId']}", ex
        actual = evaluate(source.resource, mine)
        return _check(a.get("operator") or "equals", actual, text(expected[0]), mine, ex)

    expression = _expression(a, "expression", "path")
    if expression is not None:
        expression = v.substitute(expression)
        actual = evaluate(source.resource, expression)
        operator = a.get("operator") or ("equals" if value is not None else "eval")
        if operator == "eval" and actual not in ([True], [False]) and value is None:
            return False, f"{expression} should be true; it gave {actual!r}", ex
        return _check(operator, actual, value, expression, ex)

    if ex is None:
        raise AssertError("this assert checks an HTTP exchange, but its source is a static fixture")
    if a.get("headerField"):
        found = ex.header(a["headerField"], request=request_side)
        operator = a.get("operator") or ("equals" if value is not None else "notEmpty")
        return _check(operator, [] if found is None else [found], value, f"header {a['headerField']}", ex)
    if a.get("response"):
        code = RESPONSE_CODES.get(a["response"])
        if code is None:
            raise AssertError(f"unknown response code name {a['response']!r}")
        return _check(a.get("operator") or "equals", [str(ex.status)], str(code), "HTTP status", ex)
    if a.get("responseCode"):
        return _check(a.get("operator") or "equals", [str(ex.status)], a["responseCode"], "HTTP status", ex)
    if a.get("resource"):
        rtype = (ex.resource or {}).get("resourceType")
        found = [rtype] if rtype else []
        return _check(a.get("operator") or "equals", found, a["resource"], "resource type", ex)
    if a.get("contentType"):
        return _content_type(a, ex)
    if a.get("requestURL"):
        return _check(
            a.get("operator") or "equals", [ex.url], v.substitute(a["requestURL"]), "request URL", ex
        )
    if a.get("requestMethod"):
        return _check(
            a.get("operator") or "equals",
            [ex.method.lower()],
            a["requestMethod"].lower(),
            "request method",
            ex,
        )
    if a.get("navigationLinks") is not None:
        return _navigation(a, ex)
    if a.get("minimumId"):
        return _minimum(a, ex, ctx)
    if a.get("validateProfileId"):
        return _profile(a, ex, ctx)
    if a.get("operator") in ("empty", "notEmpty"):
        return _check(a["operator"], [ex.response_body.decode("utf-8", "replace")], None, "response body", ex)
    raise AssertError("this assert says nothing to check")


def _expression(a: dict, expression_key: str, path_key: str) -> str | None:
    if a.get(expression_key):
        return a[expression_key]
    if a.get(path_key):
        return from_path(a[path_key])
    return None


def _check(
    operator: str, actual: list, expected: str | None, what: str, ex: Exchange | None
) -> tuple[bool, str, Exchange | None]:
    passed, found = check(operator, actual, expected)
    if operator == "eval":
        return passed, f"{what}: {'true' if passed else 'expected true'} (found {found})", ex
    wanted = OPERATOR_WORDS.get(operator, operator)
    if expected is not None and operator not in ("empty", "notEmpty"):
        wanted += f" {expected!r}"
    return passed, f"{what}: {'' if passed else 'expected '}{wanted.strip()} (found {found})", ex


def _content_type(a: dict, ex: Exchange) -> tuple[bool, str, Exchange]:
    code = a["contentType"]
    want = mime(code) or code
    media = ex.media_type
    same = code in media.split("/")[-1].split("+") if code in ("json", "xml") else media == want
    passed = same if (a.get("operator") or "equals") == "equals" else not same
    verb = "is" if passed else "should be"
    return passed, f"Content-Type {verb} {want} (found {media or 'none'})", ex


def _navigation(a: dict, ex: Exchange) -> tuple[bool, str, Exchange]:
    if not a["navigationLinks"]:
        return True, "navigation links not checked", ex
    bundle = ex.resource or {}
    if bundle.get("resourceType") != "Bundle":
        return False, "navigation links: the response is not a Bundle", ex
    links = {link.get("relation"): link.get("url") or "" for link in bundle.get("link") or []}
    problems = []
    if "self" not in links:
        problems.append("no self link")
    problems += [
        f"{rel} link {url!r} is not an absolute URL"
        for rel, url in links.items()
        if not url.startswith(("http://", "https://"))
    ]
    matches = [
        e for e in bundle.get("entry") or [] if (e.get("search") or {}).get("mode", "match") == "match"
    ]
    total = bundle.get("total")
    if isinstance(total, int) and total > len(matches) and "next" not in links:
        problems.append(f"total is {total} but only {len(matches)} match(es) came and there is no next link")
    if problems:
        return False, "navigation links: " + "; ".join(problems), ex
    return True, f"navigation links are sound ({', '.join(sorted(links))})", ex


def _minimum(a: dict, ex: Exchange, ctx: RunContext) -> tuple[bool, str, Exchange]:
    minimum = ctx.source(a["minimumId"])
    if minimum is None or minimum.resource is None:
        raise AssertError(f"minimumId {a['minimumId']} is no fixture with a resource")
    missing = contains_minimum(ex.resource or {}, minimum.resource)
    if missing:
        shown = "; ".join(missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
        return False, f"the response lacks parts of {a['minimumId']}: {shown}", ex
    return True, f"the response holds everything in {a['minimumId']}", ex


def _profile(a: dict, ex: Exchange, ctx: RunContext) -> tuple[bool, str, Exchange]:
    profiles = {p.get("id"): p.get("reference") for p in ctx.script.get("profile") or []}
    url = profiles.get(a["validateProfileId"])
    if not url:
        raise AssertError(f"validateProfileId {a['validateProfileId']} is not in the script's profiles")
    if not url.startswith(BASE_PROFILE):
        raise AssertError(f"only base FHIR R4 profiles are validated by this engine, not {url}")
    rtype = url[len(BASE_PROFILE) :]
    resource = ex.resource or {}
    if resource.get("resourceType") != rtype:
        return (
            False,
            f"the response is a {resource.get('resourceType') or 'non-FHIR body'}, not a {rtype}",
            ex,
        )
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    try:
        get_fhir_model_class(rtype).model_validate(resource)
    except (ValidationError, ValueError, TypeError) as exc:
        return False, f"not a valid FHIR R4 {rtype}: {str(exc).splitlines()[0]}", ex
    return True, f"a valid FHIR R4 {rtype} (base profile)", ex
