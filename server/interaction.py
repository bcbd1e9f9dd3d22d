"""FHIR RESTful interactions, independent of HTTP: read, vread, create, update, delete,
history and search. The routes and the batch/transaction processor both call these, so
a Bundle entry behaves exactly like the request it stands for.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson

from carebridge.consent.model import Requester
from carebridge.server import search, store
from carebridge.server.auth import require_scope, unauthorized
from carebridge.server.catalog import NON_RESOURCE_TYPES, READ_ONLY_TYPES, RESOURCE_TYPES
from carebridge.server.db import Conflict, Conn, Database
from carebridge.server.disclosure import Gate, requester_for
from carebridge.server.errors import FhirError, not_found
from carebridge.server.instants import http_date
from carebridge.server.partners import Registry
from carebridge.server.store import Row
from carebridge.server.subscriptions import stamp
from carebridge.server.validate import check_consent_write, validate_resource


@dataclass
class Result:
    """What an interaction produced: a status, maybe a body, and headers."""

    status: int
    body: bytes | dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    row: Row | None = None


@dataclass
class Ctx:
    """One authenticated request: who, with what scopes, against which database."""

    db: Database
    registry: Registry
    requester: Requester
    scope: str
    base_url: str
    prefer_return: str = "representation"
    lenient: bool = False
    gates: list[Gate] = field(default_factory=list)
    _fresh: bool = False

    def fresh(self, conn: Conn, gens: tuple[int, int] | None = None) -> None:
        """Make sure the requester was built from the current registry (rule 10 for partners)."""
        if self._fresh:
            return
        if self.registry.stale(gens if gens is not None else self.registry.generations(conn)):
            r = self.requester
            rebuilt = requester_for(
                conn,
                self.registry,
                r.partner_id,
                practitioner=r.practitioner,
                purpose=r.purpose,
                break_glass_reason=r.break_glass_reason,
                refresh=False,
            )
            if rebuilt is None:
                raise unauthorized(f"partner {r.partner_id} is no longer registered")
            self.requester = rebuilt
        self._fresh = True

    def gate(self, conn: Conn, gens: tuple[int, int] | None = None) -> Gate:
        self.fresh(conn, gens)
        g = Gate(conn, self.registry, self.requester)
        self.gates.append(g)
        return g


def check_type(rtype: str) -> None:
    if rtype not in RESOURCE_TYPES:
        if rtype in NON_RESOURCE_TYPES:
            raise FhirError(405, f"{rtype} is not stored by this server")
        raise FhirError(
            404,
            f"unknown resource type '{rtype}': this server serves {', '.join(sorted(RESOURCE_TYPES))}",
            code="not-supported",
        )


def version_headers(row: Row, base_url: str, *, location: bool = False) -> dict[str, str]:
    h = {"ETag": f'W/"{row.version}"', "Last-Modified": http_date(row.last_updated)}
    if location:
        h["Location"] = f"{base_url}/{row.type}/{row.id}/_history/{row.version}"
    return h


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    try:
        return int(text)
    except ValueError:
        raise FhirError(400, f'If-Match must be an ETag like W/"3", not {value}') from None


def _reading(ctx: Ctx, conn: Conn | None) -> AbstractContextManager[Conn]:
    """A read connection: the caller's (a transaction's reads see its own writes) or a new one."""
    return nullcontext(conn) if conn is not None else ctx.db.read()


# -- reads ----------------------------------------------------------------------------
def _last_live_body(c: Conn, row: Row) -> Row | None:
    t = c.one(
        f"SELECT {store.COLUMNS} FROM history WHERE type = ? AND id = ? AND deleted = 0 "
        "ORDER BY version DESC LIMIT 1",
        (row.type, row.id),
    )
    return store.row_from(t) if t else None


# The row, its patient's consent facts and the registry generations in one query: the
# hot path of every read by id.
READ_SQL = (
    "SELECT r.type, r.id, r.version, r.deleted, r.last_updated, r.patient, r.refs, r.body, "
    "f.managing_org, f.consent_version, "
    "(SELECT value FROM generation WHERE name = 'partner'), "
    "(SELECT value FROM generation WHERE name = 'org') "
    "FROM resource r LEFT JOIN patient_facts f ON f.patient = r.patient "
    "WHERE r.type = ? AND r.id = ?"
)


def read(ctx: Ctx, rtype: str, rid: str, *, conn: Conn | None = None) -> Result:
    check_type(rtype)
    require_scope(ctx.scope, rtype, "read")
    with _reading(ctx, conn) as c:
        t = c.one(READ_SQL, (rtype, rid))
        if t is None:
            raise not_found(rtype, rid)
        row = store.row_from(t[:8])
        gate = ctx.gate(c, (int(t[10]), int(t[11])))
        if row.patient is not None:
            gate.prime(row.patient, t[8], int(t[9] or 0))
        if row.deleted:
            live = _last_live_body(c, row)
            # Only someone who could see it is told it was deleted (410); others get 404.
            if live is not None and gate.permits(live):
                raise FhirError(410, f"{rtype}/{rid} was deleted", headers={"ETag": f'W/"{row.version}"'})
            raise not_found(rtype, rid)
        body = gate.disclose(row)
        if body is None:
            raise not_found(rtype, rid)
        return Result(200, body, version_headers(row, ctx.base_url), row)


def vread(ctx: Ctx, rtype: str, rid: str, vid: str, *, conn: Conn | None = None) -> Result:
    check_type(rtype)
    require_scope(ctx.scope, rtype, "read")
    try:
        n = int(vid)
    except ValueError:
        raise FhirError(400, f"version id must be a number, not '{vid}'") from None
    if not 0 < n < 2**31:  # no such version was ever written (and none fits a database integer)
        raise FhirError(404, f"{rtype}/{rid} has no version {vid}")
    with _reading(ctx, conn) as c:
        gate = ctx.gate(c)
        row = store.version(c, rtype, rid, n)
        if row is None:
            raise FhirError(404, f"{rtype}/{rid} has no version {vid}")
        if row.deleted:
            live = _last_live_body(c, row)
            if live is not None and gate.permits(live):
                raise FhirError(410, f"version {vid} of {rtype}/{rid} is its deletion")
            raise FhirError(404, f"{rtype}/{rid} has no version {vid}")
        body = gate.disclose(row)
        if body is None:
            raise FhirError(404, f"{rtype}/{rid} has no version {vid}")
        return Result(200, body, version_headers(row, ctx.base_url), row)


# -- writes ---------------------------------------------------------------------------
def check_writable(rtype: str) -> None:
    if rtype in READ_ONLY_TYPES:
        raise FhirError(405, f"{rtype} resources are published by carebridge and are read-only")


def _prepare(rtype: str, resource: dict) -> dict:
    check_type(rtype)
    check_writable(rtype)
    if resource.get("resourceType") != rtype:
        raise FhirError(
            400,
            f"the body is a {resource.get('resourceType') or 'resource without resourceType'}, "
            f"but this URL is for {rtype}",
        )
    validate_resource(resource)
    return resource


def _written(ctx: Ctx, c: Conn, row: Row, status: int) -> Result:
    headers = version_headers(row, ctx.base_url, location=True)
    if ctx.prefer_return == "minimal":
        return Result(status, None, headers, row)
    if ctx.prefer_return == "OperationOutcome":
        from carebridge.server.errors import operation_outcome

        verb = "created" if status == 201 else "updated"
        return Result(
            status, operation_outcome(f"{row.type}/{row.id} {verb} (version {row.version})"), headers, row
        )
    body = ctx.gate(c).disclose(row, audit=False)
    return Result(status, body, headers, row)


def _write_rules(ctx: Ctx, c: Conn, resource: dict) -> None:
    """Rules that need the database, checked inside the write's own transaction."""
    if resource["resourceType"] == "Consent":
        check_consent_write(c, resource)
    elif resource["resourceType"] == "Task":
        # Transfers of care move only as their lifecycle allows (issue 6).
        from carebridge.server.task_lifecycle import check_task_write

        check_task_write(ctx, c, resource)


