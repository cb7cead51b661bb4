"""The part of asyncpg the PostgreSQL store uses, typed: asyncpg ships no type hints.

The one module that imports the driver. Connections and pools come from `connect` and `create_pool`
as the protocols below, so every call the store makes on them is checked; a column's value is `Any`,
as its type depends on the query. The exceptions are the driver's own classes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, cast

import asyncpg  # type: ignore[import-untyped, unused-ignore]

PostgresError: type[Exception] = asyncpg.PostgresError  # the server refused or failed a statement
IntegrityConstraintViolationError: type[Exception] = asyncpg.IntegrityConstraintViolationError
AdminShutdownError: type[Exception] = asyncpg.AdminShutdownError  # the server is shutting down
PostgresConnectionError: type[Exception] = asyncpg.PostgresConnectionError
InterfaceError: type[Exception] = asyncpg.InterfaceError  # misuse, e.g. of a closed connection
InternalClientError: type[Exception] = asyncpg.InternalClientError


class Record(Protocol):
    """A row: its column values in order."""

    def __iter__(self) -> Iterator[Any]: ...

    def __getitem__(self, index: int | str) -> Any: ...

    def __len__(self) -> int: ...


class Connection(Protocol):
    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str:
        """Returns the command tag, e.g. 'UPDATE 12'."""
        ...

    async def fetch(self, query: str, *args: object) -> list[Record]: ...

    async def fetchrow(self, query: str, *args: object) -> Record | None: ...

    async def fetchval(self, query: str, *args: object) -> Any: ...

    async def copy_records_to_table(
        self, table_name: str, *, records: Iterable[Sequence[object]], columns: Sequence[str]
    ) -> str: ...

    def transaction(self) -> AbstractAsyncContextManager[object]: ...

    async def add_listener(self, channel: str, callback: Callable[..., object]) -> None: ...

    def is_closed(self) -> bool: ...

    async def close(self) -> None: ...

    def terminate(self) -> None: ...

    def get_server_pid(self) -> int: ...


class Pool(Protocol):
    def acquire(self, *, timeout: float | None = None) -> AbstractAsyncContextManager[Connection]: ...

    async def expire_connections(self) -> None: ...

    async def close(self) -> None: ...

    def terminate(self) -> None: ...


async def connect(dsn: str, *, timeout: float, command_timeout: float | None = None) -> Connection:
    return cast(Connection, await asyncpg.connect(dsn, timeout=timeout, command_timeout=command_timeout))


async def create_pool(
    dsn: str,
    *,
    min_size: int,
    max_size: int,
    timeout: float,
    command_timeout: float,
    server_settings: Mapping[str, str],
) -> Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        command_timeout=command_timeout,
        server_settings=dict(server_settings),
    )
    return cast(Pool, pool)
