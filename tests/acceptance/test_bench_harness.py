"""`python -m bench`: which scenarios run at which size, and that every outcome of a scenario process
(rows, an exception, a missing module, a hang) ends as rows while the run goes on. No timings here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench import __main__ as harness
from bench.common import Row, table

from tests.acceptance.server import free_port

ROW = "Row(scenario=f'fake {n}', batchd=str(kw), compared='—', ratio='—', target='t', met=True)"
MODULES = {
    "fake_ok": f"from bench.common import Row\ndef run(n, **kw):\n    return [{ROW}]\n",
    "fake_fail": "def run(n):\n    raise ValueError('upstream is down')\n",
    "fake_wrong": "def run(n):\n    return {'rows': []}\n",
    "fake_missing_dep": "import no_such_dependency_xyz\n",
    # A scenario that starts a server of its own and then hangs: the timeout must end both.
    "fake_hang": (
        "import pathlib, subprocess, sys, time\n"
        "def run(n):\n"
        "    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "    pathlib.Path({out!r}).write_text(str(child.pid))\n"
        "    time.sleep(120)\n"
    ),
}


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "fakes"
    pkg.mkdir()
    for name, source in MODULES.items():
        (pkg / f"{name}.py").write_text(source.replace("{out!r}", repr(str(tmp_path / "server.pid"))))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pkg), os.environ.get("PYTHONPATH", "")]))
    return tmp_path


def job(module: str, n: int = 3, **kwargs: object) -> harness.Job:
    return harness.Job(["fake"], harness.Scenario(module, "fake scenario", "fast", 1, 2), n, dict(kwargs))


def test_create_and_e2e_share_one_job_and_profiles_set_sizes() -> None:
    jobs = harness.jobs(["create", "e2e", "postgres"], "quick", {})
    assert [(j.names, j.n, j.kwargs) for j in jobs] == [
        (["create", "e2e"], 10_000, {"parts": ["create", "e2e"]}),
        (["postgres"], 10_000, {}),
    ]
    assert harness.jobs(["llamacpp"], "quick", {})[0].kwargs == {"rounds": 1}
    assert harness.jobs(["llamacpp"], "full", {})[0].kwargs == {}
    (only,) = harness.jobs(["e2e"], "full", {"e2e": 500})
    assert (only.names, only.n, only.kwargs) == (["e2e"], 500, {"parts": ["e2e"]})
    assert [j.n for j in harness.jobs(list(harness.SCENARIOS), "full", {})] == [
        100_000,
        10_000,
        256,
        100_000,
        100_000,
        100_000,
        100_000,  # search: documents in the index
        300,  # tools: search-and-answer requests on llama.cpp
        300,  # code: sandboxed round trips of each kind
        50_000,  # openai: lines of the OpenAI wire's batch
        300,  # stream: streamed calls, each sent to batchd and to llama.cpp
        1_000_000,  # scale: requests queued
        1_000_000,  # fairness: requests queued
        2_000,  # adaptive: the batch on llama.cpp
    ]


def test_arguments_are_checked() -> None:
    args = harness.parse_args(["--full", "--only", "create,postgres", "--size", "postgres=2000"])
    assert (args.profile, args.names, args.sizes) == ("full", ["create", "postgres"], {"postgres": 2000})
    assert harness.parse_args([]).profile == "quick"
    for bad in (["--only", "create,nope"], ["--size", "create=lots"], ["--quick", "--full"]):
        with pytest.raises(SystemExit):
            harness.parse_args(bad)


def test_a_scenario_process_gives_its_rows(fakes: Path) -> None:
    (row,) = harness.run_job(job("fake_ok", 7, parts=["e2e"]), timeout=60)
    assert row == Row("fake 7", "{'parts': ['e2e']}", "—", "—", "t", True)


@pytest.mark.parametrize(
    ("module", "why"),
    [
        ("fake_fail", "failed: ValueError: upstream is down"),
        ("fake_wrong", "failed: TypeError: fake_wrong.run() returned dict, not a list of Row"),
        ("fake_missing_dep", "not available: no_such_dependency_xyz is not installed"),
        ("fake_not_written_yet", "not available: fake_not_written_yet.py does not exist"),
    ],
)
def test_a_scenario_that_cannot_run_gives_a_row_saying_so(fakes: Path, module: str, why: str) -> None:
    (row,) = harness.run_job(job(module), timeout=60)
    assert row == Row("fake scenario, 3 requests", why, "—", "—", "fast", None)


def test_a_hung_scenario_is_stopped_with_the_processes_it_started(fakes: Path) -> None:
    (row,) = harness.run_job(job("fake_hang"), timeout=3)
    assert row.batchd == "failed: still running after 3 s, stopped"
    server = int((fakes / "server.pid").read_text())
    deadline = time.monotonic() + 10
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server)


def test_interrupting_the_run_stops_the_scenario_and_its_processes(fakes: Path) -> None:
    script = (
        "from bench import __main__ as h\n"
        "h.run_job(h.Job(['fake'], h.Scenario('fake_hang', 'fake', 't', 1, 2), 3, {}), timeout=60)\n"
    )
    harness_proc = subprocess.Popen([sys.executable, "-c", script], cwd=harness.ROOT)
    pid_file = fakes / "server.pid"
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    server = int(pid_file.read_text())
    harness_proc.send_signal(signal.SIGINT)  # what Ctrl-C sends, to the harness's group only
    assert harness_proc.wait(30) != 0
    deadline = time.monotonic() + 10
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server)


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_the_report_keeps_the_notes_written_under_what_limits_it() -> None:
    machine = harness.Machine({"CPU": "test CPU, 2 cores"}, 1.0, "2026-01-01 00:00 UTC", 90.0, 2.0)
    rows = [Row("create | 10", "1 s", "limit 1 s", "1.00×", "≤ 1.5× limit", True)]
    first = harness.render("python -m bench", machine, rows, {"bench.create_e2e"}, previous="")
    assert "- CPU: test CPU, 2 cores" in first and "1.5 minutes" in first
    assert table(rows) in first and "create \\| 10" in first  # a pipe would split the cell
    assert "### `bench/create_e2e.py`" in first
    assert harness.NOTES_PLACEHOLDER.splitlines()[0] in first and "Other load: not measured" in first
    noted = first.replace(harness.NOTES_PLACEHOLDER, "Create is bound by the SDK's own JSON encoding.\n")
    machine.others = 0.25
    second = harness.render("python -m bench --full", machine, rows, set(), previous=noted)
    assert "the rest of the machine kept 0.25 of the" in second
    assert second.endswith("## What limits it\n\nCreate is bound by the SDK's own JSON encoding.\n")
    assert "`python -m bench --full`" in second


def test_the_command_line_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"  # nothing listens there
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "postgres", "--size", "postgres=5", "--out", str(out)],
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "BATCHD_BENCH_POSTGRES_URL": nowhere},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    row = f"| PostgreSQL | not run: no PostgreSQL at {nowhere} (ConnectionRefusedError) | — | — | — | — |"
    assert proc.stdout.strip().splitlines()[-1] == row
    report = out.read_text()
    assert row in report and "- PostgreSQL: not reachable (ConnectionRefusedError)" in report
    assert "python -m bench --only postgres --size postgres=5 --out" in report


def test_the_create_and_end_to_end_scenario_runs_against_a_real_server() -> None:
    from bench import create_e2e

    create, memory, e2e = create_e2e.run(30)
    assert create.scenario.startswith("create 30 requests (") and create.compared.startswith("limit ")
    assert memory.met is None and "judged from 50,000 requests" in memory.target  # too small to judge
    assert e2e.scenario == "end to end, zero-latency simulator, 30 requests" and "req/s" in e2e.batchd
    (only_e2e,) = create_e2e.run(10, parts=["e2e"])
    assert only_e2e.scenario == "end to end, zero-latency simulator, 10 requests"
