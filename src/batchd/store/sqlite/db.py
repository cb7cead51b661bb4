"""SQLite plumbing: one writer thread, a pool of reader threads, migrations, error translation."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from batchd import exceptions
from batchd.store import base, queries

T = TypeVar("T")
P = ParamSpec("P")
READER_THREADS = 4
BUSY_TIMEOUT_MS = 30_000
AUTO_VACUUM_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


@contextlib.contextmanager
def wrap_exceptions() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise exceptions.StoreError(f"store integrity error: {exc}") from exc
    except sqlite3.Error as exc:
        raise exceptions.StoreUnavailable(f"the database failed: {exc}") from exc


def write_problem(exc: exceptions.StoreError) -> base.WriteProblem:
    """What a failed write says of the store, from SQLite's error code (never its message)."""
    code = getattr(exc.__cause__, "sqlite_errorcode", 0) & 0xFF
    return _WRITE_PROBLEMS.get(code, base.WriteProblem.WRITE_FAILED)


_WRITE_PROBLEMS = {
    sqlite3.SQLITE_FULL: base.WriteProblem.DISK_FULL,
    sqlite3.SQLITE_READONLY: base.WriteProblem.READ_ONLY,
    sqlite3.SQLITE_IOERR: base.WriteProblem.IO_ERROR,
}


def free_bytes(path: str) -> int:
    """The bytes this process may still write on the file system of the database file `path`
    (root may use the blocks reserved for it)."""
    stat = os.statvfs(Path(path).parent)
    blocks = stat.f_bfree if os.geteuid() == 0 else stat.f_bavail
    return blocks * stat.f_frsize


# Connection settings (PRAGMA) and transaction control stay here, beside the code that owns the
# connections, rather than among the named queries: PRAGMA takes no bound parameters, so several are
# formatted from constants at run time. Every statement that reads or writes a table is a named query.


