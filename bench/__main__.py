"""`python -m bench`: every benchmark scenario in one run, side by side with what it is compared with.

    python -m bench                  # the quick profile (~2 minutes)
    python -m bench --full           # the issue's sizes (≤ 15 minutes on 2 cores)
    python -m bench --only create,e2e --size create=2000 --out /dev/null

Each scenario runs in its own process (a crash or a hang costs its rows, not the run), one after the
other. Progress goes to stderr, the Markdown table to stdout and, with the machine it ran on, to
docs/benchmarks.md. A scenario that cannot run or fails gives a row saying so, and the run goes on.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, missing, table


@dataclass(frozen=True)
class Scenario:
    module: str
    title: str  # the row's scenario cell when it yields no figures
    target: str
    quick: int  # requests in each profile
    full: int
    unit: str = "requests"
    quick_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to run() in the quick profile


SCENARIOS = {
    # name: module, title, target, quick size, full size
    "create": Scenario(
        "bench.create_e2e", "create via the SDK", "≤ 1.5× limit; RSS ≤ 2× body", 10_000, 100_000
    ),
    "e2e": Scenario("bench.create_e2e", "end to end, simulator", "≥ 10,000 req/s", 10_000, 100_000),
    "llamacpp": Scenario(
        "bench.llamacpp",
        "end to end, llama.cpp",
        "≥ 0.9× raw; ahead of peer",
        2_000,
        10_000,
        quick_kwargs={"rounds": 1},  # full: the module default, 3 paired rounds (~4 of the ~8 minutes)
    ),
    "prefix": Scenario("bench.prefix", "shared prefixes, llama.cpp", "grouping measurably faster", 128, 256),
    "download": Scenario("bench.download", "results download", "≥ 200 MB/s, RSS flat", 10_000, 100_000),
    "latency": Scenario("bench.latency", "retrieve/list under load", "p99 ≤ 20 ms", 10_000, 100_000),
    "postgres": Scenario(
        "bench.postgres", "PostgreSQL, 1/2/4 workers", "scales with workers", 10_000, 100_000
    ),
    "search": Scenario(
        "bench.search",
        "server tools: local search, the loop's cost",
        "search p99 ≤ 20 ms; loop ≤ 5% of the wall time",
        20_000,
        100_000,
        unit="documents",
    ),
    "tools": Scenario(
        "bench.tools",
        "server tools on llama.cpp: search-and-answer vs a raw client",
        "batchd adds ≤ 5% of the wall time",
        100,
        300,
    ),
    "code": Scenario(
        "bench.code_execution",
        "code execution: sandbox start and round trip, 100 at once",
        "p50 ≤ 50 ms; 100 at once without a failure",
        100,
        300,
        unit="runs",
    ),
    "openai": Scenario(
        "bench.openai_wire",
        "OpenAI wire: upload, end to end, output download",
        "upload ≤ 1.5× limit, RSS ≤ 2× file; ≥ 10,000 lines/s; ≥ 200 MB/s",
        5_000,
        50_000,
        unit="lines",
    ),
    "stream": Scenario(
        "bench.stream",
        "time to first token of a streamed call through batchd vs llama.cpp's own",
        "p50 ≤ 1.1× llama.cpp + 5 ms",
        100,
        300,
        unit="calls",
    ),
    "scale": Scenario(
        "bench.scale",
        "1,000,000 queued: per-request cost, latency, size, space returned (SQLite and PostgreSQL)",
        "cost ≤ 1.2× at 10,000; retrieve/list p99 ≤ 20 ms; dashboard ≤ 100 ms; space returned",
        100_000,
        1_000_000,
    ),
    "fairness": Scenario(
        "bench.fairness",
        "fair shares and realtime first, simulator route 64 × 100 ms",
        "shares within 10%; small batch first result ≤ 1 s; realtime p99 ≤ 1.5× idle",
        100_000,
        1_000_000,
    ),
    "adaptive": Scenario(
        "bench.adaptive",
        "adaptive concurrency, llama.cpp: realtime latency under a batch, the batch's throughput",
        "realtime p99 ≤ 1.5× idle; batch ≥ 0.9× alone",
        1_000,
        2_000,
    ),
}
SCENARIO_ORDER = list(dict.fromkeys(s.module for s in SCENARIOS.values()))
TIMEOUT = {"quick": 300.0, "full": 720.0}  # seconds per scenario process


@dataclass
class Job:
    names: list[str]
    scenario: Scenario
    n: int
    kwargs: dict[str, Any]


def jobs(names: list[str], profile: str, sizes: dict[str, int]) -> list[Job]:
    out: list[Job] = []
    for name in names:
        sc = SCENARIOS[name]
        n = sizes.get(name, getattr(sc, profile))
        if name in ("create", "e2e"):
            # One module, one batch: created next to the limit, then run end to end.
            parts: list[str] = [p for p in ("create", "e2e") if p in names]
            if name != parts[0]:
                continue
            n = sizes.get(parts[0], sizes.get(parts[-1], n))
            both = dataclasses.replace(
                sc,
                title=" and ".join(SCENARIOS[p].title for p in parts),
                target="; ".join(SCENARIOS[p].target for p in parts),
            )
            out.append(Job(parts, both, n, {"parts": parts}))
        else:
            out.append(Job([name], sc, n, dict(sc.quick_kwargs) if profile == "quick" else {}))
    return out


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run_job(job: Job, timeout: float) -> list[Row]:
    """Run one scenario module in a child process; rows in every case."""
    with tempfile.TemporaryDirectory(prefix="batchd-bench-") as tmp:
        out = Path(tmp) / "rows.json"
        args = [job.scenario.module, str(job.n), json.dumps(job.kwargs), str(out)]
        # Its stdout joins our stderr: stdout carries only the table.
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench", "--child", *args],
            cwd=ROOT,
            stdout=sys.stderr,
            start_new_session=True,  # its own process group: a timeout ends it and its servers
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _end_group(proc)
            return [_missing(job, f"failed: still running after {timeout:.0f} s, stopped")]
        except BaseException:  # Ctrl-C reaches only our process group, not the scenario's
            _end_group(proc)
            raise
        if not out.exists():
            return [_missing(job, f"failed: the scenario process exited with code {proc.returncode}")]
        result = json.loads(out.read_text())
    if "unavailable" in result:
        return [_missing(job, f"not available: {result['unavailable']}")]
    if "error" in result:
        return [_missing(job, f"failed: {result['error']}")]
    return [Row.from_dict(r) for r in result["rows"]]


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _missing(job: Job, why: str) -> Row:
    return missing(f"{job.scenario.title}, {job.n:,} {job.scenario.unit}", why, job.scenario.target)


def child(module_name: str, n: int, kwargs: dict[str, Any], out: Path) -> int:
    """The scenario process: run `module.run(n, **kwargs)` and leave its rows as JSON in `out`."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            out.write_text(json.dumps({"unavailable": f"{module_name.replace('.', '/')}.py does not exist"}))
        else:
            out.write_text(json.dumps({"unavailable": f"{exc.name} is not installed"}))
        return 0
    try:
        rows = module.run(n, **kwargs)
        if not isinstance(rows, list) or not all(isinstance(r, Row) for r in rows):
            raise TypeError(f"{module_name}.run() returned {type(rows).__name__}, not a list of Row")
    except Exception as exc:
        traceback.print_exc()
        out.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:300]}))
        return 1
    out.write_text(json.dumps({"rows": [r.to_dict() for r in rows]}))
    return 0


