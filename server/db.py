"""The database: one schema, two backends (SQLite file by default, PostgreSQL by URL).

SQL is written once with `?` placeholders; the PostgreSQL backend rewrites them to `%s`.
Reads run without an explicit transaction; every write runs in exactly one transaction
(`Database.write()`), so a failure leaves nothing half written.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

DEFAULT_URL = "sqlite:///carebridge.db"


class DatabaseUnavailable(RuntimeError):
    pass


class Conflict(Exception):
    """A uniqueness race lost to a concurrent writer; the caller answers 409."""


def _schema(dialect: str) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    blob = "BLOB" if dialect == "sqlite" else "BYTEA"
    big = "INTEGER" if dialect == "sqlite" else "BIGINT"
    return [
        # Current version of every resource, with its stored JSON bytes.
        f"""CREATE TABLE IF NOT EXISTS resource (
            type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0, last_updated TEXT NOT NULL, seq {big} NOT NULL,
            patient TEXT, refs TEXT, body {blob}, PRIMARY KEY (type, id))""",
        "CREATE INDEX IF NOT EXISTS resource_type_lu ON resource (type, last_updated, id)",
        "CREATE INDEX IF NOT EXISTS resource_patient ON resource (patient, type)",
        # Every version ever written; seq orders all changes (history, export, outbox).
        f"""CREATE TABLE IF NOT EXISTS history (
            seq {serial}, type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0, last_updated TEXT NOT NULL, method TEXT NOT NULL,
            patient TEXT, refs TEXT, body {blob}, UNIQUE (type, id, version))""",
        "CREATE INDEX IF NOT EXISTS history_type_seq ON history (type, seq)",
        # Search index rows, one table per parameter type.
        """CREATE TABLE IF NOT EXISTS idx_token (
            type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
            system TEXT, code TEXT)""",
        "CREATE INDEX IF NOT EXISTS idx_token_q ON idx_token (type, param, code, system)",
        "CREATE INDEX IF NOT EXISTS idx_token_r ON idx_token (type, id)",
        """CREATE TABLE IF NOT EXISTS idx_string (
            type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS idx_string_q ON idx_string (type, param, value)",
        "CREATE INDEX IF NOT EXISTS idx_string_r ON idx_string (type, id)",
        """CREATE TABLE IF NOT EXISTS idx_date (
            type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
            low TEXT NOT NULL, high TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS idx_date_q ON idx_date (type, param, low, high)",
        "CREATE INDEX IF NOT EXISTS idx_date_r ON idx_date (type, id)",
        """CREATE TABLE IF NOT EXISTS idx_ref (
            type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, target TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS idx_ref_q ON idx_ref (type, param, target)",
        "CREATE INDEX IF NOT EXISTS idx_ref_r ON idx_ref (type, id)",
        # Per-patient facts the consent decision needs, kept in step by every write.
        """CREATE TABLE IF NOT EXISTS patient_facts (
            patient TEXT PRIMARY KEY, managing_org TEXT, consent_version INTEGER NOT NULL DEFAULT 0)""",
        # Organization.partOf closure: (descendant, ancestor) incl. (org, org).
        """CREATE TABLE IF NOT EXISTS org_closure (
            descendant TEXT NOT NULL, ancestor TEXT NOT NULL, depth INTEGER NOT NULL,
            PRIMARY KEY (descendant, ancestor))""",
        # Generations let every worker cache registry-derived facts and notice changes.
        """CREATE TABLE IF NOT EXISTS generation (
            name TEXT PRIMARY KEY, value INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS partner (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, ods TEXT,
            part_of TEXT, patient TEXT, scope TEXT NOT NULL, jwks TEXT, fhir_base TEXT,
            mesh_mailbox TEXT, mesh_workflow TEXT, created TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS server_key (
            kid TEXT PRIMARY KEY, private_pem TEXT NOT NULL, created TEXT NOT NULL)""",
        # Client-assertion ids already used (SMART backend services replay protection).
        """CREATE TABLE IF NOT EXISTS used_jti (
            jti TEXT PRIMARY KEY, expires INTEGER NOT NULL)""",
    ]


MIGRATIONS: list[tuple[int, str]] = [
    (1, "initial schema"),
    (2, "partner exchange: outbox, delivered copies, export jobs, pull records"),
    (3, "NHS MESH: messages, inbound record and quarantine; partners pushed by MESH"),
]


@lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    return sql.replace("?", "%s")


class Conn:
    """A thin, dialect-neutral face over a DB-API connection."""

    __slots__ = ("_raw", "dialect")

    def __init__(self, raw: Any, dialect: str) -> None:
        self._raw = raw
        self.dialect = dialect

    def _sql(self, sql: str) -> str:
        return _pg_sql(sql) if self.dialect == "postgresql" else sql

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        cur = self._raw.execute(self._sql(sql), params)
        return cur.fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        cur = self._raw.execute(self._sql(sql), params)
        return cur.fetchone()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self._raw.execute(self._sql(sql), params)
        return cur.rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.dialect == "postgresql":
            with self._raw.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
        else:
            self._raw.executemany(sql, rows)

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 500) -> Iterator[tuple]:
        """Rows without loading them all (exports)."""
        if self.dialect == "postgresql":
            with self._raw.cursor(name=None) as cur:
                cur.execute(self._sql(sql), params)
                while batch := cur.fetchmany(size):
                    yield from batch
        else:
            cur = self._raw.execute(sql, params)
            while batch := cur.fetchmany(size):
                yield from batch

    def blob(self, value: Any) -> bytes:
        return bytes(value) if value is not None and not isinstance(value, bytes) else value


