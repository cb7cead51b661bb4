"""The OpenAI wire's realtime endpoints on real llama.cpp (the xllamacpp wheel) running a tiny model
the test builds, through the official `openai` SDK against a real `batchd serve --gguf`: a chat
completion, its stream passed on from llama.cpp's own events, and a text completion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("xllamacpp", reason="the llamacpp tests need the xllamacpp wheel")
pytest.importorskip("gguf", reason="building the tiny model needs the gguf package")
pytest.importorskip("tokenizers", reason="building the tiny model needs the tokenizers package")

from tests.acceptance import tiny_gguf
from tests.acceptance.openai_wire import make_openai
from tests.acceptance.server import ServerProcess

HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gguf.build(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def test_llamacpp_answers_and_streams(server_factory: Callable[..., ServerProcess], model: Path) -> None:
    srv = server_factory(gguf=str(model), gguf_parallel="1", gguf_ctx="1024", gguf_threads="1")
    with make_openai(srv.base_url) as client:
        whole = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=6, temperature=0)
        events = list(
            client.chat.completions.create(
                model="tiny",
                messages=HELLO,
                max_tokens=6,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = client.completions.create(model="tiny", prompt="Once upon", max_tokens=4, temperature=0)
    content = [e.choices[0].delta.content for e in events if e.choices and e.choices[0].delta.content]
    assert "".join(content) == whole.choices[0].message.content  # greedy: the same tokens
    assert (
        events[-1].usage is not None and events[-1].usage.completion_tokens == whole.usage.completion_tokens
    )  # type: ignore[union-attr]
    assert text.object == "text_completion" and text.choices[0].finish_reason in ("stop", "length")
