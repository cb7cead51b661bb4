"""A real `batchd serve` process on a free loopback port, for acceptance tests."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

STARTUP_TIMEOUT = 20.0  # seconds


# Ports handed out below the kernel's ephemeral range (32768-60999 by default), where no outgoing
# connection and no bind(0) of another server (llama.cpp's, a fake upstream's) can take one
# between the moment it is chosen and the moment the server under test binds it.
PORTS = range(20_000, 32_000)
_rng = random.Random()


def free_port() -> int:
    """A loopback port free now, outside the ephemeral range (see PORTS)."""
    while True:
        port = _rng.choice(PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class ThreadedApp:
    """An ASGI app served by uvicorn on a free loopback port, in a thread of the test process."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self) -> None:
        """Starts the thread and waits (10 s at most) until the server accepts connections."""
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "upstream did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait_exited(pid: int, timeout: float) -> None:
    """Until process `pid` has exited (gone, or a zombie: its files closed), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.01)


def child_env(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without a developer's BATCHD_* or ANTHROPIC_* values, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHD_", "ANTHROPIC_"))}
    return {**env, **settings}


class BatchdProcess:
    """What a test does with any batchd child process: read its log, kill it, stop it."""

    proc: subprocess.Popen[bytes] | None
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        """SIGKILL to the process and its children at once, as a crash of the machine's service
        takes them: `batchd serve`'s app runs in a child process (granian's worker), which would
        otherwise outlive its parent for a moment, still holding the listening socket."""
        assert self.proc is not None
        children = _children(self.proc.pid)
        for pid in (*children, self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)
        for pid in children:  # a big process takes a while to exit, its sockets open until the end
            _wait_exited(pid, 10.0)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


class ServerProcess(BatchdProcess):
    """A real `batchd serve` process on a free loopback port: ready once `/health` answers."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,  # run in the child before batchd (e.g. setrlimit)
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.env = child_env({"BATCHD_LOG_LEVEL": "warning", **(env or {})})
        self.preexec = preexec
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def app_pid(self) -> int:
        """The process that runs the app, the engine and the store: the one worker that `batchd
        serve` (granian's main process, which only holds the port) starts. Measure this one."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        assert len(children) == 1, f"batchd serve has {len(children)} child processes, not one"
        return int(children[0])

    def start(self) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "batchd",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=self.preexec,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"batchd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"batchd did not start within {STARTUP_TIMEOUT}s:\n{self.log()}")


class WorkerProcess(BatchdProcess):
    """A real `batchd worker` process (no HTTP port): ready once it logs that it is."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = child_env({**(env or {}), "BATCHD_LOG_LEVEL": "info"})  # readiness is read from the log
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "worker.log"

    def start(self, wait: bool = True) -> WorkerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        starts = self.log().count("ready (store")
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "batchd", "worker"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while wait and self.log().count("ready (store") == starts:
            if self.proc.poll() is not None:
                raise RuntimeError(f"batchd worker exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"batchd worker did not start within {STARTUP_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.05)
        return self
