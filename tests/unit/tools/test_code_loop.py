"""Code execution in the server-tool loop, around a scripted model, with the real sandbox and a
real SQLite store: the functions each version offers, block shapes, containers (found, refused,
expired, swept), a pending call run first after pause_turn, earlier results shown again, and a
sandbox that cannot run answering `unavailable`."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchd import exceptions
from batchd.store import Store, open_store
from batchd.store.base import Container
from batchd.tools import scope
from batchd.tools.code_execution.containers import Containers
from batchd.tools.code_execution.sandbox import Limits, Sandbox
from batchd.tools.loop import ToolLoop
from batchd.tools.loop.definitions import functions_of, offered_tools, server_tools
from batchd.tools.tokens import Tokens
from tests.unit.tools.model import Corpus, ScriptedModel, last_tool_result, message, tool_use

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
BASH_TOOL = {"type": "code_execution_20250825", "name": "code_execution"}


def params(*, tool: dict[str, Any] = BASH_TOOL, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "go"}], "tools": [tool],
            **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("version", "functions"),
    [
        ("code_execution_20250522", ("code_execution",)),
        ("code_execution_20250825", ("bash_code_execution", "text_editor_code_execution")),
        ("code_execution_20260120", ("code_execution", "bash_code_execution", "text_editor_code_execution")),
        ("code_execution_20260521", ("code_execution", "bash_code_execution", "text_editor_code_execution")),
    ],
)
def test_each_version_offers_its_functions(version: str, functions: tuple[str, ...]) -> None:
    tool = {"type": version, "name": "code_execution"}
    assert functions_of(tool) == functions
    client_tool = {"name": "get_weather", "input_schema": {"type": "object"}}
    request = {"tools": [client_tool, tool]}
    offered = offered_tools(request, server_tools(request))
    assert [t["name"] for t in offered] == ["get_weather", *functions]
    assert all("type" not in t and t["input_schema"]["type"] == "object" for t in offered)


@pytest.mark.parametrize(
    ("tools", "message_part"),
    [
        ([{"type": "code_execution_20250825", "name": "python"}], "Input should be 'code_execution'"),
        (
            [BASH_TOOL, {"type": "code_execution_20250522", "name": "code_execution"}],
            "only one code_execution",
        ),
        ([{"type": "code_execution_20990101", "name": "code_execution"}], "batchd runs"),
    ],
)
def test_bad_definitions_are_refused(tools: list[dict[str, Any]], message_part: str) -> None:
    with pytest.raises(exceptions.InvalidParams, match=message_part):
        server_tools({"tools": tools})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    found = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    await found.open()
    yield found
    await found.aclose()


@pytest.fixture
def homes() -> Iterator[Path]:
    """Where containers live: a directory the sandbox user may traverse (pytest's tmp_path is not)."""
    path = Path(tempfile.mkdtemp(prefix="batchd-loop-test-"))
    os.chmod(path, 0o755)
    yield path / "containers"
    shutil.rmtree(path, ignore_errors=True)


def containers_for(store: Store, root: Path, *, sandbox: bool = True, idle: float = 3600.0) -> Containers:
    made = Sandbox(root=root, limits=Limits(wall_seconds=5, cpu_seconds=5)) if sandbox else None
    return Containers(made, store, idle=idle, max_running=4, max_output_file=1 << 20, retention=3600.0)


def make_loop(model: ScriptedModel, containers: Containers) -> ToolLoop:
    return ToolLoop(model, provider=Corpus([]), fetcher=None, tokens=Tokens(b"k" * 32), max_iterations=10,
                    containers=containers)  # fmt: skip


def runs(*calls: dict[str, Any]) -> Any:
    """A model making `calls` one per turn, then answering with the last result it saw."""

    def script(p: dict[str, Any]) -> dict[str, Any]:
        done = sum(1 for m in p["messages"] if m["role"] == "user" and isinstance(m["content"], list))
        if done < len(calls):
            return message(calls[done])
        return message({"type": "text", "text": f"saw: {last_tool_result(p)}"})

    return script


@needs_bwrap
async def test_a_bash_call_runs_and_the_container_is_on_the_message(store: Store, homes: Path) -> None:
    containers = containers_for(store, homes)
    model = ScriptedModel(runs(tool_use("bash_code_execution", command="echo $((6 * 7)); pwd")))
    answer = await make_loop(model, containers).create_message(params(container=None))
    call, result, text = answer["content"]
    assert call["type"] == "server_tool_use" and call["name"] == "bash_code_execution"
    assert result == {
        "type": "bash_code_execution_tool_result",
        "tool_use_id": call["id"],
        "content": {"type": "bash_code_execution_result", "stdout": "42\n/workspace\n", "stderr": "",
                    "return_code": 0, "content": []},
    }  # fmt: skip
    assert "42" in text["text"]
    container = answer["container"]
    row = await store.get_container(container["id"])
    assert row is not None and row.workspace == scope.DEFAULT
    # The model was offered functions, never the server tool's definition or the container param.
    assert [t["name"] for t in model.seen[0]["tools"]] == [
        "bash_code_execution",
        "text_editor_code_execution",
    ]
    assert all("container" not in seen for seen in model.seen)
    await containers.aclose()


@needs_bwrap
async def test_containers_are_scoped_expire_and_are_swept(store: Store, homes: Path) -> None:
    containers = containers_for(store, homes, idle=3600.0)
    model = ScriptedModel(runs(tool_use("bash_code_execution", command="echo hi > kept.txt")))
    token = scope.workspace.set("team-a")
    try:
        first = await make_loop(model, containers).create_message(params())
    finally:
        scope.workspace.reset(token)
    container_id = first["container"]["id"]
    assert (homes / container_id).is_dir()
    token = scope.workspace.set("team-b")
    try:
        with pytest.raises(exceptions.InvalidParams, match="no container"):
            await make_loop(ScriptedModel(runs()), containers).create_message(params(container=container_id))
    finally:
        scope.workspace.reset(token)
    # Expired: refused, then swept from the store and the disk.
    await store.create_container(Container("container_011Cold", "team-a", 1.0, 2.0))
    token = scope.workspace.set("team-a")
    try:
        with pytest.raises(exceptions.InvalidParams, match="has expired"):
            await make_loop(ScriptedModel(runs()), containers).create_message(
                params(container="container_011Cold")
            )
    finally:
        scope.workspace.reset(token)
    await containers.sweep(time.time() + 7200, force=True)
    assert await store.get_container(container_id) is None
    assert not (homes / container_id).exists()
    await containers.aclose()


@needs_bwrap
async def test_a_pending_call_runs_first_after_pause_turn(store: Store, homes: Path) -> None:
    containers = containers_for(store, homes)
    call = tool_use("bash_code_execution", command="echo resumed")
    paused = [
        {
            "type": "server_tool_use",
            "id": "srvtoolu_01" + "A" * 22,
            "name": call["name"],
            "input": call["input"],
        }
    ]
    request = params()
    request["messages"] = [*request["messages"], {"role": "assistant", "content": paused}]
    model = ScriptedModel(lambda p: message({"type": "text", "text": f"saw: {last_tool_result(p)}"}))
    answer = await make_loop(model, containers).create_message(request)
    first = answer["content"][0]
    assert first["type"] == "bash_code_execution_tool_result" and first["tool_use_id"] == paused[0]["id"]
    assert first["content"]["stdout"] == "resumed\n"
    await containers.aclose()


async def test_an_earlier_result_is_shown_to_the_model_again(store: Store, tmp_path: Path) -> None:
    containers = containers_for(store, tmp_path / "homes", sandbox=False)
    srv = "srvtoolu_01" + "B" * 22
    earlier = [
        {"type": "server_tool_use", "id": srv, "name": "bash_code_execution", "input": {"command": "ls"}},
        {"type": "bash_code_execution_tool_result", "tool_use_id": srv,
         "content": {"type": "bash_code_execution_result", "stdout": "data.csv\n", "stderr": "",
                     "return_code": 0, "content": []}},
        {"type": "text", "text": "There is one file."},
    ]  # fmt: skip
    request = params()
    request["messages"] += [{"role": "assistant", "content": earlier}, {"role": "user", "content": "thanks"}]
    model = ScriptedModel(lambda p: message({"type": "text", "text": "you're welcome"}))
    await make_loop(model, containers).create_message(request)
    seen = model.seen[0]["messages"]
    assert seen[1]["content"][0] == {"type": "tool_use", "id": srv, "name": "bash_code_execution",
                                     "input": {"command": "ls"}}  # fmt: skip
    result = seen[2]["content"][0]
    assert (
        result["type"] == "tool_result"
        and "data.csv" in result["content"]
        and "return code: 0" in result["content"]
    )


async def test_without_a_sandbox_the_tool_is_unavailable(store: Store, tmp_path: Path) -> None:
    containers = containers_for(store, tmp_path / "homes", sandbox=False)
    model = ScriptedModel(runs(tool_use("text_editor_code_execution", command="view", path="x")))
    answer = await make_loop(model, containers).create_message(params())
    result = answer["content"][1]
    assert result["content"] == {
        "type": "text_editor_code_execution_tool_result_error",
        "error_code": "unavailable",
        "error_message": "code execution is turned off ([code_execution] enabled = false)",
    }
    assert "container" not in answer


# -- streamed (tools/loop/stream.py) -------------------------------------------------------------


async def streamed(loop: ToolLoop, request: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    from batchd.backends.streaming import Accumulator

    acc, events = Accumulator(), []
    async for event in loop.stream_message(request):
        events.append(event)
        acc.add(*event)
    return acc.message, events


async def test_streamed_without_a_sandbox(store: Store, tmp_path: Path) -> None:
    from tests.unit.tools.test_loop_stream import StreamingModel, plain

    containers = containers_for(store, tmp_path / "homes", sandbox=False)
    script = runs(tool_use("text_editor_code_execution", command="view", path="x"))
    unstreamed = await make_loop(ScriptedModel(script), containers).create_message(params())
    message, events = await streamed(make_loop(StreamingModel(script), containers), params())
    assert plain(message) == plain({**unstreamed, "stop_details": None, "id": message["id"]})
    starts = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    assert starts == ["server_tool_use", "text_editor_code_execution_tool_result", "text"]


@needs_bwrap
async def test_a_streamed_bash_call_has_its_container(store: Store, homes: Path) -> None:
    from tests.unit.tools.test_loop_stream import StreamingModel

    containers = containers_for(store, homes)
    model = StreamingModel(runs(tool_use("bash_code_execution", command="echo $((6 * 7))")))
    message, events = await streamed(make_loop(model, containers), params(container=None))
    assert [b["type"] for b in message["content"]] == [
        "server_tool_use",
        "bash_code_execution_tool_result",
        "text",
    ]
    assert message["content"][1]["content"]["stdout"] == "42\n"
    container = events[-2][1]["delta"]["container"]
    assert container is not None and container == message["container"]
    assert await store.get_container(container["id"]) is not None
    await containers.aclose()
