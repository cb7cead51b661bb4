"""The server-tool loop around a scripted model: block shapes, ids, usage, max_uses, pause_turn and
its continuation, mixed turns, multi-turn round trips, tokens, and failures as error blocks."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from batchd import exceptions
from batchd.tools.errors import ToolError
from batchd.tools.loop import ToolLoop
from batchd.tools.tokens import Tokens
from batchd.tools.web_search.base import SearchHit
from tests.unit.tools.model import Corpus, ScriptedModel, message, search_then_answer, tool_use

SRVTOOLU = re.compile(r"^srvtoolu_01[0-9A-Za-z]{22}$")
HITS = [
    SearchHit(
        "https://llamas.example/herds", "Llama herds", "Llamas live in herds and hum softly.", "May 1, 2025"
    ),
    SearchHit("https://camelids.example/a", "Camelids", "Alpacas and llamas are camelids.", None),
]
SEARCH = {"type": "web_search_20250305", "name": "web_search"}
FETCH = {"type": "web_fetch_20250910", "name": "web_fetch"}


def params(text: str = "Tell me about llamas", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra}


def make_loop(model: ScriptedModel, provider: Any = None, **kwargs: Any) -> ToolLoop:
    return ToolLoop(
        model,
        provider=provider or Corpus(HITS),
        fetcher=kwargs.pop("fetcher", None),
        tokens=kwargs.pop("tokens", Tokens(b"k" * 32)),
        max_iterations=kwargs.pop("max_iterations", 10),
        **kwargs,
    )


async def test_a_request_without_server_tools_goes_straight_through() -> None:
    model = ScriptedModel([message({"type": "text", "text": "hi"})])
    p = params(tools=[{"name": "get", "input_schema": {"type": "object"}}])
    answer = await make_loop(model).create_message(p)
    assert model.seen == [p] and model.seen[0] is p  # the same object: nothing rewritten
    assert answer["content"] == [{"type": "text", "text": "hi"}]
    assert "server_tool_use" not in answer["usage"]


async def test_search_then_answer() -> None:
    model = ScriptedModel(search_then_answer)
    answer = await make_loop(model).create_message(params(tools=[SEARCH]))
    kinds = [b["type"] for b in answer["content"]]
    assert kinds == ["text", "server_tool_use", "web_search_tool_result", "text"]
    call, result = answer["content"][1], answer["content"][2]
    assert (
        SRVTOOLU.match(call["id"]) and call["name"] == "web_search" and call["input"] == {"query": "llamas"}
    )
    assert result["tool_use_id"] == call["id"]
    assert [r["url"] for r in result["content"]] == [h.url for h in HITS]
    assert result["content"][0]["page_age"] == "May 1, 2025" and result["content"][1]["page_age"] is None
    assert all(r["type"] == "web_search_result" and r["encrypted_content"] for r in result["content"])
    assert answer["stop_reason"] == "end_turn"
    usage = answer["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["cache_read_input_tokens"]) == (200, 20, 2)
    assert usage["server_tool_use"] == {"web_search_requests": 1, "web_fetch_requests": 0}
    # The model was offered a function tool and got the page text back, in its own conversation.
    first, second = model.seen
    assert first["tools"][0]["name"] == "web_search" and "type" not in first["tools"][0]
    assert first["tools"][0]["input_schema"]["required"] == ["query"]
    assistant, user = second["messages"][-2:]
    assert assistant["content"][1] == {
        "type": "tool_use",
        "id": call["id"],
        "name": "web_search",
        "input": {"query": "llamas"},
    }
    assert user["content"][0]["tool_use_id"] == call["id"]
    assert "Llamas live in herds and hum softly." in user["content"][0]["content"]
    assert "https://llamas.example/herds" in user["content"][0]["content"]


async def test_max_uses_gives_the_error_block_and_is_not_billed() -> None:
    script = [
        message(tool_use("web_search", query="llamas"), tool_use("web_search", query="alpacas")),
        message({"type": "text", "text": "done"}),
    ]
    model = ScriptedModel(script)
    answer = await make_loop(model).create_message(params(tools=[{**SEARCH, "max_uses": 1}]))
    results = [b for b in answer["content"] if b["type"] == "web_search_tool_result"]
    assert isinstance(results[0]["content"], list)
    assert results[1]["content"] == {
        "type": "web_search_tool_result_error",
        "error_code": "max_uses_exceeded",
    }
    assert answer["usage"]["server_tool_use"]["web_search_requests"] == 1
    told = model.seen[1]["messages"][-1]["content"]
    assert told[1]["is_error"] is True and "max_uses_exceeded" in told[1]["content"]


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (ToolError("too_many_requests"), "too_many_requests"),
        (ToolError("query_too_long"), "query_too_long"),
        (RuntimeError("provider bug"), "unavailable"),
    ],
)
async def test_provider_failures_become_error_blocks(failure: Exception, code: str) -> None:
    model = ScriptedModel(search_then_answer)
    answer = await make_loop(model, Corpus(HITS, fail=failure)).create_message(params(tools=[SEARCH]))
    result = answer["content"][2]
    assert result["content"] == {"type": "web_search_tool_result_error", "error_code": code}
    assert answer["stop_reason"] == "end_turn"
    assert answer["usage"]["server_tool_use"]["web_search_requests"] == 0  # failed searches are not billed


async def test_pause_turn_then_continuation() -> None:
    always = ScriptedModel(lambda p: message(tool_use("web_search", query="llamas")))
    loop = make_loop(always, max_iterations=2)
    first = await loop.create_message(params(tools=[SEARCH]))
    assert first["stop_reason"] == "pause_turn"
    kinds = [b["type"] for b in first["content"]]
    assert kinds == ["server_tool_use", "web_search_tool_result", "server_tool_use"]  # the last: pending
    assert first["usage"]["server_tool_use"]["web_search_requests"] == 1
    pending = first["content"][-1]

    answering = ScriptedModel(search_then_answer)
    p = params(tools=[SEARCH])
    p["messages"].append({"role": "assistant", "content": first["content"]})
    second = await make_loop(answering).create_message(p)
    # The pending call ran first: the response begins with its result, not a repeated call.
    assert second["content"][0]["type"] == "web_search_tool_result"
    assert second["content"][0]["tool_use_id"] == pending["id"]
    assert [b["type"] for b in second["content"][1:]] == ["text"]
    assert second["stop_reason"] == "end_turn"
    seen = answering.seen[0]["messages"]
    assert [m["role"] for m in seen] == ["user", "assistant", "user", "assistant", "user"]
    assert seen[-1]["content"][0]["tool_use_id"] == pending["id"]


async def test_a_pending_call_needs_its_tool() -> None:
    p = params(tools=[])
    p["messages"].append(
        {
            "role": "assistant",
            "content": [
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_01x",
                    "name": "web_fetch",
                    "input": {"url": "https://a.example"},
                }
            ],
        }
    )
    p["tools"] = [SEARCH]
    with pytest.raises(exceptions.InvalidParams, match="but no `web_fetch` tool was provided"):
        await make_loop(ScriptedModel(search_then_answer)).create_message(p)


async def test_a_server_and_a_client_tool_in_one_turn() -> None:
    client = {"name": "get_weather", "input_schema": {"type": "object"}}
    both = message(tool_use("web_search", query="llamas"), tool_use("get_weather", city="Lima"))
    model = ScriptedModel([both])
    first = await make_loop(model).create_message(params(tools=[SEARCH, client]))
    assert first["stop_reason"] == "tool_use"
    assert [b["type"] for b in first["content"]] == ["server_tool_use", "tool_use"]  # the search not run
    assert first["usage"]["server_tool_use"]["web_search_requests"] == 0
    weather = first["content"][1]

    p = params(tools=[SEARCH, client])
    p["messages"] += [
        {"role": "assistant", "content": first["content"]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": weather["id"], "content": "sunny"}],
        },
    ]
    answering = ScriptedModel(lambda p: message({"type": "text", "text": "ok"}))
    second = await make_loop(answering).create_message(p)
    assert second["content"][0]["type"] == "web_search_tool_result"
    assert second["content"][0]["tool_use_id"] == first["content"][0]["id"]
    last = answering.seen[0]["messages"][-1]
    assert [b["tool_use_id"] for b in last["content"]] == [first["content"][0]["id"], weather["id"]]


async def test_multi_turn_round_trip_shows_the_results_again() -> None:
    tokens = Tokens(b"k" * 32)
    first = await make_loop(ScriptedModel(search_then_answer), tokens=tokens).create_message(
        params(tools=[SEARCH])
    )
    later = ScriptedModel(lambda p: message({"type": "text", "text": "again"}))
    p = params(tools=[SEARCH])
    p["messages"] += [
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": "more?"},
    ]
    answer = await make_loop(later, tokens=tokens).create_message(p)
    assert answer["content"] == [{"type": "text", "text": "again"}]
    seen = later.seen[0]["messages"]
    assert [m["role"] for m in seen] == ["user", "assistant", "user", "assistant", "user"]
    assert "Llamas live in herds and hum softly." in seen[2]["content"][0]["content"]
    assert seen[3]["content"][0]["text"].startswith("Found: ")


async def test_a_forged_or_foreign_token_is_a_400() -> None:
    first = await make_loop(ScriptedModel(search_then_answer)).create_message(params(tools=[SEARCH]))
    result = first["content"][2]["content"][0]
    for forged in (
        result["encrypted_content"][:-4] + "AAAA",
        "EqgfCioIARgBIiQ3YTAw",  # one of Anthropic's
        Tokens(b"z" * 32).encode("content", {"url": result["url"]}),  # another server's key
    ):
        content = [dict(b) for b in first["content"]]
        content[2] = {**content[2], "content": [{**result, "encrypted_content": forged}]}
        p = params(tools=[SEARCH])
        p["messages"] += [{"role": "assistant", "content": content}, {"role": "user", "content": "more"}]
        with pytest.raises(
            exceptions.InvalidParams, match=r"messages\.1\.content\.2\.content\.0\.encrypted_content"
        ):
            await make_loop(ScriptedModel(search_then_answer)).create_message(p)


async def test_a_tool_result_for_a_server_call_is_refused() -> None:
    p = params(tools=[SEARCH])
    p["messages"] += [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_01a",
                    "name": "web_search",
                    "input": {"query": "x"},
                }
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "srvtoolu_01a", "content": "x"}]},
    ]
    with pytest.raises(exceptions.InvalidParams, match="batchd runs server tools itself"):
        await make_loop(ScriptedModel(search_then_answer)).create_message(p)


async def test_thinking_is_kept_per_iteration() -> None:
    script = [
        message(
            {"type": "thinking", "thinking": "I should search.", "signature": "s1"},
            tool_use("web_search", query="llamas"),
        ),
        message(
            {"type": "thinking", "thinking": "Now I know.", "signature": "s2"},
            {"type": "text", "text": "Herds."},
        ),
    ]
    model = ScriptedModel(script)
    answer = await make_loop(model).create_message(params(tools=[SEARCH]))
    kinds = [b["type"] for b in answer["content"]]
    assert kinds == ["thinking", "server_tool_use", "web_search_tool_result", "thinking", "text"]
    assert model.seen[1]["messages"][1]["content"][0]["signature"] == "s1"  # sent back as it came


async def test_forced_tool_choice_is_relaxed_after_the_first_call() -> None:
    model = ScriptedModel(search_then_answer)
    choice = {"type": "tool", "name": "web_search"}
    await make_loop(model).create_message(params(tools=[SEARCH], tool_choice=choice))
    assert model.seen[0]["tool_choice"] == choice and model.seen[1]["tool_choice"] == {"type": "auto"}


async def test_bad_definitions_are_400s() -> None:
    for tool, match in (
        ({**SEARCH, "name": "search"}, r"tools\.0\.web_search_20250305\.name: Input should be 'web_search'"),
        ({**SEARCH, "allowed_domains": ["https://a.com"]}, "without a scheme"),
        ({**FETCH, "allowed_domains": ["a.com"], "blocked_domains": ["b.com"]}, "cannot be combined"),
    ):
        with pytest.raises(exceptions.InvalidParams, match=match):
            await make_loop(ScriptedModel(search_then_answer)).create_message(params(tools=[tool]))


@dataclasses.dataclass(frozen=True)
class Fetched:
    url: str
    title: str | None
    media_type: str
    text: str
    pdf_base64: str | None
    page_texts: tuple[str, ...] | None
    retrieved_at: str


class Pages:
    """A Fetcher over a dict of pages (the interface of tools/web_fetch's Fetcher)."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        self.fetched: list[tuple[str, int | None]] = []

    async def fetch(self, url: str, *, max_content_tokens: int | None, **filters: Any) -> Fetched:
        self.fetched.append((url, max_content_tokens))
        if url not in self.pages:
            raise ToolError("url_not_accessible", "404")
        return Fetched(url, "Page", "text/plain", self.pages[url], None, None, "2026-01-02T03:04:05Z")


def fetching(url: str) -> Any:
    def script(p: dict[str, Any]) -> dict[str, Any]:
        if any(m["role"] == "user" and isinstance(m["content"], list) for m in p["messages"]):
            return message({"type": "text", "text": "read it"})
        return message(tool_use("web_fetch", url=url))

    return script


@pytest.mark.parametrize(
    ("url", "tool", "code"),
    [
        ("https://docs.example/a", FETCH, None),
        ("https://other.example/b", FETCH, "url_not_in_prior_context"),
        ("https://docs.example/a", {**FETCH, "blocked_domains": ["docs.example"]}, "url_not_allowed"),
        ("ftp://docs.example/a", FETCH, "invalid_tool_input"),
        ("https://docs.example/" + "a" * 250, FETCH, "url_too_long"),
        ("https://docs.example/missing", FETCH, "url_not_accessible"),
    ],
)
async def test_web_fetch(url: str, tool: dict[str, Any], code: str | None) -> None:
    pages = Pages({"https://docs.example/a": "Page A text."})
    prompt = (
        "Read https://docs.example/a and https://docs.example/missing and https://docs.example/" + "a" * 250
    )
    model = ScriptedModel(fetching(url))
    answer = await make_loop(model, fetcher=pages).create_message(
        params(prompt, tools=[{**tool, "max_content_tokens": 500}])
    )
    result = answer["content"][1]
    assert result["type"] == "web_fetch_tool_result"
    if code is None:
        assert result["content"] == {
            "type": "web_fetch_result",
            "url": url,
            "retrieved_at": "2026-01-02T03:04:05Z",
            "content": {
                "type": "document",
                "title": "Page",
                "citations": None,
                "source": {"type": "text", "media_type": "text/plain", "data": "Page A text."},
            },
        }
        assert pages.fetched == [(url, 500)]
        assert "Page A text." in model.seen[1]["messages"][-1]["content"][0]["content"]
        assert answer["usage"]["server_tool_use"] == {"web_search_requests": 0, "web_fetch_requests": 1}
    else:
        assert result["content"] == {"type": "web_fetch_tool_result_error", "error_code": code}


async def test_web_fetch_may_fetch_a_url_a_search_found() -> None:
    def script(p: dict[str, Any]) -> dict[str, Any]:
        results = [
            b
            for m in p["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b.get("type") == "tool_result"
        ]
        if not results:
            return message(tool_use("web_search", query="llamas"))
        if len(results) == 1:
            return message(tool_use("web_fetch", url=HITS[0].url))
        return message({"type": "text", "text": "done"})

    pages = Pages({HITS[0].url: "The full page."})
    answer = await make_loop(ScriptedModel(script), fetcher=pages).create_message(
        params(tools=[SEARCH, FETCH])
    )
    fetched = answer["content"][3]
    assert fetched["content"]["type"] == "web_fetch_result"
    assert answer["usage"]["server_tool_use"] == {"web_search_requests": 1, "web_fetch_requests": 1}


async def test_without_a_fetcher_web_fetch_is_unavailable() -> None:
    answer = await make_loop(ScriptedModel(fetching("https://docs.example/a"))).create_message(
        params("see https://docs.example/a", tools=[FETCH])
    )
    assert answer["content"][1]["content"] == {
        "type": "web_fetch_tool_result_error",
        "error_code": "unavailable",
    }


def fetch_once(url: str) -> Any:
    """Fetches `url` until the conversation holds a server tool's result, then answers."""

    def script(p: dict[str, Any]) -> dict[str, Any]:
        for m in p["messages"]:
            for b in m["content"] if isinstance(m["content"], list) else ():
                if b.get("type") == "tool_result" and str(b.get("tool_use_id")).startswith("srvtoolu_"):
                    return message({"type": "text", "text": "read it"})
        return message(tool_use("web_fetch", url=url))

    return script


SHOWN = "https://shown.example/page"
LOOKUP = {"name": "lookup", "input_schema": {"type": "object"}}


def _search_result(url: str) -> dict[str, Any]:
    return {
        "type": "search_result",
        "source": url,
        "title": "A result",
        "content": [{"type": "text", "text": "x"}],
    }


@pytest.mark.parametrize(
    "block",
    [
        {"type": "document", "source": {"type": "url", "url": SHOWN}},
        {"type": "document", "source": {"type": "url", "url": SHOWN}, "citations": {"enabled": True}},
        {"type": "image", "source": {"type": "url", "url": SHOWN}},
        _search_result(SHOWN),
        {
            "type": "document",
            "source": {"type": "content", "content": [{"type": "text", "text": f"See {SHOWN}"}]},
        },
    ],
    ids=["url-document", "url-document-cited", "url-image", "search-result", "content-document"],
)
@pytest.mark.parametrize("inside_tool_result", [False, True])
async def test_urls_of_sources_and_search_results_are_prior_context(
    block: dict[str, Any], inside_tool_result: bool
) -> None:
    """Spec §3: URLs in user messages and client tool_results may be fetched, whatever block
    carries them: a URL-source document or image, a search_result, a content document."""
    if inside_tool_result:
        messages = [
            {"role": "user", "content": "look it up"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [block]}],
            },
        ]
    else:
        messages = [{"role": "user", "content": [block, {"type": "text", "text": "Read it"}]}]
    pages = Pages({SHOWN: "The page."})
    answer = await make_loop(ScriptedModel(fetch_once(SHOWN)), fetcher=pages).create_message(
        {"model": "m", "max_tokens": 100, "messages": messages, "tools": [FETCH, LOOKUP]}
    )
    assert answer["content"][1]["content"]["type"] == "web_fetch_result", answer["content"][1]
    assert pages.fetched == [(SHOWN, None)]


