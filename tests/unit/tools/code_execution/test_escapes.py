"""Escape attempts: each is contained, with the right error or return code, and the host is fine."""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest

from batchd.tools.code_execution import seccomp
from batchd.tools.code_execution.sandbox import Sandbox
from tests.unit.tools.code_execution.conftest import (
    SECRET,
    SandboxFactory,
    new_marker,
    processes_with,
    py,
    sh,
    sleeper,
)


async def test_no_network_host_loopback_is_unreachable(sandbox: Sandbox, home: Path) -> None:
    accepted: list[object] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        code = (
            "import socket\n"
            "print(socket.if_nameindex())\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    print('connected')\n"
            "except OSError as exc:\n"
            "    print(type(exc).__name__)\n"
        )
        done = await py(sandbox, home, code)
    finally:
        server.close()
        await server.wait_closed()
    assert done.stdout == "[(1, 'lo')]\nConnectionRefusedError\n"  # its own loopback, nothing listening
    assert accepted == []


async def test_no_network_outside_addresses_are_unroutable(sandbox: Sandbox, home: Path) -> None:
    # A UDP connect() only looks the route up: no packet leaves, whatever the outcome.
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n"
        "    s.connect(('192.0.2.1', 53))\n"
        "    print('routed')\n"
        "except OSError as exc:\n"
        "    print(exc.strerror)\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 443)\n"
        "    print('resolved')\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    done = await py(sandbox, home, code)
    assert done.stdout == "Network is unreachable\ngaierror\n"


async def test_etc_shadow_is_absent_and_etc_holds_only_harmless_files(sandbox: Sandbox, home: Path) -> None:
    done = await sh(sandbox, home, "cat /etc/shadow; echo rc=$?; ls /etc")
    assert "No such file or directory" in done.stderr
    assert done.stdout.splitlines()[0] == "rc=1"
    assert set(done.stdout.splitlines()[1:]) <= {
        "alternatives", "group", "hosts", "ld.so.cache", "localtime", "mime.types", "nsswitch.conf", "passwd"
    }  # fmt: skip


async def test_batchd_database_and_config_beside_the_homes_are_invisible(
    sandbox: Sandbox, home: Path, base: Path
) -> None:
    code = (
        "import os\n"
        f"for path in {[str(base / 'batchd.db'), str(base / 'batchd.toml'), str(base)]!r}:\n"
        "    print(os.path.exists(path))\n"
        "found = []\n"
        "for top, dirs, files in os.walk('/'):\n"
        "    if top in ('/proc', '/usr', '/dev'):\n"
        "        dirs[:] = []\n"
        "    found += [f for f in files if f.startswith('batchd')]\n"
        "print(found)\n"
    )
    done = await py(sandbox, home, code)
    assert done.stdout == "False\nFalse\nFalse\n[]\n"
    assert (
        await sh(sandbox, home, "grep -rs sk-ant- /workspace /tmp /outputs /etc; echo $?")
    ).stdout == "1\n"


async def test_the_host_environment_never_reaches_the_sandbox(
    sandbox: Sandbox, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("BATCHD_API_KEYS", SECRET)
    done = await sh(sandbox, home, "env; cat /proc/*/environ | tr '\\0' '\\n'; cat /proc/1/cmdline")
    assert done.return_code == 0
    assert SECRET not in done.stdout
    assert "ANTHROPIC" not in done.stdout and "BATCHD" not in done.stdout
    assert str(sandbox.root) not in done.stdout.split("PATH=")[0]  # bubblewrap's arguments are hidden too


async def test_nothing_is_writable_but_workspace_tmp_and_outputs(sandbox: Sandbox, home: Path) -> None:
    script = (
        "for p in /x /etc/x /etc/passwd /usr/x /usr/bin/x /opt/x /dev/x /bin/x /proc/x; do"
        ' (echo x > "$p") 2>/dev/null && echo "wrote $p"; done;'
        " echo ok > /workspace/w && echo ok > /tmp/t && echo ok > /outputs/o && echo writable"
    )
    done = await sh(sandbox, home, script)
    assert done.stdout == "writable\n"
    assert [(home / d / f).read_text() for d, f in (("work", "w"), ("tmp", "t"), ("outputs", "o"))] == [
        "ok\n"
    ] * 3


async def test_a_fork_bomb_is_contained_by_the_process_limit(make_sandbox: SandboxFactory) -> None:
    sandbox = make_sandbox(wall_seconds=3.0)
    home = sandbox.create_home("container_bomb")
    marker = f"bomb{secrets.token_hex(4)}"
    started = time.monotonic()
    bomb = asyncio.ensure_future(sh(sandbox, home, f": {marker}; b() {{ b | b & }}; b; sleep 5"))
    await asyncio.sleep(1.0)
    # Meanwhile another sandbox, and the host, still start programs.
    other = await sandbox.run(sandbox.create_home("container_other"), ["python3", "-c", "print('fine')"])
    assert other.stdout == "fine\n"
    assert subprocess.run(["true"], check=False).returncode == 0
    done = await bomb
    assert time.monotonic() - started < 3.0 + 6.0
    assert done.return_code != 0 or done.timed_out
    assert processes_with(marker) == []


async def test_the_process_limit_counts_per_sandbox(sandbox: Sandbox, home: Path) -> None:
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(100):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(2)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError as exc:\n"
        "    print(n, exc.strerror)\n"
    )
    first, second = await asyncio.gather(py(sandbox, home, code), py(sandbox, home, code))
    # 32 processes: bubblewrap's init and the program are two of them; two sandboxes at once each get theirs.
    assert first.stdout == second.stdout == "30 Resource temporarily unavailable\n"


