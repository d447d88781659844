"""SQLite access: one writer connection, one reader connection, forward-only migrations.

SQLite has one writer, so every write goes through `Database.transaction()`, which holds an
asyncio lock around a short BEGIN IMMEDIATE ... COMMIT on the write connection. Reads use a
second connection and see only committed data (WAL). Migrations are `migrations/NNNN_name.sql`,
each applied in one transaction together with its row in `schema_migrations`, so a failed file
stays pending (the approach of sqlite-utils' migrations).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

BUSY_TIMEOUT_MS = 5000


def migrations_dir() -> Path:
    """`collector/migrations` inside an installed wheel, else the repo's top-level `migrations/`."""
    packaged = Path(__file__).with_name("migrations")
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "migrations"


def migration_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or migrations_dir()).glob("[0-9][0-9][0-9][0-9]_*.sql"))


def configure(conn: sqlite3.Connection) -> None:
    """Pragmas every connection needs: WAL, foreign keys, and waiting instead of failing on locks."""
    conn.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("pragma journal_mode = wal")
    conn.execute("pragma synchronous = normal")
    conn.execute("pragma foreign_keys = on")


def applied_migrations(conn: sqlite3.Connection) -> dict[str, str]:
    conn.execute(
        "create table if not exists schema_migrations (name text primary key, applied_at text not null)"
    )
    return dict(conn.execute("select name, applied_at from schema_migrations").fetchall())


def apply_migrations(conn: sqlite3.Connection, directory: Path | None = None) -> list[str]:
    """Apply pending migrations in order; returns the names applied. Needs isolation_level=None."""
    done = applied_migrations(conn)
    applied: list[str] = []
    for path in migration_files(directory):
        if path.stem in done:
            continue
        statements = [s for s in sqlite3_split(path.read_text(encoding="utf-8")) if s.strip()]
        conn.execute("begin immediate")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "insert into schema_migrations (name, applied_at) values (?, ?)",
                (path.stem, now_iso()),
            )
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
        applied.append(path.stem)
    return applied


def sqlite3_split(script: str) -> list[str]:
    """Split a SQL script into complete statements (sqlite3.complete_statement knows triggers)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current)
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        statements.append(current)
    return statements


def migrate_file(path: str | Path) -> list[str]:
    """Open (creating) the database file and apply pending migrations; used by the CLI."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        configure(conn)
        return apply_migrations(conn)
    finally:
        conn.close()


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms_to_iso(ms: int) -> str:
    """Milliseconds since the epoch as RFC 3339 in UTC, as the API shows times."""
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@dataclass
class Database:
    """The writer and reader connections of one database file, with the write lock."""

    path: str
    writer: aiosqlite.Connection
    reader: aiosqlite.Connection
    write_lock: asyncio.Lock

    @classmethod
    async def open(cls, path: str) -> Database:
        migrate_file(path)
        writer = await aiosqlite.connect(path, isolation_level=None)
        reader = await aiosqlite.connect(path, isolation_level=None)
        for conn in (writer, reader):
            conn.row_factory = sqlite3.Row
            await conn.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("pragma synchronous = normal")
            await conn.execute("pragma foreign_keys = on")
        await reader.execute("pragma query_only = on")
        return cls(path, writer, reader, asyncio.Lock())

    async def close(self) -> None:
        await self.reader.close()
        await self.writer.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A short write transaction; never hold it across a network call."""
        async with self.write_lock:
            await self.writer.execute("begin immediate")
            try:
                yield self.writer
            except BaseException:
                await self.writer.execute("rollback")
                raise
            await self.writer.execute("commit")

    async def fetchall(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[sqlite3.Row]:
        return list(await self.reader.execute_fetchall(sql, params))

    async def fetchone(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> sqlite3.Row | None:
        rows = await self.reader.execute_fetchall(sql, params)
        return rows[0] if rows else None

    async def page(
        self,
        table: str,
        filters: dict[str, Any],
        order: str,
        limit: int,
        offset: int,
        columns: str = "*",
    ) -> tuple[list[sqlite3.Row], int]:
        """One page of `table` where each filter equals its value (None: no filter), and the
        count of all matching rows. Table, column and order names come from the caller's code,
        never from input; values are parameters."""
        params = {name: value for name, value in filters.items() if value is not None}
        where = " and ".join(["1 = 1", *(f"{name} = :{name}" for name in params)])
        rows = await self.fetchall(
            f"select {columns} from {table} where {where} order by {order} "
            "limit :limit offset :offset",
            {**params, "limit": limit, "offset": offset},
        )
        total = await self.fetchone(f"select count(*) as n from {table} where {where}", params)
        return rows, total["n"] if total else 0

    async def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """One write statement in its own transaction; returns the rows changed."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

    async def write_batch(self, sql: str, rows: list[Sequence[Any]]) -> int:
        """`executemany` in a transaction of its own, in one hop to the writer's thread.

        The group commit's hot path: BEGIN, executemany and COMMIT as three aiosqlite calls cost
        three event-loop round trips per group. aiosqlite has no public call that runs several
        statements in one hop, so this goes through its `_execute`, the queue every aiosqlite
        call uses. Returns the rows changed.
        """

        def run(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.execute("begin immediate")
            try:
                conn.executemany(sql, rows)
                conn.execute("commit")
            except BaseException:
                conn.execute("rollback")
                raise
            return conn.total_changes - before

        async with self.write_lock:
            return int(await self.writer._execute(run, self.writer._conn))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        async with self.transaction() as conn:
            cursor = await conn.executemany(sql, rows)
            return cursor.rowcount
