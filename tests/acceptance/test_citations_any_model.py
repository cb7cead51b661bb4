"""Citations for any model, end to end: a real `batchd serve` routes requests whose documents have
`citations.enabled` to an OpenAI-compatible upstream (a loopback model of our own that quotes its
sources in batchd's markup), and the official SDK reads back Anthropic's citations at exact indices.

Needs the server-tool loop (`batchd.tools.loop`), which wraps every non-simulator backend and calls
`batchd.tools.citations`: until both are on one branch, this module skips.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response

from batchd.tools import citations
from tests.acceptance.conftest import make_client, wait_ended
from tests.acceptance.server import ServerProcess
from tests.integration.backends_upstream import Upstream
from tests.unit.conftest import make_pdf

pytest.importorskip("batchd.tools.loop", reason="the server-tool loop (branch loop) is not merged yet")

MODEL = "up-openai"
SOURCE = re.compile(r'<source id="(\d+)"[^>]*>\n(.*?)\n</source>', re.DOTALL)
PARAPHRASE = "the sources disagree about everything"

# Non-ASCII, an astral character, curly quotes and a CRLF: indices count code points, CRLF as two.
NOTE = "Zoë’s café 🚀 opened in Zürich\r\nin 2019 and serves “rösti” daily."
PAGES = ("Llamas are domesticated South American camelids.", "They live in herds and hum softly.")
BLOCKS = ("Minutes: the budget was approved.", "Next meeting: in June.")
PDF_SOURCE = {"media_type": "application/pdf", "data": make_pdf(*PAGES)}


class QuotingModel(Upstream):
    """An OpenAI-compatible upstream that answers as a small model told to cite would: each source
    it is shown quoted whole, with its whitespace collapsed and its curly apostrophes straightened;
    then a paraphrase wrapped as a quote, and a quote of a source that does not exist."""

    async def chat(self, request: Request) -> Response:
        body = await self._record(request)
        prompt = "\n\n".join(_text(m.get("content")) for m in body["messages"] if m["role"] != "system")
        quotes = [
            f'Source {n}: <cite source="{n}">{_as_copied(text)}</cite>.' for n, text in SOURCE.findall(prompt)
        ]
        quotes.append(f'Also, <cite source="1">{PARAPHRASE}</cite>; <cite source="99">and more</cite>.')
        message = {"role": "assistant", "content": " ".join(quotes)}
        answer = {
            "id": "chatcmpl-cite",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
        }
        return Response(orjson.dumps(answer), media_type="application/json")


def _as_copied(text: str) -> str:
    return " ".join(text.replace("’", "'").split())


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n\n".join(p.get("text", "") for p in content or () if isinstance(p, dict))


@pytest.fixture(scope="module")
def model() -> Iterator[QuotingModel]:
    up = QuotingModel()
    up.start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def routed(model: QuotingModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("citations")
    config = data / "batchd.toml"
    config.write_text(f'[[routes]]\nmodel = "{MODEL}"\nbackend = "openai"\nbase_url = "{model.url}/v1"\n')
    proc = ServerProcess(data / "d", {"BATCHD_CONFIG": str(config)}).start()
    yield proc
    proc.stop()


def document(source: dict[str, Any], cited: bool = True, **extra: Any) -> dict[str, Any]:
    block = {"type": "document", "source": source, **extra}
    return {**block, "citations": {"enabled": True}} if cited else block


def documents() -> list[dict[str, Any]]:
    """Four documents: plain text (cited), plain text (not cited), a two-page PDF, custom content."""
    return [
        document({"type": "text", "media_type": "text/plain", "data": NOTE}, title="Note"),
        document({"type": "text", "media_type": "text/plain", "data": "Never cited."}, cited=False),
        document({"type": "base64", **PDF_SOURCE}, title="Llamas"),
        document({"type": "content", "content": [{"type": "text", "text": t} for t in BLOCKS]}),
        {"type": "text", "text": "What do these say?"},
    ]


def citations_of(content: list[Any]) -> list[tuple[str, Any]]:
    return [(block.text, c) for block in content if block.type == "text" for c in block.citations or ()]


def check_answer(content: list[Any]) -> None:
    """Every document cited at its exact indices; the paraphrase and the unknown source uncited."""
    text = "".join(b.text for b in content if b.type == "text")
    assert "<cite" not in text and "</cite>" not in text
    assert PARAPHRASE in text and "and more" in text
    found = citations_of(content)
    assert [c.type for _, c in found] == ["char_location", "page_location", "content_block_location"]
    (_, char), (_, page), (_, blocks) = found
    assert (char.document_index, char.document_title, char.start_char_index, char.end_char_index) == (
        0,
        "Note",
        0,
        len(NOTE),
    )
    assert NOTE[char.start_char_index : char.end_char_index] == char.cited_text == NOTE
    assert (page.document_index, page.start_page_number, page.end_page_number) == (2, 1, 3)
    assert page.cited_text == "\n\n".join(PAGES)  # the quote runs across the page break
    assert (blocks.document_index, blocks.start_block_index, blocks.end_block_index) == (3, 0, 2)
    assert blocks.cited_text == "\n\n".join(BLOCKS)
    # Each quote is a block of its own: the words as the model wrote them.
    assert [said for said, _ in found] == [
        _as_copied(NOTE),
        _as_copied("\n\n".join(PAGES)),
        _as_copied("\n\n".join(BLOCKS)),
    ]


def test_a_batch_with_documents_of_every_kind_is_cited(routed: ServerProcess, model: QuotingModel) -> None:
    with make_client(routed.base_url) as client:
        batch = client.messages.batches.create(
            requests=[
                {
                    "custom_id": "docs",
                    "params": {
                        "model": MODEL,
                        "max_tokens": 512,
                        "system": "Answer briefly.",
                        "messages": [{"role": "user", "content": documents()}],
                    },
                }
            ]
        )
        wait_ended(client, batch.id, 1)
        [result] = list(client.messages.batches.results(batch.id))
    assert result.result.type == "succeeded", result.result
    check_answer(result.result.message.content)
    sent = model.calls[-1][2]
    system = "Answer briefly.\n\n" + citations.CITATION_INSTRUCTIONS
    assert sent["messages"][0] == {"role": "system", "content": system}
    assert "citations" not in orjson.dumps(sent).decode()  # nothing the translation would refuse
    assert [n for n, _ in SOURCE.findall(_text(sent["messages"][1]["content"]))] == ["1", "2", "3"]


def test_a_message_cites_and_its_answer_goes_back_in_a_later_turn(routed: ServerProcess) -> None:
    with make_client(routed.base_url) as client:
        first = client.messages.create(
            model=MODEL, max_tokens=512, messages=[{"role": "user", "content": documents()}]
        )
        check_answer(first.content)
        again = client.messages.create(
            model=MODEL,
            max_tokens=512,
            messages=[
                {"role": "user", "content": documents()},
                {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                {"role": "user", "content": "Say it again."},
            ],
        )
    check_answer(again.content)


def test_the_seed_citations_example_on_a_real_model_route(routed: ServerProcess) -> None:
    with make_client(routed.base_url) as client:
        batch = client.beta.messages.batches.create(
            requests=[
                {
                    "custom_id": "citations-1",
                    "params": {
                        "model": MODEL,
                        "max_tokens": 2048,
                        "citations": {"type": "enabled"},  # the seed's shorthand
                        "messages": [
                            {
                                "role": "user",
                                "content": [
                                    {"type": "document", "source": {"type": "base64", **PDF_SOURCE}},
                                    {"type": "text", "text": "Summarize with citations"},
                                ],
                            }
                        ],
                    },
                }
            ]
        )
        while client.beta.messages.batches.retrieve(batch.id).processing_status != "ended":
            time.sleep(0.05)
        [result] = list(client.beta.messages.batches.results(batch.id))
    assert result.result.type == "succeeded", result.result
    cited = [c for _, c in citations_of(result.result.message.content)]
    assert [(c.type, c.start_page_number, c.end_page_number) for c in cited] == [("page_location", 1, 3)]
    assert cited[0].cited_text == "\n\n".join(PAGES)
