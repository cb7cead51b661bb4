"""The server-tool loop against a real llama.cpp: `batchd serve --gguf` with the tiny scripted
search model (tests/acceptance/tiny_gguf.py, `search=True`), a local index built by
`batchd index build`, and the official SDK with strict response validation.

The model calls `web_search` while the conversation has no tool result and then answers quoting the
Shannon page with a `<cite>` tag, so the whole path is real: llama.cpp's own chat template and
tool-call parser, batchd's search, the result given back in llama.cpp's format, and the citation
found in the hit's text.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

pytest.importorskip("xllamacpp", reason="the llamacpp tests need the xllamacpp wheel")
pytest.importorskip("gguf", reason="building the tiny model needs the gguf package")
pytest.importorskip("tokenizers", reason="building the tiny model needs the tokenizers package")

from tests.acceptance import tiny_gguf
from tests.acceptance.conftest import make_client, wait_ended
from tests.acceptance.server import ServerProcess
from tests.acceptance.test_server_tools import seed_web_search_example

SHANNON = "https://science.example/shannon"
CORPUS = [
    {"url": SHANNON, "title": "Claude Shannon",
     "text": "Claude Shannon was born on April 30, 1916, in Petoskey, Michigan. He founded information "
             "theory."},
    {"url": "https://news.example/llama-farm", "title": "Latest news from the llama farm",
     "text": "The llama farm opened a new barn in May. Visitors can feed the llamas on Sundays."},
]  # fmt: skip
WEB_SEARCH = [{"type": "web_search_20250305", "name": "web_search"}]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("llamacpp-tools")
    model = tiny_gguf.build(folder / "search.gguf", search=True)
    source = folder / "corpus.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(d) for d in CORPUS))
    index = folder / "index.db"
    subprocess.run(
        [sys.executable, "-m", "batchd", "index", "build", str(source), "--out", str(index)],
        check=True,
        capture_output=True,
    )
    config = folder / "batchd.toml"
    config.write_text(f'[web_search]\nindex = "{index}"\n')
    env = {"BATCHD_CONFIG": str(config), "BATCHD_GGUF": str(model), "BATCHD_GGUF_PARALLEL": "2"}
    proc = ServerProcess(folder / "d", env).start()
    yield proc
    assert proc.stop() == 0


def check_answer(message: Any) -> None:
    """server_tool_use, its web_search_tool_result and the cited answer, one search counted."""
    kinds = [b.type for b in message.content]
    assert kinds == ["server_tool_use", "web_search_tool_result", "text", "text", "text"]
    call, found, before, quoted, after = message.content
    assert call.name == "web_search" and call.input == {"query": tiny_gguf.SEARCH_QUERY}
    assert call.id.startswith("srvtoolu_")
    assert found.tool_use_id == call.id
    assert found.content[0].url == SHANNON and found.content[0].title == "Claude Shannon"
    assert before.text == "According to the search, " and not before.citations
    assert quoted.text == tiny_gguf.QUOTE
    assert after.text == "." and not after.citations
    [citation] = quoted.citations
    assert citation.type == "web_search_result_location"
    assert (citation.url, citation.title, citation.cited_text) == (SHANNON, "Claude Shannon", tiny_gguf.QUOTE)
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 4  # the scripted token and the end, per llama.cpp call, summed
    assert message.usage.server_tool_use.web_search_requests == 1
    assert message.usage.server_tool_use.web_fetch_requests == 0


def test_batch_searches_and_answers_on_llamacpp(served: ServerProcess) -> None:
    n = 4
    requests = [
        {
            "custom_id": f"q-{i}",
            "params": {
                "model": "tiny",
                "max_tokens": 256,
                "tools": WEB_SEARCH,
                "messages": [{"role": "user", "content": f"When was Claude Shannon born? ({i})"}],
            },
        }
        for i in range(n)
    ]
    with make_client(served.base_url, timeout=60) as client:
        batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        wait_ended(client, batch.id, n, timeout=60)
        results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert sorted(results) == [f"q-{i}" for i in range(n)]
    for result in results.values():
        assert result.type == "succeeded", result
        check_answer(result.message)


def test_seed_web_search_example_on_llamacpp(
    served: ServerProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's web-search request, as written, served by llama.cpp (every model name is)."""
    out, message = seed_web_search_example(served.base_url, monkeypatch, capsys)
    assert "request-2: Success" in out and f"Response: {tiny_gguf.QUOTE}..." in out
    check_answer(message)


def test_a_streamed_search_and_answer_on_llamacpp(served: ServerProcess) -> None:
    """Streamed, the same answer: the tool blocks whole and in order, the text up to the quote
    as the model wrote it, then the cited spans."""
    kw: dict[str, Any] = {
        "model": "tiny",
        "max_tokens": 256,
        "tools": WEB_SEARCH,
        "messages": [{"role": "user", "content": "When was Claude Shannon born? (streamed)"}],
    }
    with make_client(served.base_url, timeout=60) as client:
        events = list(client.messages.create(**kw, stream=True))
        with client.messages.stream(**kw) as stream:
            final = stream.get_final_message()
    check_answer(final)
    starts = [e.content_block.type for e in events if e.type == "content_block_start"]
    assert starts == ["server_tool_use", "web_search_tool_result", "text", "text", "text"]
    deltas = [(e.index, e.delta.type) for e in events if e.type == "content_block_delta"]
    assert deltas[-4:] == [(2, "text_delta"), (3, "citations_delta"), (3, "text_delta"), (4, "text_delta")]
