"""Real llama.cpp (the xllamacpp wheel) serving a tiny scripted model, through batchd and the SDK.

- `batchd serve --gguf` runs llama.cpp inside batchd (the `llamacpp` backend);
- a separate llama.cpp server on loopback is reached through the `openai` and `anthropic` routes.

The model (tests/acceptance/tiny_gguf.py) answers a thinking request with a `<think>` block and a
`<tool_call>`, and any other request with ANSWER, so every translation step is checked exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("xllamacpp", reason="the llamacpp tests need the xllamacpp wheel")
pytest.importorskip("gguf", reason="building the tiny model needs the gguf package")
pytest.importorskip("tokenizers", reason="building the tiny model needs the tokenizers package")

from tests.acceptance import tiny_gguf
from tests.acceptance.conftest import make_client, wait_ended
from tests.acceptance.server import ServerProcess

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
THINKING = {"type": "enabled", "budget_tokens": 1024}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gguf.build(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def llama(model: Path) -> Iterator[str]:
    """A standalone llama.cpp server (real llama-server code) on a free loopback port."""
    from batchd.backends.llamacpp import load_server

    server = load_server(str(model), parallel=2, ctx=2048, threads=1)
    yield str(server.listening_address).rstrip("/")
    del server


def params(model: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 2048, "messages": [{"role": "user", "content": text}], **extra}


def check_results(results: dict[str, Any]) -> None:
    tool = results["tool"]
    assert tool.type == "succeeded", tool
    blocks = tool.message.content
    assert [b.type for b in blocks] == ["thinking", "tool_use"]
    assert blocks[0].thinking.startswith("The user wants the weather")
    assert (blocks[1].name, blocks[1].input) == ("get_weather", {"city": "Paris"})
    assert tool.message.stop_reason == "tool_use"
    assert tool.message.usage.input_tokens + tool.message.usage.cache_read_input_tokens > 100
    plain = results["plain"]
    assert plain.type == "succeeded", plain
    assert [b.text for b in plain.message.content] == [tiny_gguf.ANSWER]
    assert plain.message.stop_reason == "end_turn"
    short = results["short"]
    assert short.type == "succeeded" and short.message.stop_reason == "max_tokens"


def batch_requests(model: str) -> list[dict[str, Any]]:
    round_trip = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, sunny"}],
        },
    ]
    return [
        {"custom_id": "tool", "params": params(model, "Weather in Paris?", tools=TOOLS, thinking=THINKING)},
        {"custom_id": "plain", "params": params(model, "hello there", system="Be brief.")},
        {"custom_id": "short", "params": {**params(model, "hello"), "max_tokens": 1}},
        {"custom_id": "round", "params": {**params(model, ""), "messages": round_trip, "tools": TOOLS}},
    ]


def run_batch(base_url: str, model: str) -> dict[str, Any]:
    with make_client(base_url, timeout=60) as client:
        reqs = batch_requests(model)
        batch = client.messages.batches.create(requests=reqs)  # type: ignore[arg-type]
        wait_ended(client, batch.id, len(reqs), timeout=60)
        return {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}


def test_serve_gguf(model: Path, tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "d", {"BATCHD_GGUF": str(model), "BATCHD_GGUF_PARALLEL": "2"}).start()
    try:
        results = run_batch(proc.base_url, "any-model-name")
        check_results(results)
        assert results["round"].type == "succeeded"
        with make_client(proc.base_url, timeout=60) as client:
            m = client.messages.create(**params("claude-whatever", "hi"))  # type: ignore[arg-type]
            assert m.content[0].text == tiny_gguf.ANSWER  # type: ignore[union-attr]
            # llama.cpp's own template and tokenizer count exactly what a call's prompt takes.
            ask = {"system": "Be brief.", "tools": TOOLS, "messages": [{"role": "user", "content": "hi"}]}
            counted = client.messages.count_tokens(model="claude-whatever", **ask)  # type: ignore[arg-type]
            m = client.messages.create(model="claude-whatever", max_tokens=8, **ask)  # type: ignore[arg-type]
            assert counted.input_tokens == m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0) > 100
            # The schema reaches llama.cpp, whose grammar makes the model answer JSON that fits it.
            schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
            m = client.messages.create(
                **params("claude-whatever", "hi", max_tokens=64),  # type: ignore[arg-type]
                output_config={"format": {"type": "json_schema", "schema": schema}},
            )
            assert isinstance(json.loads(m.content[0].text)["n"], int)  # type: ignore[union-attr]
            check_streams(client)
    finally:
        assert proc.stop() == 0


def check_streams(client: Any) -> None:
    """llama.cpp's own stream (`stream: true` chunks) adds up to its unstreamed answer: thinking,
    the tool call's arguments, the text, the stop reason, the prompt's tokens (llama.cpp draws new
    ids per call, and the prompt cache moves tokens from input to cached between two calls)."""
    for kw in (
        params("claude-whatever", "Weather?", tools=TOOLS, thinking=THINKING),
        params("claude-whatever", "hello there"),
    ):
        events = list(client.messages.create(**kw, stream=True))
        kinds = [e.delta.type for e in events if e.type == "content_block_delta"]
        with client.messages.stream(**kw) as stream:
            final = stream.get_final_message().to_dict()
        plain = client.messages.create(**kw).to_dict()
        for m in (final, plain):
            usage = m.pop("usage")
            m["prompt"] = usage["input_tokens"] + usage["cache_read_input_tokens"]
            m.pop("id")
            for block in m["content"]:
                block.pop("id", None)
        assert final == plain
        if "tools" in kw:
            assert kinds == ["thinking_delta", "signature_delta", "input_json_delta"]
            assert [b["type"] for b in final["content"]] == ["thinking", "tool_use"]
        else:
            assert kinds == ["text_delta"] and final["content"][0]["text"] == tiny_gguf.ANSWER


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
def test_routes_to_llama_server(llama: str, tmp_path: Path, backend: str) -> None:
    config = tmp_path / "batchd.toml"
    base_url = llama + ("/v1" if backend == "openai" else "")
    config.write_text(
        f'[[routes]]\nmodel = "tiny-*"\nbackend = "{backend}"\nbase_url = "{base_url}"\nconcurrency = 2\n'
        'reasoning = "chat_template_kwargs"\n'  # what llama.cpp needs to turn thinking off
    )
    proc = ServerProcess(tmp_path / "d", {"BATCHD_CONFIG": str(config)}).start()
    try:
        results = run_batch(proc.base_url, "tiny-1")
        check_results(results)
        assert results["round"].type == "succeeded"
        with make_client(proc.base_url, timeout=60) as client:
            with client.messages.stream(
                **params("tiny-2", "Weather?", tools=TOOLS, thinking=THINKING)
            ) as stream:  # type: ignore[arg-type]
                final = stream.get_final_message()
            assert [b.type for b in final.content] == ["thinking", "tool_use"]
    finally:
        assert proc.stop() == 0


@pytest.mark.parametrize(("cache_ram", "restored"), [(None, True), ("0", False)])
def test_gguf_cache_ram(model: Path, tmp_path: Path, cache_ram: str | None, restored: bool) -> None:
    """--gguf-cache-ram 0 turns llama.cpp's host prompt cache off: an evicted prompt is recomputed.

    One slot: prompt A, then B (which evicts A from the slot), then A again. With the cache (the
    default) llama.cpp restores A from RAM and reports it cached; without it only the few tokens
    A and B share are.
    """
    env = {"BATCHD_GGUF": str(model), "BATCHD_GGUF_PARALLEL": "1", "BATCHD_GGUF_CTX": "2048"}
    if cache_ram is not None:
        env["BATCHD_GGUF_CACHE_RAM"] = cache_ram
    proc = ServerProcess(tmp_path / "d", env).start()
    try:
        with make_client(proc.base_url, timeout=60) as client:

            def cached(word: str) -> int:
                system = " ".join(f"{word}{i}" for i in range(150))
                m = client.messages.create(**params("m", "hi", max_tokens=4, system=system))  # type: ignore[arg-type]
                return m.usage.cache_read_input_tokens or 0

            cached("alpha")
            cached("beta")
            again = cached("alpha")
        assert (again > 500) is restored, again
    finally:
        assert proc.stop() == 0
