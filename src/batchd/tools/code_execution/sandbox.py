"""The sandbox: programs, REPLs and the text editor over a container's home, under bubblewrap.

    sandbox = Sandbox(root=Path("/var/lib/batchd/containers"))
    if (why := sandbox.probe()) is not None: ...     # at start: the tool answers `unavailable`
    home = sandbox.create_home("container_01…")
    execution = await sandbox.run(home, ["bash", "-c", "ls -la"])
    files = sandbox.outputs(home)                    # then clear_outputs(home) before the next call
    repl = await sandbox.start_repl(home)
    execution = await repl.run_cell("x = 6 * 7\\nprint(x)")

`bwrap.py` says what a sandbox sees and may do; `limits.py` what it may use.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from batchd.tools.code_execution import editor, homes, repl
from batchd.tools.code_execution.bwrap import CHOOM, NICE, SETPRIV, Bwrap, SandboxError
from batchd.tools.code_execution.execution import (
    WALL_KILL_RETURN_CODE,
    Capture,
    Execution,
    drain,
    feed_stdin,
    return_code,
    stopped_note,
)
from batchd.tools.code_execution.limits import Limits
from batchd.tools.code_execution.repl import Repl

__all__ = ["Execution", "Limits", "Repl", "Sandbox", "SandboxError"]

NOBODY = 65534
PRLIMIT = "/usr/bin/prlimit"  # util-linux: sets the rlimits inside the sandbox
PROBE_SECONDS = 30.0
REAP_SECONDS = 5.0  # after a kill, how long the pipes may take to close


class Sandbox:
    """Runs programs in bubblewrap sandboxes over containers' homes under `root`.

    `packages` is a directory the operator prepared (`pip install --target DIR numpy pandas`),
    bound read-only and put on PYTHONPATH. `user` is the uid (and gid) sandboxes run as when
    batchd runs as root: by default 65534 (nobody); a user of its own is better (no other
    process of the host then runs as the sandbox's uid).
    When batchd is not root, sandboxes run as batchd's own uid and `user` must be None.
    """

    def __init__(
        self,
        *,
        root: Path,
        bwrap: str = "bwrap",
        python: str = "/usr/bin/python3",
        packages: Path | None = None,
        limits: Limits = Limits(),  # noqa: B008 (frozen: one shared default is fine)
        user: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.python = python
        self.limits = limits
        self.packages = None if packages is None else Path(packages).resolve()
        owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            uid = NOBODY if user is None else user
            if uid == 0:
                raise ValueError("the sandbox must not run as root (user=0)")
            owner = (uid, uid)
        elif user is not None and user != os.geteuid():
            raise ValueError("only root can run sandboxes as another user")
        self._homes = homes.Homes(self.root, owner)
        # Names this root's sandboxes in the host's process table (a hash: no path shown inside).
        digest = hashlib.sha256(os.fsencode(self.root.absolute())).hexdigest()[:16]
        self.marker = f"batchd-sandbox-{digest}"
        self._bwrap_name = bwrap
        self._bwrap: Bwrap | None = None

    def _sandbox(self) -> Bwrap:
        if self._bwrap is None:
            etc = self._homes.prepare()
            path = shutil.which(self._bwrap_name)
            if path is None:
                raise SandboxError(f"{self._bwrap_name} not found (install the bubblewrap package)")
            self._bwrap = Bwrap(
                bwrap=path,
                python=self.python,
                packages=self.packages,
                etc=etc,
                limits=self.limits,
                user=self._homes.owner,
                marker=self.marker,
            )
        return self._bwrap

    def probe(self) -> str | None:
        """None when a sandboxed program runs here (one is run), else a short reason why not."""
        python = Path(self.python)
        if not python.is_absolute() or not python.resolve().is_relative_to("/usr"):
            return f"the sandbox's Python must be an absolute path under /usr, not {self.python}"
        if not os.access(python, os.X_OK):
            return f"{self.python} is missing (the sandbox's Python)"
        for tool in (PRLIMIT, CHOOM, NICE, *([SETPRIV] if self._homes.owner is not None else [])):
            if not os.access(tool, os.X_OK):
                return f"{tool} is missing (util-linux, coreutils)"
        blocked = self._homes.unreachable()
        if blocked is not None:
            assert self._homes.owner is not None
            return (
                f"the sandbox user (uid {self._homes.owner[0]}) cannot reach {self.root}: {blocked} is not "
                "searchable by it (chmod o+x, or put the containers' directory elsewhere)"
            )
        try:
            sandbox = self._sandbox()
            name = f".probe-{secrets.token_hex(4)}"
            home = self._homes.create(name, check=False)
        except (SandboxError, OSError) as exc:
            return str(exc)
        try:
            done = sandbox.run_sync(
                home, [*self.limits.prlimit(PRLIMIT), "python3", "-c", "print(1)"], PROBE_SECONDS
            )
        except OSError as exc:
            return f"{sandbox.bwrap} could not be started: {exc}"
        except subprocess.TimeoutExpired:
            return f"a sandboxed program did not finish in {PROBE_SECONDS:g} s"
        finally:
            self._homes.remove(name, check=False)
        if done.returncode != 0 or done.stdout != b"1\n":
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            why = lines[-1] if lines else f"exit code {done.returncode}"
            if "namespace" in why or "uid map" in why or "Operation not permitted" in why:
                return f"bubblewrap cannot create its namespaces here (user namespaces refused?): {why}"
            if "Permission denied" in why and self._homes.owner is not None:
                return (
                    f"{why} (the sandbox runs as uid {self._homes.owner[0]}: every directory above "
                    f"{self.root} must be searchable by it)"
                )
            return f"a sandboxed program failed: {why}"
        return None

    def create_home(self, container_id: str) -> Path:
        """root/<id>/ with work/ (/workspace: cwd and HOME), outputs/ ($OUTPUT_DIR), tmp/ (/tmp)."""
        self._sandbox()
        return self._homes.create(container_id)

    def remove_home(self, container_id: str) -> None:
        """Remove a container's home, never following a symlink the sandbox made; idempotent."""
        self._homes.remove(container_id)

    def homes(self) -> list[str]:
        """The container ids that have a home under root (for the cleanup after a crash)."""
        return self._homes.ids()

    def processes(self) -> list[int]:
        """Host pids of the sandboxes of this root still running (their bubblewrap processes).

        Every process a program starts lives in its sandbox's pid namespace and dies with it, so
        an empty list means nothing of any sandbox runs; also after batchd was killed.
        """
        found = []
        needle = self.marker.encode()
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        if needle in f.read():
                            found.append(int(entry.name))
                except OSError:
                    continue
        return sorted(found)

    def outputs(self, home: Path) -> list[tuple[str, bytes]]:
        """(name, bytes) of each regular file at the top level of outputs/, each at most file_size_bytes."""
        return homes.outputs(home, self.limits.file_size_bytes)

    def clear_outputs(self, home: Path) -> None:
        """Empty outputs/: a fresh empty $OUTPUT_DIR for the next call."""
        homes.clear_outputs(home)

    async def run(self, home: Path, argv: Sequence[str], *, stdin: bytes | None = None) -> Execution:
        """Run one program (`["bash", "-c", command]`, `["python3", "-"]`…) in a fresh sandbox over `home`."""
        return await self._run(home, [*self.limits.prlimit(PRLIMIT), *argv], stdin, self.limits)

    async def _run(self, home: Path, command: list[str], stdin: bytes | None, limits: Limits) -> Execution:
        process, status = await self._sandbox().start(home, command, stdin=stdin is not None)
        assert process.stdout is not None and process.stderr is not None
        out, err = Capture(limits.output_bytes), Capture(limits.output_bytes)
        work = [drain(process.stdout, out), drain(process.stderr, err)]
        if stdin is not None:
            assert process.stdin is not None
            work.append(feed_stdin(process.stdin, stdin))
        everything = asyncio.gather(*work, process.wait())
        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(everything), timeout=limits.wall_seconds)
            except TimeoutError:
                timed_out = True
                _kill(process)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(everything, timeout=REAP_SECONDS)
                everything.cancel()
                await process.wait()
            except BaseException:  # cancelled: nothing may outlive the call
                _kill(process)
                everything.cancel()
                raise
            await status.gone()
            status.read()
        finally:
            status.close()
        assert process.returncode is not None
        if timed_out:
            return Execution(
                stdout=out.text(),
                stderr=err.text(stopped_note(limits.wall_seconds)),
                return_code=WALL_KILL_RETURN_CODE,
                timed_out=True,
                truncated=out.truncated or err.truncated,
            )
        if status.exit_code is None:
            lines = err.kept.decode("utf-8", "replace").strip().splitlines()
            raise SandboxError(f"the sandbox did not start: {lines[-1] if lines else 'no reason given'}")
        return Execution(
            stdout=out.text(),
            stderr=err.text(),
            return_code=return_code(process.returncode),
            timed_out=False,
            truncated=out.truncated or err.truncated,
        )

    async def edit(self, home: Path, command: Mapping[str, Any]) -> dict[str, Any]:
        """The text editor (view, create, str_replace), run in the sandbox; the spec's content object."""
        why = editor.invalid(command)
        if why is not None:
            return editor.error("invalid_tool_input", why)
        limits = editor.guest_limits(self.limits)
        execution = await self._run(
            home,
            [*limits.prlimit(PRLIMIT), *editor.guest_command(self.python, self.limits)],
            editor.request(command),
            limits,
        )
        return editor.result(execution)

    async def start_repl(self, home: Path) -> Repl:
        """A persistent Python process in a sandbox over `home`, ready for its first cell."""
        nonce = secrets.token_hex(16)
        command = [*self.limits.prlimit(PRLIMIT, cpu=False), *repl.command(self.python, nonce, self.limits)]
        process, status = await self._sandbox().start(home, command, stdin=True)
        return await Repl.start(process, status, nonce, self.limits)


def _kill(process: asyncio.subprocess.Process) -> None:
    # Its child, the pid namespace's init, dies with it: the kernel then kills the whole sandbox.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
