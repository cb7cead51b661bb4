"""The request's citable documents (`sources_from_params`, `document_index`) and the request the
inner backend gets (`rewrite_params`): numbered sources, the instructions, no `citations` left."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from batchd import exceptions
from batchd.backends.openai import request as openai_request
from batchd.tools import citations
from batchd.tools.citations import Source, markup
from tests.unit.conftest import make_pdf

ON = {"enabled": True}


def text_doc(data: str, **extra: Any) -> dict[str, Any]:
    return {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": data}, **extra}


def request(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 100, "messages": list(messages), **extra}


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


QUESTION = {"type": "text", "text": "What do they say?"}


def mixed() -> dict[str, Any]:
    """Five documents: cited, not cited, cited in a tool result, a URL PDF, cited content."""
    return request(
        user(text_doc("Alpha text.", citations=ON, title="A"), text_doc("Beta text."), QUESTION),
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}]},
        user(
            {
                "type": "tool_result",
                "tool_use_id": "t1",
                "content": [
                    {"type": "text", "text": "found:"},
                    text_doc("Gamma text.", citations=ON, context="ctx"),
                ],
            },
            {
                "type": "document",
                "source": {"type": "url", "url": "https://a.example/x.pdf"},
                "citations": ON,
            },
            {
                "type": "document",
                "source": {"type": "content", "content": [{"type": "text", "text": "Delta one."}]},
                "citations": ON,
                "cache_control": {"type": "ephemeral"},
            },
        ),
    )


def test_sources_in_request_order_with_every_document_counted() -> None:
    found = citations.sources_from_params(mixed())
    assert [(s.kind, s.document_index, s.text) for s in found] == [
        ("text", 0, "Alpha text."),
        ("text", 2, "Gamma text."),
        ("content", 4, "Delta one."),
    ]
    assert found[0].title == "A" and found[1].context == "ctx"
    assert citations.document_count(mixed()) == 5


def test_string_content_and_messages_without_documents() -> None:
    params = request(
        {"role": "user", "content": "plain"},
        user({"type": "document", "source": {"type": "content", "content": "One block."}, "citations": ON}),
    )
    [source] = citations.sources_from_params(params)
    assert source.block_texts == ("One block.",) and source.document_index == 0


def test_an_unreadable_pdf_names_its_place() -> None:
    bad = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "bm90IGEgcGRm"},
    }
    params = request(user(text_doc("x"), {**bad, "citations": ON}))
    with pytest.raises(exceptions.InvalidParams, match=r"^messages\.0\.content\.1\.source: The PDF"):
        citations.sources_from_params(params)


def test_rewrite_shows_each_cited_document_as_a_numbered_source() -> None:
    params = mixed()
    before = copy.deepcopy(params)
    found = citations.sources_from_params(params)
    inner = citations.rewrite_params(params, found)
    assert params == before  # never changed in place
    first, second, _ = inner["messages"][0]["content"]
    assert first == {"type": "text", "text": '<source id="1" title="A">\nAlpha text.\n</source>'}
    assert second == text_doc("Beta text.")
    tool_result, url_doc, content = inner["messages"][2]["content"]
    assert tool_result["content"][1] == {
        "type": "text",
        "text": 'Context of source 2: ctx\n<source id="2">\nGamma text.\n</source>',
    }
    assert url_doc == {"type": "document", "source": {"type": "url", "url": "https://a.example/x.pdf"}}
    assert content == {
        "type": "text",
        "text": '<source id="3">\nDelta one.\n</source>',
        "cache_control": {"type": "ephemeral"},
    }
    assert inner["system"] == markup.CITATION_INSTRUCTIONS


def test_the_rendered_body_is_the_searched_text() -> None:
    source = Source.pdf(["Page one.", "Page two."], document_index=0, title='The "best" report')
    rendered = citations.render_source(source, 7)
    assert rendered == '<source id="7" title="The \'best\' report">\nPage one.\n\nPage two.\n</source>'
    hit = Source.search_result(
        url="https://a.example/p", title="P", text="Body.", encrypted_index_for=lambda a, b: ""
    )
    assert (
        citations.render_source(hit, 2)
        == '<source id="2" title="P" url="https://a.example/p">\nBody.\n</source>'
    )


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Be brief.", "Be brief.\n\n" + markup.CITATION_INSTRUCTIONS),
        (
            [{"type": "text", "text": "Be brief."}],
            [{"type": "text", "text": "Be brief."}, {"type": "text", "text": markup.CITATION_INSTRUCTIONS}],
        ),
    ],
)
def test_instructions_end_the_system_prompt(system: Any, expected: Any) -> None:
    params = request(user(text_doc("x", citations=ON), QUESTION), system=system)
    assert citations.rewrite_params(params, citations.sources_from_params(params))["system"] == expected


def test_nothing_to_cite_leaves_the_request_alone() -> None:
    params = request(user(text_doc("x"), QUESTION))
    assert citations.rewrite_params(params, []) is params
    off = request(user(text_doc("x", citations={"enabled": False}), QUESTION), system="S")
    inner = citations.rewrite_params(off, citations.sources_from_params(off))
    assert inner["messages"][0]["content"][0] == text_doc("x") and inner["system"] == "S"


def test_instruct_adds_the_instructions_for_sources_the_loop_adds_later() -> None:
    params = request(user(QUESTION))
    inner = citations.rewrite_params(params, [], instruct=True)
    assert inner["system"] == markup.CITATION_INSTRUCTIONS
    assert inner["messages"] == params["messages"]


def test_the_openai_translation_accepts_the_rewritten_request() -> None:
    params = request(
        user(
            text_doc("The rain in Spain.", citations=ON, title="Weather"),
            {
                "type": "document",
                "source": {
                    "type": "base64",
                    "media_type": "application/pdf",
                    "data": make_pdf("Page words."),
                },
                "citations": ON,
            },
            QUESTION,
        )
    )
    with pytest.raises(openai_request.Untranslatable, match="citations"):
        openai_request.to_chat(params, model="up")
    body = openai_request.to_chat(
        citations.rewrite_params(params, citations.sources_from_params(params)), model="up"
    )
    assert body["messages"][0] == {"role": "system", "content": markup.CITATION_INSTRUCTIONS}
    assert body["messages"][1]["content"] == (
        '<source id="1" title="Weather">\nThe rain in Spain.\n</source>\n\n'
        '<source id="2">\nPage words.\n</source>\n\nWhat do they say?'
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: Source("text", "x"),  # a document without its index
        lambda: Source("pdf", "x", document_index=0),  # without its pages
        lambda: Source("pdf", "a\nb", document_index=0, page_texts=("a", "b")),  # text not its pages joined
        lambda: Source("text", "x", document_index=0, block_texts=("x",)),
        lambda: Source("web_search_result", "x", url="https://a.example"),  # no encrypted_index_for
        lambda: Source(
            "web_search_result", "x", document_index=0, url="u", encrypted_index_for=lambda a, b: ""
        ),
    ],
)
def test_inconsistent_sources_are_refused(make: Any) -> None:
    with pytest.raises(ValueError):
        make()
