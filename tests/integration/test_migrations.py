from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from batchd.store import queries
from batchd.store.sqlite_db import migrate


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_fresh_database_gets_every_migration_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    latest = max(v for v, _ in queries.migrations("sqlite"))
    assert migrate(conn, "sqlite") == latest
    assert {"batches", "requests", "results", "schema_version"} <= tables(conn)
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