def _visible_for_write(ctx: Ctx, c: Conn, rtype: str, rid: str) -> None:
    """Writers change only what they may see: a hidden resource does not exist for them."""
    row = store.current(c, rtype, rid)
    if row is not None and not row.deleted and not ctx.gate(c).permits(row):
        raise not_found(rtype, rid)


def create(
    ctx: Ctx,
    rtype: str,
    resource: dict,
    *,
    if_none_exist: str | None = None,
    conn: Conn | None = None,
    rid: str | None = None,
) -> Result:
    require_scope(ctx.scope, rtype, "create")
    resource = stamp(ctx.requester, ctx.scope, _prepare(rtype, resource))  # Subscriptions: owned
    if conn is None:
        with ctx.db.write() as c:
            return _create(ctx, c, rtype, resource, if_none_exist, rid)
    return _create(ctx, conn, rtype, resource, if_none_exist, rid)


def _create(
    ctx: Ctx, c: Conn, rtype: str, resource: dict, if_none_exist: str | None, rid: str | None
) -> Result:
    if if_none_exist:
        matches = _conditional_matches(ctx, c, rtype, if_none_exist)
        if len(matches) > 1:
            raise FhirError(
                412, f"If-None-Exist: {if_none_exist} matches {len(matches)} resources; make it specific"
            )
        if matches:
            return _written(ctx, c, matches[0], 200)
    _write_rules(ctx, c, resource)
    row, _ = store.put(c, resource, rid=rid or store.new_id(), method="POST")
    return _written(ctx, c, row, 201)


