"""A persistent Python process in a sandbox: cells run in one namespace, so variables survive.

The driver (`guest/repl_driver.py`) reads one JSON line per cell on stdin and, when the cell is
done, writes an end marker holding a nonce batchd drew for that cell and the cell's return code
on stdout and stderr; everything before the markers is the cell's output, capped like a
program's. A cell that outlives the wall-clock limit, or a process that dies (its CPU limit, a
crash, `os._exit`), ends the REPL: its variables are lost and `alive` turns False.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
from importlib import resources

from batchd.tools.code_execution.bwrap import SandboxError, Status
from batchd.tools.code_execution.execution import (
    CHUNK,
    WALL_KILL_RETURN_CODE,
    Capture,
    Execution,
    return_code,
    stopped_note,
)
from batchd.tools.code_execution.limits import Limits

SOURCE = resources.files("batchd.tools.code_execution").joinpath("guest/repl_driver.py").read_text()
CODE_WIDTH = 12  # characters of the return code in a marker: f"{code:+012d}"
CPU_KILLED = 128 + signal.SIGXCPU
REAP_SECONDS = 5.0  # after a kill, how long the pipes may take to close


def command(python: str, nonce: str, limits: Limits) -> list[str]:
    return [python, "-I", "-u", "-B", "-c", SOURCE, nonce, repr(limits.cpu_seconds)]


def _prefix(nonce: str) -> bytes:
    return f"\0\x1ebatchd-cell:{nonce}:".encode()


class _Stream:
    """One of the REPL's output pipes, read cell by cell up to each end marker."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.carry = b""  # read past the last marker: the next cell's

    async def until(self, nonce: str, capture: Capture) -> int | None:
        """Feed `capture` up to the marker for `nonce`; its return code, or None at the pipe's end."""
        prefix = _prefix(nonce)
        whole = len(prefix) + CODE_WIDTH + 1
        buf, self.carry = self.carry, b""
        while True:
            at = buf.find(prefix)
            if at >= 0 and len(buf) >= at + whole:
                capture.feed(buf[:at])
                self.carry = buf[at + whole :]
                try:
                    return int(buf[at + len(prefix) : at + whole - 1])
                except ValueError:
                    return 1
            if at < 0:
                # Keep what could be the start of a marker; the rest is output.
                safe = max(0, len(buf) - len(prefix) + 1)
                capture.feed(buf[:safe])
                buf = buf[safe:]
            data = await self.reader.read(CHUNK)
            if not data:
                capture.feed(buf)
                return None
            buf += data


class Repl:
    """A persistent Python process in a sandbox over a container's home: variables survive between cells."""

    def __init__(self, process: asyncio.subprocess.Process, status: Status, limits: Limits) -> None:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        self._process = process
        self._status = status
        self._stdin = process.stdin
        self._out = _Stream(process.stdout)
        self._err = _Stream(process.stderr)
        self._limits = limits
        self._lock = asyncio.Lock()
        self._dead = False

    @classmethod
    async def start(
        cls, process: asyncio.subprocess.Process, status: Status, nonce: str, limits: Limits
    ) -> Repl:
        """Wait for the driver's start-up markers; SandboxError when it never comes up."""
        repl = cls(process, status, limits)
        out, err = Capture(limits.output_bytes), Capture(limits.output_bytes)
        try:
            codes = await asyncio.wait_for(
                asyncio.gather(repl._out.until(nonce, out), repl._err.until(nonce, err)),
                timeout=limits.wall_seconds,
            )
        except TimeoutError:
            await repl.close()
            raise SandboxError(f"the Python REPL did not start in {limits.wall_seconds:g} s") from None
        except BaseException:  # cancelled: nothing may outlive the call
            repl._dead = True
            _kill_group(process)
            raise
        if None in codes:
            await repl.close()
            why = err.text().strip().splitlines()[-1:] or ["it exited"]
            raise SandboxError(f"the Python REPL did not start: {why[0][:300]}")
        return repl

    @property
    def alive(self) -> bool:
        return not self._dead and self._process.returncode is None

    async def run_cell(self, code: str) -> Execution:
        """Run `code` in the REPL's namespace; SandboxError when the REPL is no longer alive."""
        async with self._lock:
            if not self.alive:
                raise SandboxError("the Python REPL has stopped; start another")
            nonce = secrets.token_hex(16)
            out, err = Capture(self._limits.output_bytes), Capture(self._limits.output_bytes)
            request = json.dumps({"nonce": nonce, "code": code}).encode() + b"\n"
            reads = asyncio.ensure_future(self._exchange(request, nonce, out, err))
            try:
                codes = await asyncio.wait_for(asyncio.shield(reads), timeout=self._limits.wall_seconds)
            except asyncio.CancelledError:
                # The cell goes on unread: its end would be taken for the next cell's output.
                self._dead = True
                _kill_group(self._process)
                reads.cancel()
                raise
            except TimeoutError:
                await self._kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reads, timeout=REAP_SECONDS)
                reads.cancel()
                note = stopped_note(
                    self._limits.wall_seconds, "the cell", "; the REPL stopped, its variables are lost"
                )
                return Execution(
                    stdout=out.text(),
                    stderr=err.text(note),
                    return_code=WALL_KILL_RETURN_CODE,
                    timed_out=True,
                    truncated=out.truncated or err.truncated,
                )
            if codes[0] is not None:
                return Execution(
                    stdout=out.text(),
                    stderr=err.text(),
                    return_code=codes[0],
                    timed_out=False,
                    truncated=out.truncated or err.truncated,
                )
            # The process ended during the cell.
            await self._kill()
            exited = return_code(self._process.returncode or 0)
            if exited == CPU_KILLED:
                why = f"the cell used more than its {self._limits.cpu_seconds:g} s of CPU time"
            else:
                why = f"the Python process exited with code {exited}"
            return Execution(
                stdout=out.text(),
                stderr=err.text(f"[{why}; the REPL stopped, its variables are lost]"),
                return_code=exited if exited else 1,
                timed_out=False,
                truncated=out.truncated or err.truncated,
            )

    async def _exchange(self, request: bytes, nonce: str, out: Capture, err: Capture) -> list[int | None]:
        """Send a cell; the return codes in its end markers (None: the pipe ended first)."""
        try:
            self._stdin.write(request)
            await self._stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died: the reads find the pipes' ends
        return list(await asyncio.gather(self._out.until(nonce, out), self._err.until(nonce, err)))

    async def _kill(self) -> None:
        self._dead = True
        _kill_group(self._process)
        await self._process.wait()
        await self._status.gone()
        self._status.close()

    async def close(self) -> None:
        """Kill the REPL and everything it started; idempotent."""
        await self._kill()
        self._stdin.close()


def _kill_group(process: asyncio.subprocess.Process) -> None:
    # bubblewrap's child is the pid namespace's init, which dies with it (--die-with-parent):
    # the kernel then kills every process of the sandbox.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