async def test_a_memory_bomb_fails_with_memory_error(sandbox: Sandbox, home: Path) -> None:
    done = await py(sandbox, home, "blocks = []\nwhile True:\n    blocks.append(bytearray(64 << 20))\n")
    assert done.return_code == 1
    assert done.stderr.splitlines()[-1] == "MemoryError"
    # Memory is limited per process: should sandboxes together exhaust the host's, the OOM
    # killer takes them first.
    done = await sh(
        sandbox, home, "cat /proc/self/oom_score_adj; nice; renice -n 0 -p $$ >/dev/null 2>&1; nice"
    )
    assert done.stdout == "1000\n10\n10\n"  # and behind batchd for the CPU, for good


async def test_an_infinite_loop_is_stopped_by_the_cpu_limit(make_sandbox: SandboxFactory) -> None:
    sandbox = make_sandbox(
        cpu_seconds=1.0, wall_seconds=60.0
    )  # niced, on a busy machine 1 s of CPU takes long
    home = sandbox.create_home("container_loop")
    done = await sandbox.run(home, ["python3", "-c", "while True: pass"])
    assert done.return_code == 128 + 24  # SIGXCPU
    assert not done.timed_out
    done = await sh(sandbox, home, "while :; do :; done")
    assert done.return_code == 128 + 24


async def test_100_mb_of_output_is_truncated_and_costs_batchd_little_memory(
    sandbox: Sandbox, home: Path
) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    done = await sh(
        sandbox, home, "head -c 100000000 /dev/zero | tr '\\0' a; head -c 100000000 /dev/zero >&2"
    )
    assert done.return_code == 0 and done.truncated
    assert done.stdout.endswith("wrote 100,000,000 bytes here; the first 65,536 are kept]\n")
    assert len(done.stdout) < (64 << 10) + 200 and len(done.stderr) < (64 << 10) + 200
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 32 << 10  # KiB
    assert time.monotonic() - started < 30  # 0.3 s here when idle; niced, a busy machine slows it