def update(
    ctx: Ctx, rtype: str, rid: str, resource: dict, *, if_match: int | None = None, conn: Conn | None = None
) -> Result:
    require_scope(ctx.scope, rtype, "update")
    resource = stamp(ctx.requester, ctx.scope, _prepare(rtype, resource))  # Subscriptions: owned
    if resource.get("id") is None:
        raise FhirError(400, f'the body must carry "id": "{rid}" to update {rtype}/{rid}')
    if resource["id"] != rid:
        raise FhirError(400, f"the body's id '{resource['id']}' does not match the URL's id '{rid}'")
    if not _valid_id(rid):
        raise FhirError(400, f"'{rid}' is not a valid FHIR id: 1-64 of A-Z a-z 0-9 - .")

    def run(c: Conn) -> Result:
        _visible_for_write(ctx, c, rtype, rid)
        existing = store.current(c, rtype, rid)
        if existing is None or existing.deleted:
            require_scope(ctx.scope, rtype, "create")
        _write_rules(ctx, c, resource)
        row, created = store.put(c, resource, rid=rid, method="PUT", if_match=if_match)
        return _written(ctx, c, row, 201 if created else 200)

    return _in_txn(ctx, conn, run)


def conditional_update(
    ctx: Ctx,
    rtype: str,
    criteria: list[tuple[str, str]],
    resource: dict,
    *,
    if_match: int | None = None,
    conn: Conn | None = None,
) -> Result:
    require_scope(ctx.scope, rtype, "update")
    resource = stamp(ctx.requester, ctx.scope, _prepare(rtype, resource))  # Subscriptions: owned

    def run(c: Conn) -> Result:
        matches = _search_rows(ctx, c, rtype, criteria)
        if len(matches) > 1:
            raise FhirError(
                412, f"the conditional update matches {len(matches)} {rtype} resources; make it specific"
            )
        if not matches:
            require_scope(ctx.scope, rtype, "create")
            rid = resource.get("id") or store.new_id()
            _visible_for_write(ctx, c, rtype, rid)  # an id in the body must not reach a hidden one
            _write_rules(ctx, c, {**resource, "id": rid})
            row, _ = store.put(c, {**resource, "id": rid}, rid=rid, method="PUT", if_match=if_match)
            return _written(ctx, c, row, 201)
        target = matches[0]
        if resource.get("id") not in (None, target.id):
            raise FhirError(400, f"the body's id '{resource['id']}' is not the matching {rtype}/{target.id}")
        _write_rules(ctx, c, {**resource, "id": target.id})
        row, _ = store.put(c, {**resource, "id": target.id}, rid=target.id, method="PUT", if_match=if_match)
        return _written(ctx, c, row, 200)

    return _in_txn(ctx, conn, run)


