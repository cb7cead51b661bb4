"""OpenAI batch lines on real llama.cpp (the xllamacpp wheel) running a tiny model the test builds:
chat completions and text completions go through untouched, embeddings come from the same server
started with `gguf_embeddings`; without it an embeddings line fails naming `url`."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("xllamacpp", reason="the llamacpp tests need the xllamacpp wheel")
pytest.importorskip("gguf", reason="building the tiny model needs the gguf package")
pytest.importorskip("tokenizers", reason="building the tiny model needs the tokenizers package")

from batchd import config
from batchd.engine.router import Router
from batchd.store import Store, open_store
from tests.acceptance import tiny_gguf
from tests.unit.engine import harness
from tests.unit.engine.openai_harness import chat, line, lines_of, make_batch


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gguf.build(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'lines.db'}")
    await opened.open()
    yield opened
    await opened.aclose()


async def run(
    store: Store, model: Path, tmp_path: Path, lines: list[bytes], *, embeddings: bool
) -> dict[str, dict[str, Any]]:
    settings = config.load(
        {
            "gguf": str(model),
            "gguf_parallel": 2,
            "gguf_ctx": 1024,
            "gguf_threads": 1,
            "gguf_embeddings": embeddings,
            "data_dir": str(tmp_path),
        },
        environ={},
    )
    router = Router.from_settings(settings, environ={})
    batch = await make_batch(store, lines)
    try:
        async with harness.running(store, router, settings):
            await harness.until_ended(store, batch.id, timeout=60)
    finally:
        await router.aclose()
    found = await lines_of(store, batch.id)
    assert len(found) == len(lines)
    return found


async def test_chat_completions_and_embeddings_on_llamacpp(store: Store, model: Path, tmp_path: Path) -> None:
    lines = [
        line("think", chat("What is the weather in Paris?", model="tiny", max_tokens=64)),
        line(
            "plain",
            chat("hello", model="tiny", max_tokens=64, chat_template_kwargs={"enable_thinking": False}),
        ),
        line("vec", {"model": "tiny", "input": ["hello there", "the weather"]}, url="/v1/embeddings"),
        line("text", {"model": "tiny", "prompt": "hello", "max_tokens": 4}, url="/v1/completions"),
    ]
    found = await run(store, model, tmp_path, lines, embeddings=True)
    text = found["text"]["response"]
    assert text["status_code"] == 200 and text["body"]["object"] == "text_completion", found["text"]
    think = found["think"]["response"]
    assert think["status_code"] == 200, found["think"]
    message = think["body"]["choices"][0]["message"]
    assert message["content"] == tiny_gguf.TOOL_CALL  # llama.cpp's own answer, as it is
    assert "The user wants the weather" in message["reasoning_content"]
    assert think["body"]["usage"]["completion_tokens"] == 3
    plain = found["plain"]["response"]["body"]["choices"][0]["message"]
    assert plain["content"] == tiny_gguf.ANSWER  # the body's llama.cpp-only field went through
    vec = found["vec"]["response"]
    assert vec["status_code"] == 200, found["vec"]
    data = vec["body"]["data"]
    assert [d["index"] for d in data] == [0, 1]
    assert all(len(d["embedding"]) == tiny_gguf.HIDDEN for d in data)
    assert math.isclose(sum(v * v for v in data[0]["embedding"]), 1.0, rel_tol=1e-4)
    assert vec["body"]["usage"]["prompt_tokens"] > 0


async def test_embeddings_need_gguf_embeddings(store: Store, model: Path, tmp_path: Path) -> None:
    lines = [line("vec", {"model": "tiny", "input": "hello"}, url="/v1/embeddings")]
    found = await run(store, model, tmp_path, lines, embeddings=False)
    response = found["vec"]["response"]
    assert response["status_code"] == 400
    assert response["body"]["error"]["param"] == "url"
    assert "gguf_embeddings" in response["body"]["error"]["message"]
