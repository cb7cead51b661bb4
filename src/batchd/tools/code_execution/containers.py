"""Containers: where a request's code runs, kept for later requests of the same workspace.

A container is a row in the store (`Store.create_container`: id, workspace, expiry) and a home on
the machine whose process ran it: a directory the sandbox mounts as the program's working
directory, `$OUTPUT_DIR` and `/tmp` (tools/code_execution/sandbox.py). Versions `_20260120` and
later also keep a Python REPL process alive in it, so a later cell sees the variables of earlier
ones.

- A request names a container by id (the `container` param) to use it again: only its own
  workspace's, while it lives; any other id is refused as unknown, so an id never tells one
  workspace that another's exists.
- Each request that uses a container moves its expiry to now + `[code_execution] container_idle`
  (1 h by default, as Anthropic). `sweep` drops expired rows and removes every home here that no
  live row owns: after a crash or restart too, since it runs when the engine starts.
- At most `max_containers` programs run at once in this process; more wait for a free turn (never
  an error). Idle REPL processes are kept for the most recently used containers only, up to the
  same number: an older container's next cell starts a fresh REPL (its files stay).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import mimetypes
import secrets
import string
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from batchd import exceptions
from batchd.metrics import Metrics
from batchd.store.base import Container, Store, StoredFile
from batchd.tools.code_execution.sandbox import Repl, Sandbox

logger = logging.getLogger("batchd.tools")

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
SWEEP_INTERVAL = 30.0  # seconds between sweeps of expired containers and files, at most


def new_id(prefix: str) -> str:
    """`container_011C…` / `file_011C…`: Anthropic's shape, 24 random base62 characters."""
    return f"{prefix}_011C" + "".join(secrets.choice(_BASE62) for _ in range(24))


@dataclasses.dataclass
class Live:
    """A container this process holds a home for."""

    id: str
    workspace: str
    home: Path
    expires_at: float
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    repl: Repl | None = None
    used_at: float = 0.0  #: monotonic time of its last program (which REPLs to keep)
    users: int = 0  #: requests using it now (never removed meanwhile)


@dataclasses.dataclass(frozen=True)
class OutputFile:
    """A file a program left in `$OUTPUT_DIR`, kept for the Files API."""

    id: str
    filename: str
    size_bytes: int


class TooLarge(Exception):
    """An output file over `max_output_file`."""

    def __init__(self, filename: str, size: int) -> None:
        super().__init__(f"the output file {filename!r} ({size} bytes) is over the limit")
        self.filename, self.size = filename, size


