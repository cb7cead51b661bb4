"""Code execution run by batchd for real-model routes: a real `batchd serve`, the real sandbox
(bubblewrap), the official SDK (strict), and a loopback coding model speaking the OpenAI and the
Anthropic wire (tests/acceptance/code_upstream.py) that calls the tool as its script says.

Covers each tool version's block shapes, REPL state, the text editor, containers reused by id (and
refused to another workspace), output files through the Files API, the seed's example, and escape
attempts in one batch beside a normal request: each contained, the server serving on.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.acceptance.code_upstream import CodeUpstream, script
from tests.acceptance.conftest import wait_ended
from tests.acceptance.server import ServerProcess

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (Debian: bubblewrap)")

ROUTES = ("oa-coder", "an-coder")  # the OpenAI-compatible and the Anthropic-compatible route
KEYS = {"team-a": "key-team-a", "team-b": "key-team-b"}
SECRET = "sk-ant-must-never-leak-0123456789"
METRICS_KEY = "prom-secret"


@pytest.fixture(scope="module")
def upstream() -> Iterator[CodeUpstream]:
    up = CodeUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, upstream: CodeUpstream) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("code")
    config = folder / "batchd.toml"
    config.write_text(
        f'[[routes]]\nmodel = "oa-*"\nbackend = "openai"\nbase_url = "{upstream.url}/v1"\n'
        f'[[routes]]\nmodel = "an-*"\nbackend = "anthropic"\nbase_url = "{upstream.url}"\n'
        f'[[routes]]\nmodel = "claude-*"\nbackend = "openai"\nbase_url = "{upstream.url}/v1"\n'
        '[code_execution]\nwall_seconds = 4\ncpu_seconds = 3\nmemory = "512MiB"\nprocesses = 32\n'
        'output_bytes = "64KiB"\nmax_output_file = "1MiB"\n'
    )
    env = {
        "BATCHD_CONFIG": str(config),
        "BATCHD_API_KEYS": ",".join(f"{key}:{ws}" for ws, key in KEYS.items()),
        "ANTHROPIC_API_KEY": SECRET,  # in batchd's environment: the sandbox must not see it
        "BATCHD_METRICS_KEYS": METRICS_KEY,
    }
    proc = ServerProcess(folder / "d", env).start()
    yield proc
    proc.stop()


def client_of(served: ServerProcess, workspace: str = "team-a") -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=served.base_url, api_key=KEYS[workspace], _strict_response_validation=True, max_retries=0
    )


def ask(
    custom_id: str, model: str, text: str, tool: str = "code_execution_20250825", **extra: Any
) -> dict[str, Any]:
    params = {
        "model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}],
        "tools": [{"type": tool, "name": "code_execution"}], **extra,
    }  # fmt: skip
    return {"custom_id": custom_id, "params": params}


def run(client: anthropic.Anthropic, requests: list[dict[str, Any]], timeout: float = 60) -> dict[str, Any]:
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    wait_ended(client, batch.id, len(requests), timeout=timeout)
    return {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}


def bash(command: str) -> str:
    """The script of a model that runs `command` once."""
    return script(("bash_code_execution", {"command": command}))


def edit(command: str, path: str, **rest: str) -> tuple[str, dict[str, Any]]:
    return ("text_editor_code_execution", {"command": command, "path": path, **rest})


def message_of(result: Any) -> Any:
    assert result.type == "succeeded", result
    return result.message


@pytest.mark.parametrize("model", ROUTES)
def test_bash_runs_for_real_and_the_model_reads_its_output(served: ServerProcess, model: str) -> None:
    command = "python3 -c 'print(17 * 23)'; echo oops >&2; exit 3"
    with client_of(served) as client:
        message = message_of(
            run(client, [ask("q", model, script(("bash_code_execution", {"command": command})))])["q"]
        )
    call, result, answer = message.content
    assert call.type == "server_tool_use" and call.name == "bash_code_execution"
    assert call.input == {"command": command} and call.id.startswith("srvtoolu_01")
    assert result.type == "bash_code_execution_tool_result" and result.tool_use_id == call.id
    content = result.content
    assert (content.type, content.stdout, content.stderr, content.return_code, content.content) == (
        "bash_code_execution_result",
        "391\n",
        "oops\n",
        3,
        [],
    )
    assert "return code: 3" in answer.text and "391" in answer.text  # what the model was shown
    assert message.container is not None and message.container.id.startswith("container_011C")
    assert message.container.expires_at.timestamp() > message.container.expires_at.timestamp() - 1


def test_the_seed_example_computes_mean_and_standard_deviation(served: ServerProcess) -> None:
    data = [12, 15, 18, 22, 25, 28, 30, 35]
    program = f"import statistics as s; d = {data}; print(round(s.mean(d), 4), round(s.stdev(d), 4))"
    params = {
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 1024,
        "code_execution": {"type": "enabled"},  # the seed's shorthand
        "messages": [{"role": "user", "content": "Calculate the mean and standard deviation of "
                      f"{data}\n" + script(("bash_code_execution", {"command": f'python3 -c "{program}"'}))}],
    }  # fmt: skip
    with client_of(served) as client:
        batch = client.beta.messages.batches.create(requests=[{"custom_id": "seed", "params": params}])  # type: ignore[list-item]
        wait_ended(client, batch.id, 1, timeout=60)
        (entry,) = list(client.beta.messages.batches.results(batch.id))
    message = message_of(entry.result)
    stdout = message.content[1].content.stdout
    assert stdout == f"{round(statistics.mean(data), 4)} {round(statistics.stdev(data), 4)}\n"


def test_legacy_python_and_the_repl_keep_what_each_version_promises(served: ServerProcess) -> None:
    steps = script(("code_execution", {"code": "x = 41"}), ("code_execution", {"code": "print(x + 1)"}))
    with client_of(served) as client:
        results = run(client, [
            ask("legacy", "oa-coder", steps, "code_execution_20250522"),
            ask("repl", "oa-coder", steps, "code_execution_20260521"),
            ask("repl-120", "an-coder", steps, "code_execution_20260120"),
        ])  # fmt: skip
    legacy = message_of(results["legacy"])
    kinds = [b.type for b in legacy.content]
    assert kinds == ["server_tool_use", "code_execution_tool_result"] * 2 + ["text"]
    second = legacy.content[3].content
    # Each legacy program runs in a fresh process: x is gone.
    assert second.type == "code_execution_result" and second.return_code == 1
    assert "NameError" in second.stderr
    for name in ("repl", "repl-120"):
        repl = message_of(results[name])
        second = repl.content[3].content
        assert (second.type, second.stdout, second.return_code) == ("code_execution_result", "42\n", 0), name


def test_the_text_editor_creates_views_and_edits_files(served: ServerProcess) -> None:
    steps = script(
        edit("create", "config.json", file_text='{\n  "debug": true\n}\n'),
        edit("str_replace", "config.json", old_str='"debug": true', new_str='"debug": false'),
        edit("create", "config.json", file_text='{"debug": false}\n'),
        edit("view", "config.json"),
        edit("view", "missing.txt"),
        edit("str_replace", "config.json", old_str="nope", new_str="x"),
        ("bash_code_execution", {"command": "cat config.json"}),
    )
    with client_of(served) as client:
        message = message_of(run(client, [ask("edit", "an-coder", steps)])["edit"])
    results = [b.content for b in message.content if b.type == "text_editor_code_execution_tool_result"]
    created, replaced, updated, viewed, missing, unmatched = results
    assert (created.type, created.is_file_update) == ("text_editor_code_execution_create_result", False)
    assert replaced.type == "text_editor_code_execution_str_replace_result"
    assert '-  "debug": true' in replaced.lines and '+  "debug": false' in replaced.lines
    assert (updated.type, updated.is_file_update) == ("text_editor_code_execution_create_result", True)
    assert viewed.type == "text_editor_code_execution_view_result" and viewed.file_type == "text"
    assert viewed.content == '{"debug": false}\n' and viewed.total_lines == 1
    assert (missing.type, missing.error_code) == (
        "text_editor_code_execution_tool_result_error",
        "file_not_found",
    )
    assert unmatched.type == "text_editor_code_execution_tool_result_error"
    bash = [b.content for b in message.content if b.type == "bash_code_execution_tool_result"]
    assert bash[0].stdout == '{"debug": false}\n'


def test_a_container_is_reused_by_id_in_its_workspace_only(served: ServerProcess) -> None:
    with client_of(served) as client:
        first = message_of(run(client, [
            ask("a", "oa-coder", bash("echo kept > notes.txt"))
        ])["a"])  # fmt: skip
        container = first.container.id
        again = run(client, [
            ask("b", "oa-coder", bash("cat notes.txt"), container=container),
            ask("unknown", "oa-coder", "hi", container="container_011Cnosuchcontainer000000"),
        ])  # fmt: skip
    second = message_of(again["b"])
    assert second.container.id == container
    assert second.content[1].content.stdout == "kept\n"
    assert second.container.expires_at >= first.container.expires_at
    assert again["unknown"].type == "errored"
    assert again["unknown"].error.error.type == "invalid_request_error"
    with client_of(served, "team-b") as other:
        stolen = run(other, [ask("c", "oa-coder", bash("cat notes.txt"), container=container)])["c"]
    assert stolen.type == "errored" and "no container" in stolen.error.error.message


def test_output_files_are_listed_and_downloaded_by_their_workspace(served: ServerProcess) -> None:
    command = (
        "printf 'x,y\\n1,2\\n' > $OUTPUT_DIR/report.csv; echo hi > $OUTPUT_DIR/hello.txt; "
        "ln -s /etc/passwd $OUTPUT_DIR/link"
    )
    with client_of(served) as client:
        message = message_of(
            run(client, [ask("f", "oa-coder", script(("bash_code_execution", {"command": command})))])["f"]
        )
        outputs = message.content[1].content.content
        assert len(outputs) == 2 and all(o.type == "bash_code_execution_output" for o in outputs)
        by_name = {client.beta.files.retrieve_metadata(o.file_id).filename: o.file_id for o in outputs}
        assert set(by_name) == {"report.csv", "hello.txt"}  # the symlink is not a file of its own
        meta = client.beta.files.retrieve_metadata(by_name["report.csv"])
        assert (meta.mime_type, meta.size_bytes, meta.downloadable) == ("text/csv", 8, True)
        assert client.beta.files.download(by_name["report.csv"]).read() == b"x,y\n1,2\n"
        listed = [f.id for f in client.beta.files.list(limit=1)]
        assert set(by_name.values()) <= set(listed)
    with client_of(served, "team-b") as other:
        with pytest.raises(anthropic.NotFoundError):
            other.beta.files.retrieve_metadata(by_name["report.csv"])
        with pytest.raises(anthropic.NotFoundError):
            other.beta.files.download(by_name["report.csv"])
        assert by_name["report.csv"] not in [f.id for f in other.beta.files.list()]
    with client_of(served) as client:
        assert client.beta.files.delete(by_name["hello.txt"]).id == by_name["hello.txt"]
        with pytest.raises(anthropic.NotFoundError):
            client.beta.files.retrieve_metadata(by_name["hello.txt"])


ESCAPES = {
    "network-loopback": "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\"",
    "network-outside": "python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), 2)\"",
    "shadow": "cat /etc/shadow",
    "database": "ls {data_dir}; cat {data_dir}/batchd.db | head -c 100",
    "environment": "env; cat /proc/1/environ",
    "write-outside": "echo x > /usr/evil; echo x > /evil; touch /etc/evil",
    "fork-bomb": "bomb() { bomb | bomb & }; bomb; sleep 1; echo survived",
    "memory-bomb": 'python3 -c "b = bytearray(4 << 30)"',
    "infinite-loop": "python3 -c 'while True: pass'",
    "output-flood": "head -c 100000000 /dev/zero | tr '\\0' 'a'",
    "sleeper": "sleep 60",
    "kill-parent": "kill -9 $PPID; kill -9 1; echo still here",
}


def test_escape_attempts_are_contained_and_the_batch_goes_on(served: ServerProcess) -> None:
    data_dir = served.data_dir
    port = int(served.base_url.rsplit(":", 1)[1])
    requests = [
        ask(
            name,
            "oa-coder",
            bash(command.replace("{port}", str(port)).replace("{data_dir}", str(data_dir))),
        )
        for name, command in ESCAPES.items()
    ] + [ask("normal", "oa-coder", script(("bash_code_execution", {"command": "echo fine"})))]
    with client_of(served) as client:
        results = run(client, requests, timeout=120)
        assert httpx.get(f"{served.base_url}/health").status_code == 200  # serving on
    blocks = {name: message_of(r).content[1].content for name, r in results.items()}
    assert blocks["normal"].stdout == "fine\n"
    for name in ("network-loopback", "network-outside", "shadow", "memory-bomb"):
        assert blocks[name].return_code != 0, (name, blocks[name])
    assert "No such file" in blocks["shadow"].stderr
    assert "batchd.db" not in blocks["database"].stdout
    assert SECRET not in blocks["environment"].stdout and "BATCHD" not in blocks["environment"].stdout
    assert blocks["write-outside"].return_code != 0 and "Read-only" in blocks["write-outside"].stderr
    loop = blocks["infinite-loop"]  # the CPU limit (SIGXCPU), or the wall limit on a busy machine
    assert (
        loop.return_code == 128 + 24
        if loop.type == "bash_code_execution_result"
        else (loop.error_code == "execution_time_exceeded")
    )
    flood = blocks["output-flood"]
    assert len(flood.stdout) < 70_000 and "truncated" in flood.stdout.lower()
    assert blocks["sleeper"].type == "bash_code_execution_tool_result_error"
    assert blocks["sleeper"].error_code == "execution_time_exceeded"
    assert "still here" in blocks["kill-parent"].stdout or blocks["kill-parent"].return_code != 0
    fork = blocks["fork-bomb"]
    assert fork.type in ("bash_code_execution_result", "bash_code_execution_tool_result_error")


def test_realtime_calls_run_code_and_health_and_metrics_say_so(served: ServerProcess) -> None:
    with client_of(served) as client:
        message = client.messages.create(
            model="an-coder", max_tokens=64,
            messages=[{"role": "user", "content": script(("bash_code_execution", {"command": "echo now"}))}],
            tools=[{"type": "code_execution_20250825", "name": "code_execution"}],
        )  # fmt: skip
    assert message.content[1].content.stdout == "now\n"  # type: ignore[union-attr]
    assert message.container is not None
    health = httpx.get(f"{served.base_url}/health").json()
    assert health["server_tools"]["code_execution"] == "up", health
    metrics = httpx.get(f"{served.base_url}/metrics", headers={"x-api-key": METRICS_KEY})
    assert metrics.status_code == 200
    assert 'batchd_code_executions_total{outcome="ok",tool="bash_code_execution"}' in metrics.text
    assert 'batchd_code_executions_total{outcome="nonzero_exit",tool="bash_code_execution"}' in metrics.text
    assert "batchd_code_containers " in metrics.text


def test_an_uploaded_file_reaches_the_container_through_container_upload(served: ServerProcess) -> None:
    data = b"city,rain_mm\nParis,641\nLondon,690\nRome,798\n"
    program = "import csv\nprint(sum(int(r['rain_mm']) for r in csv.DictReader(open('rain.csv'))))"
    with client_of(served) as client:
        uploaded = client.beta.files.upload(file=("rain.csv", data, "text/csv"))
        assert (uploaded.filename, uploaded.size_bytes, uploaded.downloadable) == (
            "rain.csv",
            len(data),
            False,
        )
        with pytest.raises(anthropic.BadRequestError, match="only files that code execution wrote"):
            client.beta.files.download(uploaded.id)
        content = [
            {"type": "text", "text": script(("code_execution", {"code": program}))},
            {"type": "container_upload", "file_id": uploaded.id},
        ]
        params = {
            "model": "an-coder", "max_tokens": 64, "messages": [{"role": "user", "content": content}],
            "tools": [{"type": "code_execution_20260521", "name": "code_execution"}],
        }  # fmt: skip
        unknown = [
            {"type": "text", "text": "hi"},
            {"type": "container_upload", "file_id": "file_011Cmissing"},
        ]
        missing = {**params, "messages": [{"role": "user", "content": unknown}]}
        results = run(
            client, [{"custom_id": "up", "params": params}, {"custom_id": "missing", "params": missing}]
        )
    message = message_of(results["up"])
    assert message.content[1].content.stdout == f"{641 + 690 + 798}\n"
    assert results["missing"].type == "errored" and "no file" in results["missing"].error.error.message
    with client_of(served, "team-b") as other, pytest.raises(anthropic.NotFoundError):
        other.beta.files.retrieve_metadata(uploaded.id)
