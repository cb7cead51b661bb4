from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from batchd.store import base, layout, queries, rows
from batchd.store.sqlite import SQLiteStore
from batchd.store.sqlite.db import _statements, migrate
from tests.integration import pg


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_fresh_database_gets_every_migration_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    latest = max(v for v, _ in queries.migrations("sqlite"))
    assert migrate(conn, "sqlite") == latest
    assert {"batches", "requests", "results", "sessions", "schema_version"} <= tables(conn)
    conn.execute(
        "INSERT INTO batches (id, workspace, status, created_at, expires_at, n_processing) "
        "VALUES ('b', 'w', 'in_progress', 0, 1, 0)"
    )
    assert migrate(conn, "sqlite") == latest  # idempotent: nothing re-applied, nothing lost
    assert conn.execute("SELECT count(*) FROM batches").fetchone()[0] == 1
    assert [r[0] for r in conn.execute("SELECT version FROM schema_version")] == [
        v for v, _ in queries.migrations("sqlite")
    ]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_migrations_are_numbered_without_gaps(dialect: str) -> None:
    versions = [v for v, _ in queries.migrations(dialect)]
    assert versions and versions == list(range(1, len(versions) + 1))


def test_named_queries_load() -> None:
    q = queries.load("sqlite")
    assert {"claim", "finish_requests", "insert_result", "close_pending", "results_page"} <= set(q)
    assert all(sql and not sql.endswith(";") for sql in q.values())
    q = queries.load("postgres")
    assert {"claim", "finish_requests", "insert_results", "close_state", "results_page"} <= set(q)
    assert all(sql and not sql.endswith(";") for sql in q.values())


ROW_QUERIES = [  # each typed row's fields and the named queries that return it
    (
        rows.BatchRow._fields,
        [
            "fetch_batch",
            "lock_batch",
            *(f"list_{w}{p}" for w in ("", "all_") for p in ("first", "after", "before")),
        ],
    ),
    (rows.ClaimRow._fields, ["claim"]),
    (rows.EntryRow._fields, ["list_results"]),
    (base.Session._fields, ["fetch_session"]),
]


def test_sqlite_queries_return_the_columns_their_rows_name(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "columns.db", isolation_level=None)
    migrate(conn, "sqlite")
    q = queries.load("sqlite")
    checked = 0
    for fields, names in ROW_QUERIES:
        for name in filter(q.__contains__, names):  # lock_batch is PostgreSQL's alone
            numbered = [int(n) for n in re.findall(r"\?(\d+)", q[name])]
            args = [0] * (max(numbered) if numbered else q[name].count("?"))
            columns = [d[0] for d in conn.execute(q[name], args).description]
            assert columns == list(fields), name
            checked += 1
    assert checked == 10


async def test_postgres_queries_return_the_columns_their_rows_name() -> None:
    import asyncpg

    name, url = await pg.create_database()
    try:
        conn = await asyncpg.connect(url)
        try:
            q = queries.load("postgres")
            for fields, names in ROW_QUERIES:
                for query in names:
                    statement = await conn.prepare(q[query])
                    assert [a.name for a in statement.get_attributes()] == list(fields), query
        finally:
            await conn.close()
    finally:
        await pg.drop_database(name)


# -- v1 -> v2: params move to their own table ----------------------------------------------------

V1_ROWS = [  # (index, custom_id, params, state, worker, lease_until, claims)
    (0, "done", b'{"n": 0}', 2, None, None, 1),
    (1, "running", b'{"n": 1}', 1, "w1", 50.0, 1),
    (2, "pending", b'{"n": 2, "text": "\xc3\xa9t\xc3\xa9"}', 0, None, None, 0),
]


def v1_script(dialect: str) -> str:
    return dict(queries.migrations(dialect))[1]


async def check_v1_data_after_migration(store: Any) -> None:
    """The v1 rows, once migrated: the pending request claims with its params byte for byte,
    the running one keeps its lease, the done one keeps its result."""
    claimed = await store.claim_requests("w2", 10, now=10.0, lease=60.0)
    assert [(c.custom_id, bytes(c.params)) for c in claimed] == [("pending", V1_ROWS[2][2])]
    assert await store.recover_leases(now=100.0) == 2  # the running one (lease 50) and the new claim
    again = await store.claim_requests("w2", 10, now=100.0, lease=60.0)
    assert sorted((c.custom_id, bytes(c.params), c.claims) for c in again) == [
        ("pending", V1_ROWS[2][2], 1),
        ("running", V1_ROWS[1][2], 1),
    ]
    entries, _ = await store.list_results("w", "msgbatch_v1")
    assert [(e.custom_id, e.line) for e in entries] == [
        ("done", b'{"custom_id":"done"}\n'),
        ("running", None),
        ("pending", None),
    ]