def delete(
    ctx: Ctx, rtype: str, rid: str, *, if_match: int | None = None, conn: Conn | None = None
) -> Result:
    check_type(rtype)
    check_writable(rtype)
    require_scope(ctx.scope, rtype, "delete")

    def run(c: Conn) -> Result:
        _visible_for_write(ctx, c, rtype, rid)
        if rtype == "Task":
            from carebridge.server.task_lifecycle import check_task_delete

            check_task_delete(c, rid)
        row = store.delete(c, rtype, rid, if_match=if_match)
        from carebridge.server.errors import operation_outcome

        if row is None:
            return Result(200, operation_outcome(f"{rtype}/{rid} did not exist; nothing deleted"))
        return Result(200, operation_outcome(f"{rtype}/{rid} deleted"), {"ETag": f'W/"{row.version}"'}, row)

    return _in_txn(ctx, conn, run)


def _in_txn(ctx: Ctx, conn: Conn | None, run: Any) -> Result:
    if conn is not None:
        return run(conn)
    try:
        with ctx.db.write() as c:
            return run(c)
    except Conflict:
        raise FhirError(
            409, "another change to this resource was committed at the same time; read it and retry"
        ) from None


def _valid_id(rid: str) -> bool:
    return 0 < len(rid) <= 64 and all(ch.isascii() and (ch.isalnum() or ch in "-.") for ch in rid)


def _search_rows(ctx: Ctx, c: Conn, rtype: str, criteria: list[tuple[str, str]]) -> list[Row]:
    q = search.parse(rtype, criteria)
    if not q.filters:
        raise FhirError(400, "a conditional request needs at least one search criterion")
    # Only what the requester may see can match: a hidden resource does not exist for
    # them (rule 8), so it neither blocks a create nor is changed, nor is its id told.
    gate = ctx.gate(c)
    visible = (row for row, _ in search.iter_matches(c, q, after=None, batch=3) if gate.permits(row))
    return list(islice(visible, 3))


def _conditional_matches(ctx: Ctx, c: Conn, rtype: str, query: str) -> list[Row]:
    from urllib.parse import parse_qsl

    criteria = parse_qsl(query.split("?", 1)[-1], keep_blank_values=True)
    return _search_rows(ctx, c, rtype, criteria)


# -- search and history ---------------------------------------------------------------
def search_type(
    ctx: Ctx, rtype: str, params: list[tuple[str, str]], self_url: str, *, conn: Conn | None = None
) -> Result:
    check_type(rtype)
    require_scope(ctx.scope, rtype, "search")
    q = search.parse(rtype, params, lenient=ctx.lenient)
    for source, _, _ in q.include + q.revinclude:
        require_scope(ctx.scope, source, "search")
    with _reading(ctx, conn) as c:
        page = search.run(ctx.gate(c), q)
    return Result(200, searchset(ctx, rtype, q, page, self_url))


def _entry(base_url: str, row: Row, body: bytes, extra: bytes) -> bytes:
    url = orjson.dumps(f"{base_url}/{row.type}/{row.id}")
    return b'{"fullUrl":' + url + b',"resource":' + body + extra + b"}"