class Containers:
    """Every container this process runs code in. `reason`: why code execution is unavailable
    here (None when the sandbox runs), known once `available()` has probed."""

    def __init__(
        self,
        sandbox: Sandbox | None,
        store: Store | None,
        *,
        idle: float,
        max_running: int,
        max_output_file: int,
        retention: float,
        metrics: Metrics | None = None,
        reason: str | None = None,
    ) -> None:
        self.sandbox, self.store, self.metrics = sandbox, store, metrics
        self.idle, self.max_running = idle, max_running
        self.max_output_file, self.retention = max_output_file, retention
        self.reason = reason
        if sandbox is None and reason is None:
            self.reason = "code execution is turned off ([code_execution] enabled = false)"
        if store is None and self.reason is None:
            self.reason = "code execution needs the store"
        self._probed = self.reason is not None
        self._turns = asyncio.Semaphore(max_running)
        self._live: dict[str, Live] = {}
        self._swept_at = 0.0
        self._sweep_every = min(SWEEP_INTERVAL, idle / 2)

    async def available(self) -> str | None:
        """None when code can run here, else why not (the sandbox is probed once)."""
        if not self._probed:
            assert self.sandbox is not None
            self.reason = await asyncio.to_thread(self.sandbox.probe)
            self._probed = True
            if self.reason is not None:
                logger.warning("code execution is unavailable: %s", self.reason)
        return self.reason

    async def find(self, workspace: str, container_id: str) -> Container:
        """The workspace's live container `container_id`; InvalidParams otherwise."""
        assert self.store is not None
        row = await self.store.get_container(container_id)
        if row is None or row.workspace != workspace:
            raise exceptions.InvalidParams(f"container: no container {container_id!r} in this workspace")
        if row.expires_at <= time.time():
            raise exceptions.InvalidParams(
                f"container: {container_id!r} has expired; send the request without `container` "
                "to get a new one"
            )
        return row

    async def create(self, workspace: str) -> Live:
        assert self.store is not None and self.sandbox is not None
        now = time.time()
        row = Container(new_id("container"), workspace, now, now + self.idle)
        home = await asyncio.to_thread(self.sandbox.create_home, row.id)
        await self.store.create_container(row)
        live = self._live[row.id] = Live(row.id, workspace, home, row.expires_at)
        self._gauge()
        return live

    async def attach(self, row: Container) -> Live:
        """The container of `row` here; its home is made anew when it lives on another machine
        (a fleet) or was lost: the files of earlier requests are then not there."""
        live = self._live.get(row.id)
        if live is None:
            assert self.sandbox is not None
            home = await asyncio.to_thread(self.sandbox.create_home, row.id)
            live = self._live[row.id] = Live(row.id, row.workspace, home, row.expires_at)
            self._gauge()
        return live

    @contextlib.asynccontextmanager
    async def using(self, live: Live) -> AsyncIterator[None]:
        """Held by a request while it may run code in `live`: never swept meanwhile."""
        live.users += 1
        try:
            yield
        finally:
            live.users -= 1

    @contextlib.asynccontextmanager
    async def turn(self, live: Live) -> AsyncIterator[None]:
        """One program's turn: a free place among `max_running`, and the container to itself."""
        async with self._turns, live.lock:
            live.used_at = time.monotonic()
            yield

    async def repl(self, live: Live) -> Repl:
        """The container's REPL, started if it has none (or its last one died). Call in a turn."""
        assert self.sandbox is not None
        if live.repl is None or not live.repl.alive:
            await self._make_room()
            live.repl = await self.sandbox.start_repl(live.home)
        return live.repl

    async def _make_room(self) -> None:
        """Closes the REPLs of the least recently used idle containers beyond `max_running`."""
        kept = sorted((c for c in self._live.values() if c.repl is not None), key=lambda c: c.used_at)
        for live in kept[: max(0, len(kept) - self.max_running + 1)]:
            if not live.lock.locked() and live.repl is not None:
                await live.repl.close()
                live.repl = None

    async def touch(self, live: Live) -> None:
        """Moves the container's expiry to now + idle (the end of a request that used it)."""
        assert self.store is not None
        live.expires_at = time.time() + self.idle
        await self.store.touch_container(live.id, live.expires_at)

    async def keep_outputs(self, live: Live) -> list[OutputFile]:
        """Stores the files the last program left in `$OUTPUT_DIR` (Files API); TooLarge for one
        over the limit (none is kept then)."""
        assert self.sandbox is not None and self.store is not None
        found = await asyncio.to_thread(self.sandbox.outputs, live.home)
        for name, content in found:
            if len(content) > self.max_output_file:
                raise TooLarge(name, len(content))
        kept = []
        now = time.time()
        for name, content in found:
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
            row = StoredFile(
                new_id("file"),
                live.workspace,
                live.id,
                name,
                mime,
                len(content),
                now,
                now + self.retention,
                True,
            )
            await self.store.put_file(row, content)
            kept.append(OutputFile(row.id, name, len(content)))
        return kept

    async def edit(self, live: Live, command: Mapping[str, Any]) -> dict[str, Any]:
        """The text editor's answer to `command` (run inside the sandbox). Call in a turn."""
        assert self.sandbox is not None
        return await self.sandbox.edit(live.home, command)

    async def place(self, live: Live, name: str, content: bytes) -> bool:
        """Puts an uploaded file in the container's working directory unless a file of that name is
        there already; False when it could not be written. Written by a program in the sandbox, so
        nothing the container holds (a symlink) can point the write elsewhere. Call in a turn."""
        assert self.sandbox is not None
        script = '[ -e "$1" ] || [ -L "$1" ] || cat > "$1"'
        done = await self.sandbox.run(live.home, ["sh", "-c", script, "sh", name], stdin=content)
        return done.return_code == 0

    async def clear_outputs(self, live: Live) -> None:
        assert self.sandbox is not None
        await asyncio.to_thread(self.sandbox.clear_outputs, live.home)

    async def sweep(self, now: float, *, force: bool = False) -> None:
        """Every SWEEP_INTERVAL or half the idle time (now with `force`): drops expired containers
        and files from the store, and removes the homes here that no live container owns."""
        if self.store is None or self.sandbox is None:
            return
        if not force and now - self._swept_at < self._sweep_every:
            return
        self._swept_at = now
        await self.store.expire_containers(now=now)
        await self.store.expire_files(now=now)
        homes = await asyncio.to_thread(self.sandbox.homes)
        live = await self.store.live_containers(homes, now=now) if homes else set()
        for container_id in homes:
            held = self._live.get(container_id)
            if container_id in live or (held is not None and held.users):
                continue
            if held is not None:
                del self._live[container_id]
                if held.repl is not None:
                    await held.repl.close()
            await asyncio.to_thread(self.sandbox.remove_home, container_id)
        self._gauge()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.containers(len(self._live))

    async def aclose(self) -> None:
        for live in self._live.values():
            if live.repl is not None:
                await live.repl.close()
                live.repl = None