def test_sqlite_v1_database_migrates_with_its_requests(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(v1_script("sqlite")):
        conn.execute(statement)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute(
        "INSERT INTO batches (seq, id, workspace, status, created_at, expires_at, n_processing, n_succeeded) "
        "VALUES (1, 'msgbatch_v1', 'w', 'in_progress', 0, 1e9, 2, 1)"
    )
    for index, cid, params, state, worker, lease, claims in V1_ROWS:
        conn.execute(
            "INSERT INTO requests (key, custom_id, params, state, worker, lease_until, claims) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((1 << layout.KEY_BITS) | index, cid, params, state, worker, lease, claims),
        )
    conn.execute(
        "INSERT INTO results (key, type, line) VALUES (?, 'succeeded', ?)",
        (1 << layout.KEY_BITS, b'{"custom_id":"done"}\n'),
    )
    conn.close()

    async def main() -> None:
        async with SQLiteStore(str(path)) as store:
            await check_v1_data_after_migration(store)

    asyncio.run(main())
    conn = sqlite3.connect(path)
    assert "params" not in {r[1] for r in conn.execute("PRAGMA table_info(requests)")}
    assert conn.execute("SELECT count(*) FROM request_params").fetchone()[0] == 3


async def test_postgres_v1_database_migrates_with_its_requests() -> None:
    import asyncpg

    from batchd.store.postgres import PostgresStore

    name, url = await pg.create_database(migrated=False)
    try:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(v1_script("postgres"))
            await conn.execute("CREATE TABLE schema_version (version integer PRIMARY KEY)")
            await conn.execute("INSERT INTO schema_version VALUES (1)")
            await conn.execute(
                "INSERT INTO batches (seq, id, workspace, status, created_at, expires_at, n_processing, "
                "n_succeeded) OVERRIDING SYSTEM VALUE "
                "VALUES (1, 'msgbatch_v1', 'w', 'in_progress', 0, 1e9, 2, 1)"
            )
            for index, cid, params, state, worker, lease, claims in V1_ROWS:
                await conn.execute(
                    "INSERT INTO requests (key, custom_id, params, state, worker, lease_until, claims) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    (1 << layout.KEY_BITS) | index,
                    cid,
                    params,
                    state,
                    worker,
                    lease,
                    claims,
                )
            await conn.execute(
                "INSERT INTO results (key, type, line) VALUES ($1, 'succeeded', $2)",
                1 << layout.KEY_BITS,
                b'{"custom_id":"done"}\n',
            )
        finally:
            await conn.close()
        async with PostgresStore(url) as store:
            await check_v1_data_after_migration(store)
    finally:
        await pg.drop_database(name)


# -- v3 -> v4: dashboard sessions ----------------------------------------------------------------

SESSIONS = 4  # the version that adds them
SESSION = base.Session("d" * 64, "w", "proof", 10.0, 1e9, 10.0, None)


def before_sessions(dialect: str) -> list[tuple[int, str]]:
    return [(version, script) for version, script in queries.migrations(dialect) if version < SESSIONS]


async def check_v3_data_after_migration(store: Any) -> None:
    """A database of the version before sessions, once migrated: its batch is still there and
    sessions can be stored."""
    assert (await store.get_batch("w", "msgbatch_v3")).request_counts.processing == 1
    await store.create_session(SESSION, idle=3600.0)
    assert await store.get_session(SESSION.digest) == SESSION


def test_sqlite_v3_database_gets_sessions(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, script in before_sessions("sqlite"):
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
    conn.execute(
        "INSERT INTO batches (seq, id, workspace, status, created_at, expires_at, n_processing) "
        "VALUES (1, 'msgbatch_v3', 'w', 'in_progress', 0, 1e9, 1)"
    )
    conn.close()

    async def main() -> None:
        async with SQLiteStore(str(path)) as store:
            await check_v3_data_after_migration(store)

    asyncio.run(main())


async def test_postgres_v3_database_gets_sessions() -> None:
    import asyncpg

    from batchd.store.postgres import PostgresStore

    name, url = await pg.create_database(migrated=False)
    try:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE schema_version (version integer PRIMARY KEY)")
            for version, script in before_sessions("postgres"):
                await conn.execute(script)
                await conn.execute("INSERT INTO schema_version VALUES ($1)", version)
            await conn.execute(
                "INSERT INTO batches (seq, id, workspace, status, created_at, expires_at, n_processing) "
                "OVERRIDING SYSTEM VALUE VALUES (1, 'msgbatch_v3', 'w', 'in_progress', 0, 1e9, 1)"
            )
        finally:
            await conn.close()
        async with PostgresStore(url) as store:
            await check_v3_data_after_migration(store)
    finally:
        await pg.drop_database(name)