def searchset(ctx: Ctx, rtype: str, q: search.Query, page: search.Page, self_url: str) -> bytes:
    from urllib.parse import urlencode

    links = [{"relation": "self", "url": self_url}]
    if page.next_cursor:
        query = urlencode([*q.echo, ("_cursor", page.next_cursor)])
        links.append({"relation": "next", "url": f"{ctx.base_url}/{rtype}?{query}"})
    head: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        head["total"] = page.total
    head["link"] = links
    match = b',"search":{"mode":"match"}'
    include = b',"search":{"mode":"include"}'
    entries = [_entry(ctx.base_url, r, b, match) for r, b in page.entries]
    entries += [_entry(ctx.base_url, r, b, include) for r, b in page.included]
    out = orjson.dumps(head)
    if entries:
        out = out[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
    return out


def history(
    ctx: Ctx,
    rtype: str,
    rid: str | None,
    params: list[tuple[str, str]],
    self_url: str,
    *,
    conn: Conn | None = None,
) -> Result:
    check_type(rtype)
    require_scope(ctx.scope, rtype, "read")
    count, cursor, since = search.DEFAULT_COUNT, None, None
    for name, value in params:
        if name == "_count":
            try:
                count = max(1, min(int(value), search.MAX_COUNT))
            except ValueError:
                raise FhirError(400, f"_count must be a whole number, not '{value}'") from None
        elif name == "_cursor":
            try:
                cursor = int(value)
                if not 0 < cursor < 2**63:
                    raise ValueError
            except ValueError:
                raise FhirError(400, "the paging cursor is not one this server made") from None
        elif name == "_since":
            from carebridge.server.instants import date_range

            rng = date_range(value)
            if rng is None:
                raise FhirError(400, f"_since must be an instant, not '{value}'")
            since = rng[0]
        elif name in ("_format", "_pretty"):
            continue
        elif not ctx.lenient:
            raise FhirError(400, f"history does not take the parameter '{name}'; use _count, _since")
    where, args = "type = ?", [rtype]
    if rid is not None:
        where += " AND id = ?"
        args.append(rid)
    if since:
        where += " AND last_updated >= ?"
        args.append(since)
    entries: list[bytes] = []
    next_cursor = None
    with _reading(ctx, conn) as c:
        gate = ctx.gate(c)
        if rid is not None and store.current(c, rtype, rid) is None:
            raise not_found(rtype, rid)
        position = cursor
        last_seq: int | None = None
        done = False
        while not done:
            cond = where + (" AND seq < ?" if position is not None else "")
            rows = c.all(
                f"SELECT seq, {store.COLUMNS}, method FROM history WHERE {cond} ORDER BY seq DESC LIMIT ?",
                [*args, *([position] if position is not None else []), count + 1],
            )
            for t in rows:
                seq, row, method = t[0], store.row_from(t[1:9]), t[9]
                position = seq
                if row.deleted:
                    live = _last_live_body(c, row)
                    if live is None or not gate.permits(live):
                        continue
                    body = None
                else:
                    body = gate.disclose(row)
                    if body is None:
                        continue
                if len(entries) == count:
                    next_cursor = last_seq
                    done = True
                    break
                entries.append(_history_entry(ctx.base_url, row, body, method))
                last_seq = seq
            if len(rows) < count + 1:
                done = True
        if rid is not None and cursor is None and not entries:
            # Nothing of it may be shown: it does not exist for this requester (rule 8).
            raise not_found(rtype, rid)
    links = [{"relation": "self", "url": self_url}]
    if next_cursor is not None:
        path = f"{rtype}/{rid}/_history" if rid else f"{rtype}/_history"
        from urllib.parse import urlencode

        # The next page keeps every parameter of this one (_since above all), with a new cursor.
        keep = [(k, v) for k, v in params if k not in ("_count", "_cursor")]
        query = urlencode([*keep, ("_count", count), ("_cursor", next_cursor)])
        links.append({"relation": "next", "url": f"{ctx.base_url}/{path}?{query}"})
    out = orjson.dumps({"resourceType": "Bundle", "type": "history", "link": links})
    if entries:
        out = out[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
    return Result(200, out)


def _history_entry(base_url: str, row: Row, body: bytes | None, method: str) -> bytes:
    request = {"method": method, "url": f"{row.type}/{row.id}" if method != "POST" else row.type}
    response = {
        "status": "410 Gone" if row.deleted else ("201 Created" if row.version == 1 else "200 OK"),
        "etag": f'W/"{row.version}"',
        "lastModified": row.last_updated,
    }
    parts = [b'{"fullUrl":' + orjson.dumps(f"{base_url}/{row.type}/{row.id}")]
    if body is not None:
        parts.append(b',"resource":' + body)
    parts.append(b',"request":' + orjson.dumps(request) + b',"response":' + orjson.dumps(response) + b"}")
    return b"".join(parts)