@dataclass
class Machine:
    """What the figures were measured on, for the report's header."""

    facts: dict[str, str]
    load_start: float
    started: str
    seconds: float = 0.0
    load_end: float = 0.0
    others: float | None = None  # cores the rest of the machine kept busy during the run, on average
    _cpu: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def here(cls) -> Machine:
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        machine = cls(_facts(), os.getloadavg()[0], started)
        machine._cpu = _cpu_now()
        return machine

    def finish(self, seconds: float) -> None:
        self.seconds, self.load_end = seconds, os.getloadavg()[0]
        busy, ours = (end - start for end, start in zip(_cpu_now(), self._cpu, strict=True))
        if busy > 0 and seconds > 0:
            self.others = max(0.0, busy - ours) / seconds


def _cpu_now() -> tuple[float, float]:
    """CPU seconds the whole machine has been busy, and those of this process and its waited children."""
    try:
        jiffies = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return (0.0, 0.0)
    user, nice, system, _idle, _iowait, irq, softirq, steal = jiffies
    t = os.times()
    ours = t.user + t.system + t.children_user + t.children_system
    return ((user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"), ours)


def _facts() -> dict[str, str]:
    import platform
    import sqlite3
    from importlib import metadata

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    kib = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    try:
        from bench.postgres import server_version

        postgres = server_version()
    except Exception as exc:
        postgres = f"not reachable ({type(exc).__name__})"

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "CPU": f"{models[0] if models else platform.processor() or 'unknown'}, {os.cpu_count()} cores",
        "RAM": f"{kib / 1024**2:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": postgres,
        "Packages": (
            f"anthropic {version('anthropic')}, xllamacpp (llama.cpp) {version('xllamacpp')}, LiteLLM "
            + (litellm if (litellm := version("litellm")) != "not installed" else _litellm_own_venv())
        ),
        "Commit": _commit(),
    }


def _litellm_own_venv() -> str:
    try:  # the llama.cpp scenario's peer installs a pinned LiteLLM into a virtualenv of its own
        from bench import peer_litellm

        return f"{peer_litellm.PIN} (its own virtualenv, installed on first use)"
    except Exception:
        return "not installed"


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", "src", "bench").splitlines()
    if changed:
        return f"{commit} plus uncommitted changes to {len(changed)} file(s) under src/ and bench/"
    return commit


NOTES = "## What limits it"
NOTES_PLACEHOLDER = (
    "Notes on what bounds each figure on this machine go here. This section is kept as written when the\n"
    "file is regenerated.\n"
)


def _how(module_name: str) -> str:
    """How a scenario measures, from its module's docstring (usage lines left out)."""
    path = ROOT / (module_name.replace(".", "/") + ".py")
    try:  # read, not imported: the report needs no scenario's dependencies
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    except (OSError, SyntaxError):
        return ""
    paragraphs = [p for p in doc.strip().split("\n\n") if not p.startswith("    ")]
    return "\n\n".join(paragraphs).strip()


def render(command: str, machine: Machine, rows: list[Row], modules: set[str], previous: str) -> str:
    facts = "\n".join(f"- {key}: {value}" for key, value in machine.facts.items())
    how = "\n\n".join(
        f"### `{m.replace('.', '/')}.py`\n\n{text}"
        for m in SCENARIO_ORDER
        if m in modules and (text := _how(m))
    )
    others = (
        "not measured"
        if machine.others is None
        else f"the rest of the machine kept {machine.others:.2f} of the {os.cpu_count()} cores busy on "
        "average during the run"
        + (" (PostgreSQL's work for the postgres rows included)" if "bench.postgres" in modules else "")
    )
    notes = previous[previous.index(NOTES) :] if NOTES in previous else f"{NOTES}\n\n{NOTES_PLACEHOLDER}"
    return f"""# Benchmarks

Written by `python -m bench` (quick profile, about 2 minutes) or `python -m bench --full` (the
issue's sizes, at most 15 minutes on 2 cores); see the README's Benchmarks section. Do not edit by
hand but for the last section.

## Machine

- Command: `{command}`
- Date: {machine.started}; the run took {machine.seconds / 60:.1f} minutes
{facts}
- Other load: {others}; load average (1 min) {machine.load_start:.1f} at the start,
  {machine.load_end:.1f} at the end. Where the machine is shared, single figures move between runs:
  compare the ratios, which are measured in the same run.

## Results

Each figure is compared with its baseline measured in the same run, on the same machine. The ratio
is batchd's figure divided by the compared one (below 1 is better for times, above 1 for rates).
"met" is the issue's target: ✓ met, ✗ not met, — no target or not measured.

{table(rows)}

## How each figure is measured

{how}

{notes.rstrip()}
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    profile = parser.add_mutually_exclusive_group()
    for name, what in (("quick", "the default, ~2 minutes"), ("full", "the issue's sizes, ≤ 15 minutes")):
        sizes = ", ".join(f"{key} {getattr(sc, name):,}" for key, sc in SCENARIOS.items())
        profile.add_argument(
            f"--{name}", dest="profile", action="store_const", const=name, help=f"{what}: {sizes}"
        )
    parser.set_defaults(profile="quick")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated of {','.join(SCENARIOS)} (default: all)"
    )
    parser.add_argument(
        "--size", action="append", default=[], metavar="NAME=N", help="override one scenario's size"
    )
    parser.add_argument("--timeout", type=float, help="seconds per scenario (quick 300, full 720)")
    parser.add_argument(
        "--out", default=str(ROOT / "docs" / "benchmarks.md"), help="report file (default: %(default)s)"
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.names = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [name for name in args.names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    args.sizes = {}
    for item in args.size:
        name, _, value = item.partition("=")
        if name not in SCENARIOS or not value.isdigit():
            parser.error(f"--size {item}: expected NAME=N with NAME one of {', '.join(SCENARIOS)}")
        args.sizes[name] = int(value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        module, n, kwargs, out = args.child
        return child(module, int(n), json.loads(kwargs), Path(out))
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    timeout = args.timeout or TIMEOUT[args.profile]
    started = time.monotonic()
    machine = Machine.here()
    rows: list[Row] = []
    for job in jobs(args.names, args.profile, args.sizes):
        log(f"{','.join(job.names)}: {job.n:,} {job.scenario.unit} ...")
        t0 = time.monotonic()
        got = run_job(job, timeout)
        rows.extend(got)
        log(f"{','.join(job.names)}: {time.monotonic() - t0:.0f} s")
    machine.finish(time.monotonic() - started)
    print(table(rows))
    if args.out:
        path = Path(args.out)
        modules = {job.scenario.module for job in jobs(args.names, args.profile, args.sizes)}
        previous = path.read_text() if path.exists() else ""
        path.write_text(render(command.strip(), machine, rows, modules, previous))
        log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
