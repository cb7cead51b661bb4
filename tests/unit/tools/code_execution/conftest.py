"""A real sandbox for each test: bubblewrap, real processes, small limits so the suite stays fast.

The sandbox's root sits in a directory of its own under /tmp (pytest's tmp_path is not
traversable by the sandbox user), beside files standing for batchd's database and config,
readable by anyone: only the sandbox can keep a program from them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batchd.tools.code_execution.sandbox import Execution, Limits, Sandbox

if shutil.which("bwrap") is None:
    pytest.skip("bubblewrap (bwrap) is not installed: apt-get install bubblewrap", allow_module_level=True)

LIMITS = Limits(
    cpu_seconds=2.0,
    wall_seconds=10.0,
    memory_bytes=512 << 20,
    processes=32,
    open_files=64,
    file_size_bytes=4 << 20,
    output_bytes=64 << 10,
    shm_bytes=8 << 20,
)
SECRET = "sk-ant-secret-of-the-host-0123456789"

SandboxFactory = Callable[..., Sandbox]


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory as batchd's data directory would be: the database, the config, the containers."""
    path = Path(tempfile.mkdtemp(prefix="batchd-sandbox-test-"))
    os.chmod(path, 0o755)
    (path / "batchd.db").write_text(f"the database {SECRET}\n")
    (path / "batchd.toml").write_text(f'api_keys = ["{SECRET}"]\n')
    for name in ("batchd.db", "batchd.toml"):
        os.chmod(path / name, 0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_sandbox(base: Path) -> SandboxFactory:
    """`make_sandbox(**limits)`: a sandbox over base/containers with LIMITS, some replaced."""

    def make(packages: Path | None = None, **limits: float) -> Sandbox:
        values = {**LIMITS.__dict__, **limits}
        return Sandbox(root=base / "containers", limits=Limits(**values), packages=packages)

    return make


@pytest.fixture
def sandbox(make_sandbox: SandboxFactory) -> Sandbox:
    return make_sandbox()


@pytest.fixture
def home(sandbox: Sandbox) -> Path:
    return sandbox.create_home("container_test")


async def sh(sandbox: Sandbox, home: Path, script: str) -> Execution:
    return await sandbox.run(home, ["bash", "-c", script])


async def py(sandbox: Sandbox, home: Path, code: str) -> Execution:
    return await sandbox.run(home, ["python3", "-"], stdin=code.encode())


def new_marker() -> str:
    """A name no other process on the machine has: a sandboxed `sleep` runs under it (`exec -a`)."""
    return f"batchd-test-sleeper-{secrets.token_hex(6)}"


def sleeper(marker: str, seconds: int = 300) -> str:
    """A bash command: `sleep` running as `marker`."""
    return f"(exec -a {marker} sleep {seconds})"


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found
