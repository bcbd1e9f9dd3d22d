"""Search: FHIR query parameters -> SQL over the index tables, keyset paging, includes.

Every page is filled through the disclosure gate before paging: rows the requester may
not see are skipped, so pages are full, cursors stable and totals count only what is
disclosed (rule 8). Cursors are opaque keyset positions, never OFFSETs.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from carebridge.server.catalog import RESOURCE_TYPES, RESULT_PARAMS, ResourceType, SearchParam
from carebridge.server.db import Conn
from carebridge.server.disclosure import Gate
from carebridge.server.errors import FhirError
from carebridge.server.indexing import normalise_string
from carebridge.server.instants import date_range
from carebridge.server.store import COLUMNS, Row, row_from

DEFAULT_COUNT = 20
MAX_COUNT = 1000
DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")
SUMMARY_ELEMENTS = frozenset(
    {
        "resourceType",
        "id",
        "meta",
        "implicitRules",
        "identifier",
        "status",
        "intent",
        "category",
        "code",
        "subject",
        "patient",
        "for",
        "period",
        "name",
        "birthDate",
        "gender",
        "active",
        "managingOrganization",
        "partOf",
        "title",
        "lifecycleStatus",
        "owner",
        "requester",
        "focus",
        "authoredOn",
        "dateTime",
        "scope",
        "occurrenceDateTime",
        "relationship",
        "executionPeriod",
        "businessStatus",
        "criteria",
        "channel",
    }
)
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


@dataclass
class Filter:
    param: SearchParam
    modifier: str | None
    values: list[str]


@dataclass
class Query:
    rtype: str
    filters: list[Filter] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param, descending)
    include: list[tuple[str, str, str | None]] = field(default_factory=list)
    revinclude: list[tuple[str, str, str | None]] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] | None = None
    total: bool = False
    cursor: list[Any] | None = None
    # Parameters to repeat in paging links (everything but _cursor).
    echo: list[tuple[str, str]] = field(default_factory=list)


def parse(rtype: str, params: list[tuple[str, str]], *, lenient: bool = False) -> Query:
    rt = RESOURCE_TYPES[rtype]
    q = Query(rtype)
    for name, value in params:
        if name != "_cursor":
            q.echo.append((name, value))
        base, _, modifier = name.partition(":")
        if base in RESULT_PARAMS:
            _result_param(q, rt, base, modifier, value)
            continue
        if "." in base:
            if lenient:
                continue
            raise FhirError(400, f"chained search ({name}) is not supported; search in two steps")
        param = rt.param(base)
        if param is None:
            if lenient:
                continue
            known = ", ".join(p.name for p in rt.all_params())
            raise FhirError(
                400,
                f"unknown search parameter '{base}' for {rtype}; known parameters are: {known} "
                "(or send Prefer: handling=lenient to ignore unknown ones)",
            )
        if value == "":
            continue
        _check_modifier(param, modifier or None, name)
        values = [v for v in _split_values(value)]
        for v in values:
            _check_value(param, modifier or None, v, name)
        q.filters.append(Filter(param, modifier or None, values))
    return q


def _split_values(value: str) -> list[str]:
    # Commas separate OR-ed values; a backslash escapes a literal comma.
    out, cur, esc = [], [], False
    for ch in value:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [v for v in out if v != ""]


def _check_modifier(param: SearchParam, modifier: str | None, name: str) -> None:
    allowed = {
        "token": {None, "not", "missing"},
        "reference": {None, "missing"} | set(RESOURCE_TYPES),
        "date": {None, "missing"},
        "string": {None, "exact", "contains", "missing"},
        "uri": {None, "missing", "below"},
    }[param.type]
    if modifier not in allowed:
        raise FhirError(400, f"the modifier ':{modifier}' is not supported on {name}")


def _check_value(param: SearchParam, modifier: str | None, value: str, name: str) -> None:
    if modifier == "missing":
        if value not in ("true", "false"):
            raise FhirError(400, f"{name} takes true or false")
        return
    if param.type == "date":
        prefix = value[:2] if value[:2] in DATE_PREFIXES else ""
        if date_range(value[len(prefix) :]) is None:
            raise FhirError(
                400,
                f"'{value}' is not a valid date for {name}: use YYYY, YYYY-MM, YYYY-MM-DD or a "
                "full dateTime, optionally prefixed with eq, ne, lt, gt, le, ge, sa, eb or ap",
            )


def _result_param(q: Query, rt: ResourceType, name: str, modifier: str, value: str) -> None:
    if name == "_count":
        try:
            n = int(value)
        except ValueError:
            raise FhirError(400, f"_count must be a whole number, not '{value}'") from None
        if n < 0:
            raise FhirError(400, "_count must not be negative")
        q.count = min(n, MAX_COUNT)
    elif name == "_sort":
        for key in value.split(","):
            desc = key.startswith("-")
            pname = key.lstrip("-")
            param = rt.param(pname)
            if param is None or param.type not in ("date", "string", "token", "uri"):
                raise FhirError(400, f"cannot sort {rt.name} by '{pname}'")
            q.sort.append((pname, desc))
    elif name in ("_include", "_revinclude"):
        parts = value.split(":")
        if len(parts) not in (2, 3) or parts[0] not in RESOURCE_TYPES:
            raise FhirError(400, f"{name}={value} must look like Type:parameter[:TargetType]")
        source = RESOURCE_TYPES[parts[0]]
        p = source.param(parts[1])
        if p is None or p.type != "reference":
            raise FhirError(400, f"{name}={value}: {parts[1]} is not a reference parameter of {parts[0]}")
        target = parts[2] if len(parts) == 3 else None
        (q.include if name == "_include" else q.revinclude).append((parts[0], parts[1], target))
    elif name == "_summary":
        if value not in ("true", "false", "count", "data", "text"):
            raise FhirError(400, "_summary must be true, false, count, data or text")
        q.summary = None if value == "false" else value
        if value == "count":
            q.total = True
    elif name == "_elements":
        q.elements = [e.strip() for e in value.split(",") if e.strip()]
    elif name == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise FhirError(400, "_total must be none, estimate or accurate")
        q.total = value != "none"
    elif name == "_cursor":
        try:
            q.cursor = orjson.loads(base64.urlsafe_b64decode(value.encode() + b"=="))
            # Every sort key is text (ids, codes, instants): anything else is not our cursor.
            if not isinstance(q.cursor, list) or not all(isinstance(k, str) for k in q.cursor):
                raise ValueError
        except Exception:
            raise FhirError(
                400, "the paging cursor is not one this server made: start the search again"
            ) from None


# -- SQL ------------------------------------------------------------------------------
def _filter_sql(f: Filter, rtype: str) -> tuple[str, list[Any]]:
    p = f.param
    if f.modifier == "missing":
        table = {"token": "idx_token", "reference": "idx_ref", "date": "idx_date"}.get(p.type, "idx_string")
        sub = f"SELECT id FROM {table} WHERE type = ? AND param = ?"
        op = "NOT IN" if f.values[0] == "true" else "IN"
        return f"r.id {op} ({sub})", [rtype, p.name]
    if p.name == "_id":
        marks = ",".join("?" * len(f.values))
        return f"r.id IN ({marks})", list(f.values)
    if p.name == "_lastUpdated":
        ors, args = [], []
        for v in f.values:
            cond, a = _date_cond(v, "r.last_updated", "r.last_updated")
            ors.append(cond)
            # Rows keep last_updated as a FHIR instant ("...SS.mmmZ", instants.now_instant):
            # compare like with like, or an instant would not equal itself.
            args += [bound[:23] + "Z" for bound in a]
        return "(" + " OR ".join(ors) + ")", args
    ors, args = [], []
    if p.type == "token":
        for v in f.values:
            if "|" in v:
                system, _, code = v.partition("|")
                if system and code:
                    ors.append("(system = ? AND code = ?)")
                    args += [system, code]
                elif code:
                    ors.append("(system IS NULL AND code = ?)")
                    args.append(code)
                else:
                    ors.append("system = ?")
                    args.append(system)
            else:
                ors.append("code = ?")
                args.append(v)
        sub = f"SELECT id FROM idx_token WHERE type = ? AND param = ? AND ({' OR '.join(ors)})"
        op = "NOT IN" if f.modifier == "not" else "IN"
        return f"r.id {op} ({sub})", [rtype, p.name, *args]
    if p.type == "reference":
        for v in f.values:
            for target in _reference_values(p, f.modifier, v):
                ors.append("target = ?")
                args.append(target)
        sub = f"SELECT id FROM idx_ref WHERE type = ? AND param = ? AND ({' OR '.join(ors)})"
        return f"r.id IN ({sub})", [rtype, p.name, *args]
    if p.type == "date":
        for v in f.values:
            cond, a = _date_cond(v, "low", "high")
            ors.append(cond)
            args += a
        sub = f"SELECT id FROM idx_date WHERE type = ? AND param = ? AND ({' OR '.join(ors)})"
        return f"r.id IN ({sub})", [rtype, p.name, *args]
    # string and uri
    for v in f.values:
        if p.type == "uri":
            ors.append("value = ?")
            args.append(v)
        elif f.modifier == "exact":
            ors.append("value = ?")
            args.append(normalise_string(v))
        elif f.modifier == "contains":
            ors.append("value LIKE ? ESCAPE '!'")
            args.append("%" + _like(normalise_string(v)) + "%")
        else:
            ors.append("value LIKE ? ESCAPE '!'")
            args.append(_like(normalise_string(v)) + "%")
    sub = f"SELECT id FROM idx_string WHERE type = ? AND param = ? AND ({' OR '.join(ors)})"
    return f"r.id IN ({sub})", [rtype, p.name, *args]


def _like(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _reference_values(p: SearchParam, modifier: str | None, value: str) -> list[str]:
    if modifier in RESOURCE_TYPES:
        return [f"{modifier}/{value.split('/')[-1]}"]
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2:
        return [f"{parts[-2]}/{parts[-1]}"]
    targets = p.targets or ("Patient",)
    return [f"{t}/{value}" for t in targets]


def _date_cond(value: str, low_col: str, high_col: str) -> tuple[str, list[Any]]:
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in DATE_PREFIXES else value
    rng = date_range(text)
    assert rng is not None  # checked when parsed
    low, high = rng
    return {
        "eq": (f"({low_col} >= ? AND {high_col} <= ?)", [low, high]),
        "ap": (f"({low_col} <= ? AND {high_col} >= ?)", [high, low]),
        "ne": (f"NOT ({low_col} >= ? AND {high_col} <= ?)", [low, high]),
        "lt": (f"{low_col} < ?", [low]),
        "le": (f"{low_col} <= ?", [high]),
        "gt": (f"{high_col} > ?", [high]),
        "ge": (f"{high_col} >= ?", [low]),
        "sa": (f"{low_col} > ?", [high]),
        "eb": (f"{high_col} < ?", [low]),
    }[prefix]


def _sort_exprs(q: Query) -> list[tuple[str, bool]]:
    rt = RESOURCE_TYPES[q.rtype]
    exprs: list[tuple[str, bool]] = []
    for name, desc in q.sort:
        p = rt.param(name)
        assert p is not None
        if name == "_id":
            exprs.append(("r.id", desc))
            continue
        if name == "_lastUpdated":
            exprs.append(("r.last_updated", desc))
            continue
        table, col = {"date": ("idx_date", "low"), "token": ("idx_token", "code")}.get(
            p.type, ("idx_string", "value")
        )
        agg = "MAX" if desc else "MIN"
        exprs.append(
            (
                f"COALESCE((SELECT {agg}(s.{col}) FROM {table} s WHERE s.type = r.type "
                f"AND s.id = r.id AND s.param = '{p.name}'), '')",
                desc,
            )
        )
    if not any(e == "r.id" for e, _ in exprs):
        exprs.append(("r.id", False))
    return exprs


def _keyset(exprs: list[tuple[str, bool]], cursor: list[Any]) -> tuple[str, list[Any]]:
    """Rows strictly after the cursor in the sort order."""
    if len(cursor) != len(exprs):
        raise FhirError(400, "the paging cursor does not fit this search: start the search again")
    ors, args = [], []
    for i, (expr, desc) in enumerate(exprs):
        conds = []
        for j in range(i):
            conds.append(f"{exprs[j][0]} = ?")
            args.append(cursor[j])
        conds.append(f"{expr} {'<' if desc else '>'} ?")
        args.append(cursor[i])
        ors.append("(" + " AND ".join(conds) + ")")
    return "(" + " OR ".join(ors) + ")", args


def matches_sql(q: Query) -> tuple[str, list[Any], list[tuple[str, bool]]]:
    where = ["r.type = ?", "r.deleted = 0"]
    args: list[Any] = [q.rtype]
    for f in q.filters:
        cond, a = _filter_sql(f, q.rtype)
        where.append(cond)
        args += a
    exprs = _sort_exprs(q)
    return " AND ".join(where), args, exprs


def iter_matches(
    c: Conn, q: Query, *, after: list[Any] | None, batch: int
) -> Iterator[tuple[Row, list[Any]]]:
    """Matching rows in sort order from `after`, fetched in batches (keyset)."""
    where, args, exprs = matches_sql(q)
    key_cols = ", ".join(f"{e} AS k{i}" for i, (e, _) in enumerate(exprs))
    order = ", ".join(f"k{i} {'DESC' if d else 'ASC'}" for i, (_, d) in enumerate(exprs))
    position = after
    while True:
        cond, cargs = ("", [])
        if position is not None:
            ks, kargs = _keyset(exprs, position)
            cond, cargs = " AND " + ks, kargs
        sql = (
            f"SELECT {', '.join('r.' + c.strip() for c in COLUMNS.split(','))}, {key_cols} "
            f"FROM resource r WHERE {where}{cond} ORDER BY {order} LIMIT ?"
        )
        rows = c.all(sql, [*args, *cargs, batch])
        for t in rows:
            key = list(t[8:])
            yield row_from(t[:8]), key
            position = key
        if len(rows) < batch:
            return
        batch = min(batch * 2, 2000)


@dataclass
class Page:
    entries: list[tuple[Row, bytes]]
    next_cursor: str | None
    total: int | None
    included: list[tuple[Row, bytes]]


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def run(gate: Gate, q: Query) -> Page:
    total = None
    if q.total:
        total = sum(1 for row, _ in iter_matches(gate.conn, q, after=None, batch=500) if gate.permits(row))
    entries: list[tuple[Row, bytes]] = []
    next_cursor = None
    last_key: list[Any] = []
    if q.summary != "count" and q.count > 0:
        for row, key in iter_matches(gate.conn, q, after=q.cursor, batch=q.count + 1):
            if len(entries) == q.count:
                # One more disclosed row exists: the page ends at the last one kept.
                if gate.permits(row):
                    next_cursor = encode_cursor(last_key)
                    break
                continue
            body = gate.disclose(row)
            if body is not None:
                entries.append((row, shape(body, q)))
                last_key = key
    included = includes(gate, q, [r for r, _ in entries]) if entries else []
    return Page(entries, next_cursor, total, included)


def shape(body: bytes, q: Query) -> bytes:
    """Apply _summary / _elements to a disclosed body."""
    if q.elements is None and q.summary not in ("true", "text", "data"):
        return body
    resource = orjson.loads(body)
    if q.elements is not None:
        keep = {"resourceType", "id", "meta", *q.elements}
    elif q.summary == "text":
        keep = {"resourceType", "id", "meta", "text"}
    elif q.summary == "data":
        keep = set(resource) - {"text"}
    else:
        keep = SUMMARY_ELEMENTS
    out = {k: v for k, v in resource.items() if k in keep}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), SUBSETTED]
    out["meta"] = meta
    return orjson.dumps(out)


def includes(gate: Gate, q: Query, page: list[Row]) -> list[tuple[Row, bytes]]:
    out: list[tuple[Row, bytes]] = []
    seen = {r.ref for r in page}
    c = gate.conn
    for source, pname, target_type in q.include:
        ids = [r.id for r in page if r.type == source]
        if not ids:
            continue
        marks = ",".join("?" * len(ids))
        targets = c.all(
            f"SELECT DISTINCT target FROM idx_ref WHERE type = ? AND param = ? AND id IN ({marks}) "
            "ORDER BY target",  # the same answer, in the same order, on either backend
            [source, pname, *ids],
        )
        for (target,) in targets:
            ttype, _, tid = target.partition("/")
            if target in seen or (target_type and ttype != target_type):
                continue
            t = c.one(f"SELECT {COLUMNS} FROM resource WHERE type = ? AND id = ?", (ttype, tid))
            if t:
                row = row_from(t)
                body = gate.disclose(row)
                if body is not None:
                    seen.add(target)
                    out.append((row, body))
    for source, pname, target_type in q.revinclude:
        refs = [r.ref for r in page if target_type is None or r.type == target_type]
        if not refs:
            continue
        marks = ",".join("?" * len(refs))
        rows = c.all(
            f"SELECT {', '.join('r.' + x.strip() for x in COLUMNS.split(','))} FROM resource r "
            f"WHERE r.type = ? AND r.deleted = 0 AND r.id IN (SELECT id FROM idx_ref WHERE type = ? "
            f"AND param = ? AND target IN ({marks})) ORDER BY r.id",
            [source, source, pname, *refs],
        )
        for t in rows:
            row = row_from(t)
            if row.ref in seen:
                continue
            body = gate.disclose(row)
            if body is not None:
                seen.add(row.ref)
                out.append((row, body))
    return out