class Database:
    """Connections and transactions for one database URL."""

    def __init__(self, url: str = DEFAULT_URL, *, pool_size: int = 8) -> None:
        self.url = url
        parsed = urlparse(url)
        if parsed.scheme == "sqlite":
            self.dialect = "sqlite"
            # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy spells them.
            self.path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
            if not self.path:
                raise ValueError("sqlite URL needs a file path: sqlite:///carebridge.db")
            self._local = threading.local()
            self._pool = None
        elif parsed.scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=pool_size,
                kwargs={"autocommit": True},
                open=False,
            )
            try:
                self._pool.open(wait=True, timeout=10)
            except Exception as exc:  # psycopg_pool.PoolTimeout and friends
                raise DatabaseUnavailable(f"cannot connect to {_safe(url)}: {exc}") from exc
        else:
            raise ValueError(
                f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
            )
        self.migrate()

    # -- connections -------------------------------------------------------------------
    def _sqlite(self) -> sqlite3.Connection:
        raw = getattr(self._local, "conn", None)
        if raw is None:
            raw = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute("PRAGMA synchronous=NORMAL")
            raw.execute("PRAGMA busy_timeout=30000")
            raw.execute("PRAGMA foreign_keys=OFF")
            # Reads by id map pages instead of copying them through read() calls.
            raw.execute("PRAGMA mmap_size=268435456")
            self._local.conn = raw
        return raw

    @contextmanager
    def read(self) -> Iterator[Conn]:
        if self._pool is None:
            yield Conn(self._sqlite(), "sqlite")
        else:
            with self._pool.connection() as raw:
                yield Conn(raw, "postgresql")

    @contextmanager
    def write(self) -> Iterator[Conn]:
        """One transaction: everything inside commits together or not at all."""
        if self._pool is None:
            raw = self._sqlite()
            # IMMEDIATE takes the write lock up front, so read-then-write cannot race.
            raw.execute("BEGIN IMMEDIATE")
            try:
                yield Conn(raw, "sqlite")
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            else:
                try:
                    raw.execute("COMMIT")
                except sqlite3.IntegrityError as exc:
                    raw.execute("ROLLBACK")
                    raise Conflict(str(exc)) from exc
        else:
            import psycopg

            with self._pool.connection() as raw:
                try:
                    with raw.transaction():
                        yield Conn(raw, "postgresql")
                except psycopg.errors.UniqueViolation as exc:
                    raise Conflict(str(exc)) from exc
                except psycopg.errors.SerializationFailure as exc:
                    raise Conflict(str(exc)) from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        else:
            raw = getattr(self._local, "conn", None)
            if raw is not None:
                raw.close()
                self._local.conn = None

    # -- schema ------------------------------------------------------------------------
    def migrate(self) -> None:
        """Create or migrate the schema; safe to run from several workers at once."""
        with self.write() as c:
            if self.dialect == "postgresql":
                c.run("SELECT pg_advisory_xact_lock(727274)")
            c.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, note TEXT)")
            row = c.one("SELECT MAX(version) FROM schema_version")
            current = (row[0] or 0) if row else 0
            for version, note in MIGRATIONS:
                if version <= current:
                    continue
                if version == 1:
                    for stmt in _schema(self.dialect):
                        c.run(stmt)
                if version == 2:
                    from carebridge.server.exchange_schema import exchange_schema

                    for stmt in exchange_schema(self.dialect):
                        c.run(stmt)
                if version == 3:
                    from carebridge.server.mesh_schema import mesh_schema

                    for stmt in mesh_schema(self.dialect):
                        c.run(stmt)
                    c.run("ALTER TABLE partner ADD COLUMN push_by TEXT")
                c.run("INSERT INTO schema_version (version, note) VALUES (?, ?)", (version, note))
            for name in ("org", "partner"):
                if self.dialect == "postgresql":
                    c.run(
                        "INSERT INTO generation (name, value) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                        (name,),
                    )
                else:
                    c.run("INSERT OR IGNORE INTO generation (name, value) VALUES (?, 0)", (name,))


def _safe(url: str) -> str:
    p = urlparse(url)
    if p.password:
        return url.replace(f":{p.password}@", ":***@")
    return url


def reset_for_tests(db: Database) -> None:
    """Empty every table (tests share one PostgreSQL database)."""
    with db.write() as c:
        for table in (
            "resource",
            "history",
            "idx_token",
            "idx_string",
            "idx_date",
            "idx_ref",
            "patient_facts",
            "org_closure",
            "partner",
            "used_jti",
        ):
            c.run(f"DELETE FROM {table}")
        c.run("UPDATE generation SET value = value + 1")
