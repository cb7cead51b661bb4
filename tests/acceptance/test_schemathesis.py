"""Schemathesis against a real `batchd serve`, from its own /openapi.json.

Every operation is fuzzed with generated inputs, valid and invalid, then in sequences that follow
the schema's links (create, then retrieve, cancel, results, delete the batch created), as two
workspaces' keys: no answer may be a 5xx, every answer must match the schema (status, content
type, body), invalid input must be refused, a request without a key must be refused, and one
workspace must never read another's batch. The run is bounded (MAX_EXAMPLES per operation) and
deterministic: no random seed, no example database, no cache carried between runs.

Left out, because the schema cannot say what batchd rightly refuses: `positive_data_acceptance`
(duplicate custom_ids, both `after_id` and `before_id`, cancel after the end are schema-valid,
and 400 by design).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.acceptance.server import ServerProcess, child_env

MAX_EXAMPLES = 25  # per operation and phase: ~600 requests, a few seconds
RUN_TIMEOUT = 300.0  # seconds; generous, the machine is shared
KEYS = {"team-a": "key-team-a", "team-b": "key-team-b"}

ALLOW_HEADER = "ST205"  # `OPTIONS` and 405 list every method a path serves (issue 12, item 4)

CONFIG = f"""
workers = 1
color = false
[reports.json]
path = "report.json"
[generation]
max-examples = {MAX_EXAMPLES}
deterministic = true
database = "none"
[cache]
enabled = false
[checks]
positive_data_acceptance.enabled = false
[auth.wfc]
path = "auth.json"
peers = {json.dumps(sorted(KEYS))}
"""


@dataclass
class Run:
    report: dict[str, Any]  # schemathesis's JSON report
    output: str  # what it printed
    server_log: str

    def failures(self, *codes: str) -> list[dict[str, Any]]:
        return [f for f in self.report["failures"] if not codes or f["code"] in codes]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One schemathesis run against a server with keys, its files in a directory of its own."""
    work = tmp_path_factory.mktemp("schemathesis")
    keys = ",".join(f"{key}:{workspace}" for workspace, key in KEYS.items())
    srv = ServerProcess(work / "data", {"BATCHD_API_KEYS": keys}).start()
    try:
        # Web Fuzzing Commons auth: one identity per workspace, told apart by their keys.
        auth = [{"name": w, "fixedHeaders": [{"name": "x-api-key", "value": k}]} for w, k in KEYS.items()]
        (work / "auth.json").write_text(json.dumps({"auth": auth}))
        (work / "schemathesis.toml").write_text(CONFIG)
        env = {k: v for k, v in child_env({}).items() if not k.startswith(("SCHEMATHESIS_", "HYPOTHESIS_"))}
        schema = srv.base_url + "/openapi.json"
        proc = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", "schemathesis.toml", "run", schema],
            cwd=work,  # anything it writes stays out of the repository
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        output = proc.stdout + proc.stderr
        report = work / "report.json"
        assert report.exists(), output
        yield Run(json.loads(report.read_text()), output, srv.log())
    finally:
        srv.stop()


def test_every_operation_answers_without_5xx_and_as_the_schema_says(run: Run) -> None:
    report = run.report
    assert report["complete"] and not report["errors"], run.output
    ops = report["operations"]
    assert ops["tested"] == ops["selected"] == ops["total"] >= 9, ops
    assert report["test_cases"]["generated"] >= 9 * MAX_EXAMPLES, report["test_cases"]
    assert not run.failures("ST101"), run.output  # not_a_server_error
    assert run.failures() == [], run.output
    assert "Traceback" not in run.server_log, run.server_log


def test_options_lists_every_method_served(run: Run) -> None:
    assert not run.failures(ALLOW_HEADER), run.output
