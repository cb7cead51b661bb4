"""Programs in the sandbox: Python and bash, their output, return codes, files and environment."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from batchd.tools.code_execution.sandbox import Limits, Sandbox, SandboxError
from tests.unit.tools.code_execution.conftest import LIMITS, SandboxFactory, py, sh


async def test_python_program_answers_on_stdout_and_stderr_with_its_exit_code(
    sandbox: Sandbox, home: Path
) -> None:
    code = "import statistics, sys\nxs = [2, 4, 4, 4, 5, 5, 7, 9]\n"
    code += "print(statistics.mean(xs), statistics.pstdev(xs))\nprint('warn', file=sys.stderr)\nsys.exit(3)\n"
    done = await py(sandbox, home, code)
    assert (done.stdout, done.stderr, done.return_code) == ("5 2.0\n", "warn\n", 3)
    assert not done.timed_out and not done.truncated


async def test_bash_program(sandbox: Sandbox, home: Path) -> None:
    done = await sh(sandbox, home, "echo $((17 * 23)); pwd; cd /tmp && pwd; echo oops >&2; false")
    assert done.stdout == "391\n/workspace\n/tmp\n"
    assert done.stderr == "oops\n"
    assert done.return_code == 1


async def test_python_c_and_python_name(sandbox: Sandbox, home: Path) -> None:
    done = await sh(
        sandbox, home, "python -c 'print(17*23)' && python3 -c 'import sys; print(sys.version_info[0])'"
    )
    assert (done.stdout, done.return_code) == ("391\n3\n", 0)


async def test_a_program_killed_by_a_signal_returns_128_plus_its_number(sandbox: Sandbox, home: Path) -> None:
    assert (await sh(sandbox, home, "kill -TERM $$")).return_code == 128 + 15
    assert (await sh(sandbox, home, "kill -KILL $$")).return_code == 128 + 9


async def test_stdin_is_empty_unless_given(sandbox: Sandbox, home: Path) -> None:
    done = await sandbox.run(home, ["python3", "-c", "import sys; print(repr(sys.stdin.read()))"])
    assert done.stdout == "''\n"
    big = b"x" * (3 << 20)  # more than a pipe holds: written while the output is read
    done = await sandbox.run(
        home, ["python3", "-c", "import sys; print(len(sys.stdin.buffer.read()))"], stdin=big
    )
    assert done.stdout == f"{len(big)}\n"


async def test_files_persist_in_the_home_between_programs(sandbox: Sandbox, home: Path) -> None:
    await sh(sandbox, home, "echo kept > notes.txt; mkdir -p data && echo 1,2 > data/t.csv")
    done = await sh(sandbox, home, "cat notes.txt data/t.csv")
    assert done.stdout == "kept\n1,2\n"
    assert (home / "work" / "notes.txt").read_text() == "kept\n"
    assert (home / "work" / "notes.txt").stat().st_uid == 65534  # the sandbox user, not root


async def test_the_environment_is_fixed(sandbox: Sandbox, home: Path) -> None:
    done = await sandbox.run(
        home, ["python3", "-c", "import os, pwd; print(sorted(os.environ)); print(os.getcwd())"]
    )
    names, cwd = done.stdout.splitlines()
    assert eval(names) == [
        "HOME", "LANG", "OUTPUT_DIR", "PATH", "PWD", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "TMPDIR"
    ] or eval(names) == [
        "HOME", "LANG", "OUTPUT_DIR", "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "TMPDIR"
    ]  # fmt: skip
    assert cwd == "/workspace"
    done = await sh(sandbox, home, 'id -un; echo "$HOME $OUTPUT_DIR $TMPDIR"; hostname')
    assert done.stdout == "sandbox\n/workspace /outputs /tmp\nsandbox\n"


async def test_operator_packages_are_importable_and_read_only(
    make_sandbox: SandboxFactory, base: Path
) -> None:
    packages = base / "packages"
    packages.mkdir(mode=0o755)
    (packages / "hello_pkg.py").write_text("GREETING = 'hello from the operator'\n")
    os.chmod(packages / "hello_pkg.py", 0o644)
    sandbox = make_sandbox(packages=packages)
    home = sandbox.create_home("container_pkg")
    done = await sh(
        sandbox, home, "python3 -c 'import hello_pkg; print(hello_pkg.GREETING)'; touch /opt/packages/x"
    )
    assert done.stdout == "hello from the operator\n"
    assert "Read-only file system" in done.stderr
    assert not (packages / "x").exists()
    repl = await sandbox.start_repl(home)  # started with -I, the REPL puts PYTHONPATH back itself
    try:
        assert (
            await repl.run_cell("import hello_pkg\nhello_pkg.GREETING")
        ).stdout == "'hello from the operator'\n"
    finally:
        await repl.close()


async def test_outputs_lists_regular_files_only(sandbox: Sandbox, home: Path) -> None:
    script = (
        'cd "$OUTPUT_DIR" && echo report > a.txt && printf "\\x00\\xff" > b.bin'
        " && mkdir sub && echo x > sub/c && ln -s /etc/passwd passwd && mkfifo pipe && ln -s a.txt alias"
    )
    assert (await sh(sandbox, home, script)).return_code == 0
    assert sandbox.outputs(home) == [("a.txt", b"report\n"), ("b.bin", b"\x00\xff")]
    sandbox.clear_outputs(home)
    assert os.listdir(home / "outputs") == []
    assert Path("/etc/passwd").read_text().startswith("root:")  # the link's target is untouched


async def test_an_output_symlink_to_a_host_file_is_not_read(sandbox: Sandbox, home: Path, base: Path) -> None:
    # The link is made on the host side of the home, as a program cannot: the worst case.
    (home / "outputs" / "db").symlink_to(base / "batchd.db")
    (home / "outputs" / "passwd").symlink_to("/etc/passwd")
    assert sandbox.outputs(home) == []
    sandbox.clear_outputs(home)
    assert (base / "batchd.db").exists() and Path("/etc/passwd").exists()


async def test_an_output_is_read_up_to_the_file_size_limit(make_sandbox: SandboxFactory) -> None:
    sandbox = make_sandbox(file_size_bytes=1000)
    home = sandbox.create_home("container_big")
    done = await sh(sandbox, home, 'head -c 5000 /dev/zero > "$OUTPUT_DIR/big"; echo $?')
    assert done.stdout.strip() != "0"  # RLIMIT_FSIZE stopped the write
    ((name, data),) = sandbox.outputs(home)
    assert name == "big" and len(data) == 1000


async def test_output_past_the_cap_is_read_dropped_and_said_so(sandbox: Sandbox, home: Path) -> None:
    done = await py(sandbox, home, "import sys\nsys.stdout.write('é' * 100_000)\nsys.stderr.write('e' * 10)")
    assert done.truncated and done.return_code == 0
    kept, note = done.stdout.rsplit("\n", 2)[0], done.stdout.rsplit("\n", 2)[1]
    assert set(kept) == {"é"} and len(kept.encode()) <= LIMITS.output_bytes
    assert note == "[output truncated: the program wrote 200,000 bytes here; the first 65,536 are kept]"
    assert done.stderr == "e" * 10


def test_limits_must_be_positive() -> None:
    assert Limits(cpu_seconds=0.5).prlimit("/usr/bin/prlimit")[-2:] == ["--cpu=1:2", "--"]
    assert not any(a.startswith("--cpu") for a in Limits().prlimit("/usr/bin/prlimit", cpu=False))
    for field in ("cpu_seconds", "wall_seconds", "memory_bytes", "processes", "output_bytes"):
        with pytest.raises(ValueError, match=field):
            Limits(**{field: 0})


def test_homes_are_listed_created_and_removed(sandbox: Sandbox, base: Path) -> None:
    home = sandbox.create_home("container_a")
    sandbox.create_home("container_b")
    for name in ("work", "outputs", "tmp"):
        st = (home / name).stat()
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == 65534 and stat.S_IMODE(st.st_mode) == 0o700
    assert stat.S_IMODE((base / "containers").stat().st_mode) == 0o710
    assert sandbox.homes() == ["container_a", "container_b"]  # the probe's and .etc are not homes
    sandbox.remove_home("container_a")
    sandbox.remove_home("container_a")
    assert sandbox.homes() == ["container_b"]
    for bad in ("../x", "", ".etc", "a/b", "x" * 200):
        with pytest.raises(ValueError):
            sandbox.create_home(bad)


def test_removing_a_home_never_follows_its_links(sandbox: Sandbox, base: Path) -> None:
    home = sandbox.create_home("container_links")
    outside = base / "keep"
    outside.mkdir()
    (outside / "precious").write_text("x")
    (home / "work" / "dir-link").symlink_to(outside)
    (home / "work" / "file-link").symlink_to(outside / "precious")
    locked = home / "work" / "locked" / "deeper"
    locked.mkdir(parents=True)
    (locked / "f").write_text("y")
    os.chmod(locked, 0)
    os.chmod(locked.parent, 0o500)
    sandbox.remove_home("container_links")
    assert not home.exists()
    assert (outside / "precious").read_text() == "x"


def test_probe_runs_a_program(sandbox: Sandbox) -> None:
    assert sandbox.probe() is None
    assert sandbox.homes() == [] and sandbox.processes() == []


def test_each_root_has_its_own_marker(base: Path) -> None:
    one, two = Sandbox(root=base / "one"), Sandbox(root=base / "two")
    assert one.marker != two.marker and one.marker == Sandbox(root=base / "one").marker
    assert str(base) not in one.marker


def test_probe_says_why_not(base: Path) -> None:
    assert "not found" in (Sandbox(root=base / "c", bwrap="no-such-bwrap").probe() or "")
    assert "under /usr" in (Sandbox(root=base / "c", python="/opt/python3").probe() or "")
    missing = Sandbox(root=base / "c", packages=base / "no-such-dir").probe() or ""
    assert "no-such-dir" in missing
    private = base / "private"
    private.mkdir(mode=0o700)
    reason = Sandbox(root=private / "containers" / "c").probe() or ""
    assert reason == (
        f"the sandbox user (uid 65534) cannot reach {private}/containers/c: {private} is not searchable "
        "by it (chmod o+x, or put the containers' directory elsewhere)"
    )
    os.chmod(private, 0o711)  # search is enough
    assert Sandbox(root=private / "containers" / "c").probe() is None


async def test_a_sandbox_that_cannot_start_raises(base: Path) -> None:
    sandbox = Sandbox(root=base / "c", packages=base / "no-such-dir")
    home = sandbox.create_home("container_x")
    with pytest.raises(SandboxError, match="no-such-dir"):
        await sandbox.run(home, ["true"])
    with pytest.raises(SandboxError, match="not found"):
        Sandbox(root=base / "d", bwrap="no-such-bwrap").create_home("container_y")
