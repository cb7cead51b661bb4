"""The sandbox's command line: bubblewrap over a read-only system image and one container's home.

Every program runs as `bwrap --args FD` (the arguments come through a memfd, so a program that
reads /proc/1/cmdline learns no host path) with:

- every namespace of its own (`--unshare-all`): no network but its own loopback, its own pids
  (killing bubblewrap's child kills the whole tree), no further user namespaces
  (`--disable-userns`), no capabilities, a new session (no terminal to inject input into);
- a root that is an empty tmpfs, made read-only once set up, holding only: /usr read-only (and
  the host's /bin, /lib… symlinks or read-only binds), a few harmless /etc files (the dynamic
  linker's cache, the timezone, the alternatives links, a passwd/group/hosts of its own; no
  shadow, no host names), a new /proc and a minimal /dev, a small /dev/shm of its own;
- the home's work/, outputs/ and tmp/ bound read-write at /workspace, /outputs and /tmp, and the
  operator's package directory read-only at /opt/packages: nothing else is writable or visible;
- a fixed environment: batchd's own, with its API keys, reaches neither the program nor
  bubblewrap (whose init process inside would show it as /proc/1/environ);
- the rlimits of `limits.py`, set by `prlimit` just before the program, and the seccomp
  filter of `seccomp.py` (no io_uring, bpf, keyring, vsock…).

When batchd runs as root, bubblewrap itself runs as the unprivileged sandbox user: a sandbox
owned by root would be exempt from the process limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from batchd.tools.code_execution import seccomp
from batchd.tools.code_execution.limits import Limits

WORKSPACE = "/workspace"  # the work directory: cwd and HOME
OUTPUTS = "/outputs"  # $OUTPUT_DIR
TMP = "/tmp"
PACKAGES = "/opt/packages"  # the operator's package directory, on PYTHONPATH
BIN = "/opt/sandbox/bin"  # python and python3, whatever the interpreter's name
HOSTNAME = "sandbox"
SETPRIV = "/usr/bin/setpriv"  # util-linux: starts bubblewrap as the sandbox user when batchd is root
CHOOM = "/usr/bin/choom"  # util-linux: sets the OOM score of bubblewrap and all it starts
NICE = "/usr/bin/nice"  # coreutils
NICENESS = 10  # sandboxes' CPU weight is a tenth of batchd's
UID = GID = 1000  # the program's ids inside: files of the host's users show as nobody
# bubblewrap's own environment: its init process inside the sandbox keeps the one it was
# started with, readable as /proc/1/environ (--clearenv clears only the program's).
NO_ENV: dict[str, str] = {}
HOST_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
HOST_ETC = (
    "ld.so.cache",
    "localtime",
    "alternatives",
    "mime.types",
)  # nothing secret, nothing of the host's identity

# Files of /etc the sandbox gets from batchd, not from the host.
ETC_FILES = {
    "passwd": (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"sandbox:x:{UID}:{GID}:sandbox:{WORKSPACE}:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    ),
    "group": f"root:x:0:\nsandbox:x:{GID}:\nnogroup:x:65534:\n",
    "hosts": f"127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
}


class SandboxError(Exception):
    """The sandbox itself could not start: bubblewrap is missing or refused, not a program that failed."""


class Bwrap:
    """Builds and starts sandboxed commands; one per `Sandbox`, shared by its runs and REPLs."""

    def __init__(
        self,
        *,
        bwrap: str,
        python: str,
        packages: Path | None,
        etc: Path,
        limits: Limits,
        user: tuple[int, int] | None,
        marker: str,
    ) -> None:
        self.bwrap = bwrap
        self.marker = marker
        self.python = python
        self.packages = packages
        self.etc = etc  # a directory holding ETC_FILES
        self.limits = limits
        self.user = user  # (uid, gid) to switch to before starting bubblewrap, or None
        self._image = self._image_args()
        self._seccomp = seccomp.program()

    def _image_args(self) -> list[str]:
        args = [
            "--unshare-all",
            "--unshare-user",  # made explicit: --disable-userns needs it
            "--disable-userns",
            "--uid", str(UID), "--gid", str(GID),
            "--die-with-parent",
            "--new-session",
            "--cap-drop", "ALL",
            "--hostname", HOSTNAME,
            "--clearenv",
        ]  # fmt: skip
        path = [BIN, "/usr/local/bin", "/usr/bin", "/bin"]
        env = {
            "HOME": WORKSPACE,
            "LANG": "C.UTF-8",
            "OUTPUT_DIR": OUTPUTS,
            "TMPDIR": TMP,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        if self.packages is not None:
            env["PYTHONPATH"] = PACKAGES
            if (self.packages / "bin").is_dir():
                path.insert(1, f"{PACKAGES}/bin")
        env["PATH"] = ":".join(path)
        for name, value in sorted(env.items()):
            args += ["--setenv", name, value]
        args += ["--ro-bind", "/usr", "/usr"]
        for name in HOST_ROOT_LINKS:
            host = Path("/", name)
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), f"/{name}"]
            elif host.is_dir():
                args += ["--ro-bind", str(host), f"/{name}"]
        for name in HOST_ETC:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for name in ETC_FILES:
            args += ["--ro-bind", str(self.etc / name), f"/etc/{name}"]
        for name in ("python", "python3"):
            args += ["--symlink", self.python, f"{BIN}/{name}"]
        if self.packages is not None:
            args += ["--ro-bind", str(self.packages), PACKAGES]
        args += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(self.limits.shm_bytes),
            "--tmpfs",
            "/dev/shm",
        ]
        return args

    def options(
        self, home: Path, *, status_fd: int | None = None, seccomp_fd: int | None = None
    ) -> list[str]:
        """bubblewrap's options for a sandbox over `home` (which holds work/, outputs/, tmp/)."""
        args = [
            *self._image,
            "--bind", str(home / "work"), WORKSPACE,
            "--bind", str(home / "outputs"), OUTPUTS,
            "--bind", str(home / "tmp"), TMP,
            "--chdir", WORKSPACE,
            "--remount-ro", "/dev",  # /dev/shm, mounted on it, stays writable
            "--remount-ro", "/",
        ]  # fmt: skip
        if status_fd is not None:
            args += ["--json-status-fd", str(status_fd)]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        return args

    def argv(self, options_fd: int, command: Sequence[str]) -> list[str]:
        # The options come through a memfd (--args); the command must follow on the command line.
        # The marker (an inert option) names this root's sandboxes in the host's process table
        # without showing the program any host path: see `Sandbox.processes`.
        argv = [self.bwrap, "--args", str(options_fd), "--unsetenv", self.marker, "--", *command]
        # Behind batchd for the CPU (so it keeps serving while sandboxes compute), and first in
        # line for the OOM killer: memory limits are per process, so sandboxes together can
        # exhaust the host's memory; the kernel then kills a sandboxed program, not batchd or
        # its database. Neither can be undone inside (no CAP_SYS_NICE, no CAP_SYS_RESOURCE).
        argv = [NICE, "-n", str(NICENESS), CHOOM, "-n", "1000", "--", *argv]
        if self.user is not None:
            # setpriv switches users rather than subprocess's user=/group=, which make Python
            # fork batchd: copying a large process's page tables costs more than the whole
            # sandbox's start (25 ms at 600 MB); without them it uses vfork.
            uid, gid = self.user
            argv = [SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]
        return argv

    def _fds(self, home: Path, status_w: int | None) -> tuple[int, ...]:
        """The memfds bubblewrap reads: its options (first), the seccomp filter (if any)."""
        seccomp_fd = None if self._seccomp is None else _memfd("bwrap-seccomp", self._seccomp)
        options = self.options(home, status_fd=status_w, seccomp_fd=seccomp_fd)
        args_fd = _memfd("bwrap-args", b"".join(a.encode() + b"\0" for a in options))
        return (args_fd,) if seccomp_fd is None else (args_fd, seccomp_fd)

    async def start(
        self, home: Path, command: Sequence[str], *, stdin: bool
    ) -> tuple[asyncio.subprocess.Process, Status]:
        """Start `command` in a sandbox over `home`: bubblewrap's process and its status."""
        status_r, status_w = os.pipe()
        fds = self._fds(home, status_w)
        pass_fds = (*fds, status_w)
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv(fds[0], command),
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=pass_fds,
                start_new_session=True,
                limit=1 << 20,
                env=NO_ENV,
            )
        except OSError as exc:
            os.close(status_r)
            raise SandboxError(f"{self.bwrap} could not be started: {exc}") from exc
        finally:
            for fd in (*fds, status_w):
                os.close(fd)
        return process, Status(status_r)

    def run_sync(
        self, home: Path, command: Sequence[str], timeout: float
    ) -> subprocess.CompletedProcess[bytes]:
        """`command` in a sandbox over `home`, synchronously (the start-up probe)."""
        fds = self._fds(home, None)
        try:
            return subprocess.run(
                self.argv(fds[0], command),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                pass_fds=fds,
                timeout=timeout,
                check=False,
                env=NO_ENV,
            )
        finally:
            for fd in fds:
                os.close(fd)


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class Status:
    """bubblewrap's JSON status (`--json-status-fd`): the host pid of the sandbox's init, written
    as it starts, then the program's `exit-code`, written only when the program really ran (so a
    program that failed is told from a sandbox that never started).
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        os.set_blocking(fd, False)
        self._data = b""
        self.child_pid: int | None = None
        self.exit_code: int | None = None

    def read(self) -> None:
        """Take in what bubblewrap has written so far."""
        while self._fd is not None:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            if not data:
                self.close()
                break
            self._data += data
        *lines, self._data = self._data.split(b"\n")
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                if isinstance(record.get("child-pid"), int):
                    self.child_pid = record["child-pid"]
                if isinstance(record.get("exit-code"), int):
                    self.exit_code = record["exit-code"]

    async def gone(self, timeout: float = 5.0) -> None:
        """Wait until the sandbox's init has exited, and so every process of the sandbox.

        bubblewrap reports the program's end as soon as its init learns it, while the init is
        still killing what else runs in the pid namespace: a program's background processes
        could otherwise still write to the home for a moment after `run` returned.
        """
        self.read()
        if self.child_pid is None:
            return
        stat = Path(f"/proc/{self.child_pid}/stat")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                state = stat.read_bytes().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                return  # reaped
            if state in (b"Z", b"X"):
                return  # exited; its parent has not reaped it yet
            await asyncio.sleep(0.001)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
