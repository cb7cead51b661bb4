"""The persistent Python REPL: state across cells, errors, limits, and its end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from batchd.tools.code_execution.sandbox import Repl, Sandbox, SandboxError
from tests.unit.tools.code_execution.conftest import SandboxFactory, new_marker, processes_with


@pytest.fixture
async def repl(sandbox: Sandbox, home: Path) -> AsyncIterator[Repl]:
    started = await sandbox.start_repl(home)
    yield started
    await started.close()


async def test_variables_functions_and_imports_survive_between_cells(repl: Repl) -> None:
    assert (
        await repl.run_cell("import math\ndata = [1, 2, 3]\ndef total(xs):\n    return sum(xs)")
    ).stdout == ""
    done = await repl.run_cell("data.append(4)\nprint(total(data), math.sqrt(16))")
    assert (done.stdout, done.stderr, done.return_code) == ("10 4.0\n", "", 0)
    assert (await repl.run_cell("class P:\n    pass\np = P()\np.x = 5")).return_code == 0
    assert (await repl.run_cell("p.x * 2")).stdout == "10\n"  # a last expression is shown
    assert (await repl.run_cell("None")).stdout == ""
    assert repl.alive


async def test_an_exception_prints_its_traceback_and_keeps_the_state(repl: Repl) -> None:
    await repl.run_cell("x = 1")
    done = await repl.run_cell("y = 2\n1 / 0")
    assert done.return_code == 1 and done.stdout == ""
    assert done.stderr.startswith('Traceback (most recent call last):\n  File "<cell 2>", line 2')
    assert done.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert (
        "repl_driver" not in done.stderr and "<string>" not in done.stderr
    )  # the driver's frames are left out
    done = await repl.run_cell("print(x, y)")
    assert (done.stdout, done.return_code) == ("1 2\n", 0)


async def test_a_syntax_error(repl: Repl) -> None:
    done = await repl.run_cell("def broken(:\n    pass")
    assert done.return_code == 1 and "SyntaxError" in done.stderr
    assert repl.alive


async def test_system_exit_gives_its_code_and_the_repl_goes_on(repl: Repl) -> None:
    assert (await repl.run_cell("import sys\nsys.exit(3)")).return_code == 3
    assert (await repl.run_cell("sys.exit()")).return_code == 0
    done = await repl.run_cell("sys.exit('bad input')")
    assert (done.return_code, done.stderr) == (1, "bad input\n")
    assert (await repl.run_cell("print(sys.platform)")).stdout == "linux\n"


async def test_output_of_subprocesses_and_stdin_of_cells(repl: Repl) -> None:
    code = "import os, subprocess\nos.system('echo from a shell')\n"
    code += "subprocess.run(['echo', 'and a child'])\nprint('done')"
    done = await repl.run_cell(code)
    assert done.stdout == "from a shell\nand a child\ndone\n"
    done = await repl.run_cell("input()")
    assert done.return_code == 1 and "EOFError" in done.stderr
    done = await repl.run_cell("import sys\nsys.stdout.write('no newline')")
    assert done.stdout == "no newline10\n"  # write()'s value is the last expression


async def test_a_cell_past_the_wall_limit_ends_the_repl(make_sandbox: SandboxFactory) -> None:
    sandbox = make_sandbox(wall_seconds=1.5)
    home = sandbox.create_home("container_slow")
    repl = await sandbox.start_repl(home)
    marker = new_marker()
    await repl.run_cell("x = 1")
    started = time.monotonic()
    code = f"import subprocess, time\nsubprocess.Popen(['{marker}', '300'], executable='sleep')\n"
    done = await repl.run_cell(code + "print('before')\ntime.sleep(60)")
    assert 1.5 <= time.monotonic() - started < 6
    assert done.timed_out and done.return_code == 137 and done.stdout == "before\n"
    assert done.stderr == (
        "[the cell was stopped after 1.5 s: the wall-clock limit; the REPL stopped, its variables are lost]\n"
    )
    assert not repl.alive
    assert processes_with(marker) == []
    with pytest.raises(SandboxError):
        await repl.run_cell("x")
    await repl.close()
    await repl.close()


async def test_the_cpu_limit_is_per_cell(make_sandbox: SandboxFactory) -> None:
    sandbox = make_sandbox(
        cpu_seconds=1.0, wall_seconds=60.0
    )  # niced, on a busy machine 1 s of CPU takes long
    repl = await sandbox.start_repl(sandbox.create_home("container_cpu"))
    burn = "import time\nend = time.process_time() + 0.7\nwhile time.process_time() < end:\n    pass"
    for _ in range(3):  # 2.1 s in all: each cell has its own second
        assert (await repl.run_cell(burn)).return_code == 0
    done = await repl.run_cell("while True:\n    pass")
    assert done.return_code == 128 + 24 and not done.timed_out  # SIGXCPU
    assert "more than its 1 s of CPU time" in done.stderr
    assert not repl.alive
    await repl.close()


async def test_a_process_that_exits_ends_the_repl(repl: Repl) -> None:
    done = await repl.run_cell("import os\nprint('bye', flush=True)\nos._exit(7)")
    assert (done.stdout, done.return_code) == ("bye\n", 7)
    assert "exited with code 7" in done.stderr
    assert not repl.alive


async def test_memory_error_in_a_cell_keeps_the_repl(repl: Repl) -> None:
    await repl.run_cell("kept = 'yes'")
    done = await repl.run_cell("big = bytearray(2 << 30)")
    assert done.return_code == 1 and done.stderr.rstrip().endswith("MemoryError")
    assert (await repl.run_cell("kept")).stdout == "'yes'\n"


async def test_output_is_capped_per_cell(repl: Repl) -> None:
    done = await repl.run_cell("print('z' * 200_000)")
    assert done.truncated and done.stdout.endswith("the first 65,536 are kept]\n")
    done = await repl.run_cell("print('small')")
    assert (done.stdout, done.truncated) == ("small\n", False)


async def test_cells_sent_at_once_run_one_after_the_other(repl: Repl) -> None:
    await repl.run_cell("n = 0")
    cells = [repl.run_cell("n += 1\nprint(n)") for _ in range(5)]
    outputs = sorted(done.stdout for done in await asyncio.gather(*cells))
    assert outputs == ["1\n", "2\n", "3\n", "4\n", "5\n"]


async def test_a_repl_that_cannot_start_raises(base: Path) -> None:
    sandbox = Sandbox(root=base / "c", packages=base / "missing")
    with pytest.raises(SandboxError, match="did not start"):
        await sandbox.start_repl(sandbox.create_home("container_x"))


async def test_a_cancelled_cell_ends_the_repl(repl: Repl) -> None:
    marker = new_marker()
    task = asyncio.ensure_future(
        repl.run_cell(f"import subprocess\nsubprocess.run(['{marker}', '300'], executable='sleep')")
    )
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not repl.alive
    await repl.close()
    assert processes_with(marker) == []