async def test_sleeping_past_the_wall_limit_is_killed_with_all_its_processes(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = make_sandbox(wall_seconds=1.5)
    home = sandbox.create_home("container_sleep")
    marker = new_marker()
    started = time.monotonic()
    script = f"echo started; (setsid bash -c '{sleeper(marker)}' &); {sleeper(marker)} & {sleeper(marker)}"
    running = asyncio.ensure_future(sh(sandbox, home, script))
    await asyncio.sleep(0.7)
    assert processes_with(marker) != []
    assert sandbox.processes() != []  # its bubblewrap, found by the root's marker
    done = await running
    assert 1.5 <= time.monotonic() - started < 6
    assert done.timed_out and done.return_code == 137
    assert done.stdout == "started\n"
    assert done.stderr == "[the program was stopped after 1.5 s: the wall-clock limit]\n"
    assert processes_with(marker) == [] and sandbox.processes() == []


async def test_killing_its_parents_and_everything_it_sees_harms_no_host_process(
    sandbox: Sandbox, home: Path
) -> None:
    # A host process of the very uid the sandbox runs as: same user, other pid namespace.
    canary = subprocess.Popen(["sleep", "30"], user=65534, group=65534, extra_groups=[])
    try:
        done = await sh(sandbox, home, "kill -9 1; kill -9 $PPID; echo survived; ps -e --no-headers | wc -l")
        assert done.stdout.split() == ["survived", "4"]  # init, bash, ps, wc: it sees nothing else
        # kill(-1): every process it may signal but itself (and init, which ignores it).
        done = await sh(sandbox, home, "sleep 30 & sleep 31 & kill -9 -1; wait; echo after")
        assert (done.stdout, done.return_code, done.timed_out) == ("after\n", 0, False)
        assert canary.poll() is None
        assert (await sh(sandbox, home, "echo still serving")).stdout == "still serving\n"
    finally:
        canary.kill()
        canary.wait()


async def test_no_new_user_namespaces_privileges_or_capabilities(sandbox: Sandbox, home: Path) -> None:
    done = await sh(
        sandbox, home, "unshare -U true; echo $?; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"
    )
    assert done.stdout.split() == ["1", "CapEff:", "0000000000000000", "NoNewPrivs:", "1"]


@pytest.mark.skipif(
    platform.machine() not in seccomp.TABLES, reason="no seccomp filter for this architecture"
)
async def test_the_seccomp_filter_refuses_risky_system_calls_and_vsock(sandbox: Sandbox, home: Path) -> None:
    _, _, numbers = seccomp.TABLES[platform.machine()]
    code = (
        "import ctypes, os, socket\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"for name, nr in {sorted(numbers.items())!r}:\n"
        "    result = libc.syscall(nr, 0, 0, 0, 0, 0)\n"
        "    print(name, result, os.strerror(ctypes.get_errno()))\n"
        "print('getpid', os.getpid())\n"
        "for family in (socket.AF_VSOCK, socket.AF_UNIX):\n"
        "    try:\n"
        "        socket.socket(family, socket.SOCK_STREAM).close()\n"
        "        print(family.name, 'created')\n"
        "    except OSError as exc:\n"
        "        print(family.name, exc.strerror)\n"
    )
    done = await py(sandbox, home, code)
    lines = done.stdout.splitlines()
    assert lines[: len(numbers)] == [f"{name} -1 Operation not permitted" for name in sorted(numbers)]
    assert lines[len(numbers) :] == [
        "getpid 2",  # the rest works: the program is pid 2 of its namespace
        "AF_VSOCK Address family not supported by protocol",
        "AF_UNIX created",
    ]
    assert seccomp.program("riscv64") is None


async def test_file_size_open_files_and_shm_are_limited(sandbox: Sandbox, home: Path) -> None:
    code = (
        "import os\n"
        "try:\n"
        "    open('big', 'wb').write(b'x' * (5 << 20))\n"
        "except OSError as exc:\n"
        "    print(exc.strerror)\n"
        "files = []\n"
        "try:\n"
        "    while True:\n"
        "        files.append(open('/dev/null'))\n"
        "except OSError as exc:\n"
        "    print(len(files) < 64, exc.strerror)\n"
        "for f in files:\n"
        "    f.close()\n"
        "try:\n"
        "    for i in range(3):\n"  # 9 MiB in files under the 4 MiB file limit, on an 8 MiB /dev/shm
        "        open(f'/dev/shm/{i}', 'wb').write(b'x' * (3 << 20))\n"
        "except OSError as exc:\n"
        "    print(exc.strerror)\n"
    )
    done = await py(sandbox, home, code)
    assert done.stdout == "File too large\nTrue Too many open files\nNo space left on device\n"
    assert os.path.getsize(home / "work" / "big") == 4 << 20


def test_loopback_server_socket_still_binds_on_the_host() -> None:
    # The host's own networking is untouched by the sandboxes (sanity for the tests above).
    with socket.create_server(("127.0.0.1", 0)) as server:
        assert server.getsockname()[1] > 0


async def test_processes_left_in_the_background_end_with_the_program(sandbox: Sandbox, home: Path) -> None:
    marker = new_marker()
    started = time.monotonic()
    done = await sh(
        sandbox,
        home,
        f"({sleeper(marker)} &) ; nohup bash -c '{sleeper(marker)}' >/dev/null 2>&1 & echo quick",
    )
    assert (done.stdout, done.return_code, done.timed_out) == ("quick\n", 0, False)
    assert time.monotonic() - started < 10  # not the sleepers' 300 s
    assert processes_with(marker) == []


async def test_a_cancelled_run_leaves_no_process(sandbox: Sandbox, home: Path) -> None:
    marker = new_marker()
    task = asyncio.ensure_future(sh(sandbox, home, sleeper(marker)))
    await asyncio.sleep(0.5)
    assert processes_with(marker) != []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)
    assert processes_with(marker) == []