def _connect(path: str, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = OFF")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
        # No mmap: every page a download read through a mapping would count in the server's RSS
        # (100 MB of results: +240 MB over four reader connections), for no measurable speed-up.
        conn.execute("PRAGMA mmap_size = 0")
    else:
        # A new file keeps a map of its pages so that `Database.free_pages` can give the pages a
        # delete frees back to the file system. SQLite takes this only while the file is empty
        # (before WAL mode is written into it): a file made by an older version keeps its free
        # pages for reuse instead (docs/deployment.md says how to convert it).
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL survives a process crash (kill -9) at every commit; `transaction(durable=True)`
        # raises it to FULL where a power cut must not lose what was acknowledged (create).
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA journal_size_limit = 67108864")
    return conn


class Database:
    """Serialises writes on one thread (BEGIN IMMEDIATE) and spreads reads over a few threads."""

    def __init__(self, path: str, dialect: str = "sqlite") -> None:
        self.path = path
        self.dialect = dialect
        self._writer: sqlite3.Connection | None = None
        self._write_pool: ThreadPoolExecutor | None = None
        self._read_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._inline: sqlite3.Connection | None = None  # read_inline's, on the event loop's thread
        self._lock_fd: int | None = None
        self.shrinks = False  # the file can give free pages back (auto_vacuum = INCREMENTAL)

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise exceptions.ConfigError(
                f"{self.path} is in use by another batchd process (one process per SQLite file; "
                "use PostgreSQL to run several)"
            ) from exc
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="batchd-sqlite-writer")
        self._read_pool = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="batchd-sqlite-reader")
        await self.write(self._open_writer)

    def _open_writer(self) -> None:
        with wrap_exceptions():
            self._writer = _connect(self.path, readonly=False)
            migrate(self._writer, self.dialect)
            (mode,) = self._writer.execute("PRAGMA auto_vacuum").fetchone()
            self.shrinks = mode == AUTO_VACUUM_INCREMENTAL

    async def aclose(self) -> None:
        if self._write_pool is not None:
            await self.write(self._close_writer)
            self._write_pool.shutdown(wait=True)
            self._write_pool = None
        if self._read_pool is not None:
            self._read_pool.shutdown(wait=True)
            self._read_pool = None
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _close_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._writer.close()
            self._writer = None

    async def execute(self, sql: str, args: Sequence[object] = ()) -> int:
        """One statement in a transaction of its own on the writer thread; the rows it changed."""
        return await self.write(self._execute, sql, args)

    def _execute(self, sql: str, args: Sequence[object]) -> int:
        with self.transaction() as conn:
            return conn.execute(sql, args).rowcount

    async def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs fn(*args) on the writer thread. fn opens its own transaction via `transaction`."""
        if self._write_pool is None:
            raise exceptions.StoreUnavailable("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_pool, functools.partial(fn, *args, **kwargs))

    async def read(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Runs fn(conn, *args) on a reader thread with that thread's read-only connection."""
        if self._read_pool is None:
            raise exceptions.StoreUnavailable("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._with_reader, fn, args, kwargs)

    async def read_inline(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Runs fn(conn, *args) at once on the calling (event loop) thread; for reads of a few rows.

        Under load a hop to a reader thread costs more than the read: the reader waits for the GIL
        (up to the 5 ms switch interval) and the answer for another turn of a busy event loop, for a
        query of ~50 µs. A WAL reader does not wait for the writer; should it ever meet a lock
        (a checkpoint resetting the WAL), it does not wait on the loop: the read goes to a reader
        thread, which may.
        """
        if self._read_pool is None:
            raise exceptions.StoreUnavailable("the store is closed")
        try:
            if self._inline is None:
                conn = _connect(self.path, readonly=True)
                conn.execute("PRAGMA busy_timeout = 0")
                self._inline = conn
            return fn(self._inline, *args, **kwargs)
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise exceptions.StoreUnavailable(f"the database failed: {exc}") from exc
        return await self.read(fn, *args, **kwargs)

    def _with_reader(self, fn: Callable[..., T], args: tuple[object, ...], kwargs: dict[str, object]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with wrap_exceptions():
                conn = _connect(self.path, readonly=True)
            self._local.conn = conn
            self._readers.append(conn)
        with wrap_exceptions():
            return fn(conn, *args, **kwargs)

    def free_pages(self, pages: int) -> int:
        """Gives up to `pages` of the file's free pages back to the file system (an incremental
        vacuum: pages from the end of the file move into the free ones, and the file is cut);
        the free pages left. Call only on the writer thread, outside a transaction."""
        conn = self._writer
        if conn is None:
            raise exceptions.StoreUnavailable("the store is closed")
        with wrap_exceptions():
            if self.shrinks:
                # The pragma frees one page per step of its statement, and execute() steps a
                # statement that returns no rows once: executescript runs it to its end.
                conn.executescript(f"PRAGMA incremental_vacuum({int(pages)})")
            (left,) = conn.execute("PRAGMA freelist_count").fetchone()
        return int(left) if self.shrinks else 0

    @contextlib.contextmanager
    def cache_limit(self, kib: int) -> Iterator[None]:
        """Caps the writer's page cache at `kib` KiB for one bulk write; call only on the writer thread.

        A create writes ~1 KB per request: with the usual cache its dirty pages would all stay in
        memory until COMMIT, on top of the request body. A small cache spills them to the WAL early.
        """
        conn = self._writer
        if conn is None:
            raise exceptions.StoreUnavailable("the store is closed")
        with wrap_exceptions():
            (previous,) = conn.execute("PRAGMA cache_size").fetchone()
            conn.execute(f"PRAGMA cache_size = {-int(kib)}")
        try:
            yield
        finally:
            with wrap_exceptions():
                conn.execute(f"PRAGMA cache_size = {int(previous)}")

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE on the writer connection; call only on the writer thread.

        durable: fsync the commit (and every earlier one) before returning.
        """
        conn = self._writer
        if conn is None:
            raise exceptions.StoreUnavailable("the store is closed")
        with wrap_exceptions():
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous = NORMAL")


def migrate(conn: sqlite3.Connection, dialect: str) -> int:
    """Applies every migration newer than the database's schema_version; returns the version."""
    q = queries.load(dialect)
    conn.execute(q["create_schema_version"])
    current: int
    (current,) = conn.execute(q["schema_version"]).fetchone()
    for version, script in queries.migrations(dialect):
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(q["record_version"], (version,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        current = version
    return current


def _statements(script: str) -> list[str]:
    lines = [ln for ln in script.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