async def test_a_document_batchd_cannot_read_reaches_the_model_without_its_citations_key() -> None:
    document = {"type": "document", "source": {"type": "url", "url": SHOWN}, "citations": {"enabled": True}}
    model = ScriptedModel([message({"type": "text", "text": "ok"})])
    p = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": [document]}]}
    answer = await make_loop(model).create_message(p)
    assert model.seen[0]["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "url", "url": SHOWN}}
    ]
    assert answer["content"] == [{"type": "text", "text": "ok"}]
    assert (
        p["messages"][0]["content"][0] is document and "citations" in document
    )  # the caller's params unchanged


async def test_request_documents_are_numbered_before_results_of_earlier_turns() -> None:
    """A citable document sent after an earlier turn's search is source 1, the hits after it (as
    docs/server-tools.md says), so a quote naming source 1 is found in the document."""
    first = await make_loop(ScriptedModel(search_then_answer)).create_message(params(tools=[SEARCH]))
    document = {
        "type": "document",
        "title": "Notes",
        "source": {"type": "text", "media_type": "text/plain", "data": "Llamas are calm animals."},
        "citations": {"enabled": True},
    }
    model = ScriptedModel([message({"type": "text", "text": 'So <cite source="1">Llamas are calm</cite>.'})])
    p = params(tools=[SEARCH])
    p["messages"] += [
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [document, {"type": "text", "text": "And these notes?"}]},
    ]
    answer = await make_loop(model).create_message(p)
    seen = str(model.seen[0]["messages"])
    assert '<source id="1" title="Notes">' in seen and '<source id="2" title="Llama herds">' in seen
    cited = [b for b in answer["content"] if b.get("citations")]
    assert cited[0]["citations"][0]["type"] == "char_location"
    assert cited[0]["citations"][0]["cited_text"] == "Llamas are calm"
    assert cited[0]["citations"][0]["document_index"] == 0
