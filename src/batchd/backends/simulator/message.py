"""Builds the simulator's Message for one request: content, stop reason and usage."""

from __future__ import annotations

import re
from typing import Any

import orjson

from batchd import exceptions
from batchd.backends.simulator import blocks as sim_blocks
from batchd.backends.simulator import directives as sim_directives
from batchd.backends.simulator import input as sim_input
from batchd.backends.simulator import schema as sim_schema
from batchd.backends.simulator import text as sim_text

ECHO_WORDS = 12  # words of the prompt quoted at the start of the answer
ANSWER_WORDS = (20, 150)  # natural answer length range
THINKING_WORDS = (30, 150)  # natural thinking length range

_WORD = re.compile(r"[A-Za-z0-9][\w'-]*")
_SERVER_TOOL_PREFIXES = (
    "web_search_",
    "web_fetch_",
    "code_execution_",
    "tool_search_tool_",
)
_THINKING_ON = ("enabled", "adaptive")
_REFUSAL_TEXT = "I'm sorry, but I can't help with that request."


def text_of(content: Any) -> str:
    """The text of a message's content: the string, or its text blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            b["text"]
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    return ""


def compose(
    params: dict[str, Any],
    digest: bytes,
    user_text: str,
    directives: sim_directives.Directives,
) -> dict[str, Any]:
    """The Message for `params`; `user_text` is the last user text minus directives."""
    rng = sim_text.Rng(int.from_bytes(digest[:8], "little"))
    max_tokens = int(params["max_tokens"])
    input_tokens, documents = sim_input.read(params)
    schema = sim_input.output_schema(params)
    if schema is not None and documents:
        raise exceptions.BackendError(
            "Citations are not supported with structured outputs (output_config.format)",
            status=400,
            error_type="invalid_request_error",
        )
    echo = _echo(user_text)
    natural = "end_turn"
    stop_details = container = None
    searches = 0
    known: dict[int, int] = {}  # block index -> token count, where already known
    json_at = -1  # the index of the structured answer's text block, if any
    thinking_words = 0
    if directives.refusal:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": _REFUSAL_TEXT}]
        natural = "refusal"
        stop_details = {
            "type": "refusal",
            "category": directives.refusal_category,
            "explanation": "Simulated refusal requested by @sim:refusal",
        }
    else:
        blocks, thinking_words = _thinking(params, digest, rng, echo, max_tokens)
        if blocks:
            known[0] = thinking_words
        tools = [t for t in params.get("tools") or () if isinstance(t, dict)]
        if tools:
            server, cited, container, searches = _server_tools(tools, digest, rng, user_text)
            if schema is not None:  # every text block of a structured answer is the JSON
                server = [b for b in server if b["type"] != "text"]
                cited = []
            blocks += server
        for index, doc, pages in documents:
            blocks += sim_blocks.document_citations(index, doc, pages, rng)
        if searches:
            blocks += cited
        tool, forced = None, False
        if tools or directives.tool:
            tool, forced = _tool_call(params, tools, directives, user_text)
        prefix = f"You asked about: {echo}\n\n" if echo else ""
        if tool is not None:
            name = str(tool.get("name"))
            if not forced and schema is None:  # a forced call comes without a preamble, as on the real API
                text = f"{prefix}I'll use the {name} tool for this."
                blocks.append({"type": "text", "text": text})
            tool_id = "toolu_01" + sim_text.ident(digest, b"toolu")
            tool_input = sim_schema.tool_input(tool, rng, _WORD.findall(user_text))
            blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": tool_input})
            natural = "tool_use"
        elif schema is not None:
            value = sim_schema.value_for(schema, rng, _WORD.findall(user_text))
            json_at = len(blocks)
            known[json_at] = sim_input.json_tokens(value)
            blocks.append({"type": "text", "text": orjson.dumps(value).decode()})
        else:
            prefix = _tool_result_preface(params["messages"]) + prefix
            text, known[len(blocks)] = _answer(rng, prefix, directives.tokens)
            blocks.append({"type": "text", "text": text})
    content, output_tokens, stop_reason, stop_sequence = _fit(
        blocks, max_tokens, params.get("stop_sequences"), known, json_at
    )
    # Thinking always fits: it takes at most half of max_tokens.
    thinking_tokens = thinking_words if content else 0
    return {
        "id": "msg_01" + sim_text.base58(digest[8:30]),
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": content,
        "stop_reason": stop_reason or natural,
        "stop_sequence": stop_sequence,
        "stop_details": stop_details,
        "container": container,
        "usage": _usage(input_tokens, output_tokens, thinking_tokens, searches),
    }


def _usage(input_tokens: int, output_tokens: int, thinking_tokens: int, searches: int) -> dict[str, Any]:
    server_tool_use = None
    if searches:
        server_tool_use = {"web_search_requests": searches, "web_fetch_requests": 0}
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0,
            "ephemeral_1h_input_tokens": 0,
        },
        "server_tool_use": server_tool_use,
        "service_tier": "batch",
        "output_tokens_details": {"thinking_tokens": thinking_tokens},
        "inference_geo": "not_available",
        "speed": "standard",
    }


def _echo(user_text: str) -> str:
    """The first words of the prompt, closed with punctuation; "" for no words."""
    words = user_text.split(None, ECHO_WORDS)  # the rest stays one unsplit string
    if not words:
        return ""
    echo = " ".join(words[:ECHO_WORDS]) + ("…" if len(words) > ECHO_WORDS else "")
    return echo if echo[-1] in ".?!…" else echo + "."


def _server_tools(
    tools: list[dict[str, Any]], digest: bytes, rng: sim_text.Rng, user_text: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None, int]:
    """Search and code blocks, the text citing the search, the container, searches."""
    blocks: list[dict[str, Any]] = []
    cited: list[dict[str, Any]] = []
    container = None
    searches = 0
    for tool in tools:
        kind = str(tool.get("type") or "")
        if kind.startswith("web_search_") and not searches:
            query = " ".join(_WORD.findall(user_text)[:8]) or "latest news"
            pair, cited = sim_blocks.web_search(digest, rng, query)
            blocks += [
                {"type": "text", "text": f"I'll search the web for {query}."},
                *pair,
            ]
            searches = 1
        elif kind.startswith("code_execution_") and container is None:
            pair, container, summary = sim_blocks.code_execution(digest, rng, kind)
            blocks += [
                {"type": "text", "text": "Let me run a short calculation."},
                *pair,
                {"type": "text", "text": summary},
            ]
    return blocks, cited, container, searches


def _answer(rng: sim_text.Rng, prefix: str, tokens: int | None) -> tuple[str, int]:
    """The answer text and its word count."""
    goal = tokens if tokens is not None else rng.between(*ANSWER_WORDS)
    prefix_words = sim_text.count_words(prefix)
    prose, prose_words = sim_text.PROSE.take_counted(rng, goal - prefix_words)
    text = prefix + prose
    if tokens is not None and prefix_words + prose_words > goal:
        return sim_text.cut_words(text, goal), goal
    return text.rstrip(), prefix_words + prose_words


def _thinking(
    params: dict[str, Any], digest: bytes, rng: sim_text.Rng, echo: str, max_tokens: int
) -> tuple[list[dict[str, Any]], int]:
    """The thinking block, if thinking is on, and its word count."""
    thinking = params.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in _THINKING_ON:
        return [], 0
    goal = rng.between(*THINKING_WORDS)
    budget = thinking.get("budget_tokens")
    if isinstance(budget, int):
        goal = min(goal, budget)
    goal = max(1, min(goal, max_tokens // 2))  # leave room for the answer
    opening = f"The user is asking about: {echo}" if echo else "Let me think."
    opening_words = sim_text.count_words(opening)
    reasoning, words = sim_text.REASONING.take_counted(rng, goal - opening_words, at_most=True)
    text = f"{opening} {reasoning}" if reasoning else opening
    if opening_words + words > goal:
        text, words = sim_text.cut_words(text, goal), goal - opening_words
    signature = sim_text.opaque(digest, b"signature", 192)
    block = {"type": "thinking", "thinking": text, "signature": signature}
    return [block], opening_words + words


def _tool_call(
    params: dict[str, Any],
    tools: list[dict[str, Any]],
    directives: sim_directives.Directives,
    user_text: str,
) -> tuple[dict[str, Any] | None, bool]:
    """The client tool to call, if any, and whether `tool_choice` forced it."""
    client = [t for t in tools if not str(t.get("type") or "").startswith(_SERVER_TOOL_PREFIXES)]
    by_name = {str(t.get("name")): t for t in client}
    if directives.tool is not None:
        if directives.tool not in by_name:
            raise exceptions.BackendError(
                f"@sim:tool={directives.tool} names no tool of this request",
                status=400,
                error_type="invalid_request_error",
            )
        return by_name[directives.tool], False
    choice = params.get("tool_choice") or {}
    kind = choice.get("type", "auto") if isinstance(choice, dict) else "auto"
    if not client or kind == "none":
        return None, False
    if kind == "tool":
        return by_name.get(str(choice.get("name"))), True
    if kind == "any":
        return client[0], True
    if _tool_results_of(params["messages"]):
        return None, False
    lowered = user_text.lower()
    for name, tool in by_name.items():
        if name.lower() in lowered or name.lower().replace("_", " ") in lowered:
            return tool, False
    return None, False


def _tool_results_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last = messages[-1] if messages else {}
    if last.get("role") != "user" or not isinstance(last.get("content"), list):
        return []
    return [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]


def _tool_result_preface(messages: list[dict[str, Any]]) -> str:
    """A sentence quoting each trailing tool_result, so the answer visibly uses it."""
    results = _tool_results_of(messages)
    if not results:
        return ""
    names = {}
    for message in messages[:-1]:
        if message.get("role") == "assistant" and isinstance(message.get("content"), list):
            for b in message["content"]:
                if isinstance(b, dict) and b.get("type") == "tool_use":
                    names[b.get("id")] = b.get("name")
    lines = []
    for block in results:
        name = names.get(block.get("tool_use_id"))
        label = f"The {name} tool" if name else "The tool"
        words = text_of(block.get("content")).split()
        quote = " ".join(words[:20]) + ("…" if len(words) > 20 else "") or "nothing"
        verb = "reported an error:" if block.get("is_error") else "returned:"
        lines.append(f"{label} {verb} {quote}\n\n")
    return "".join(lines)


def _fit(
    blocks: list[dict[str, Any]],
    max_tokens: int,
    stops: list[str] | None,
    known: dict[int, int],
    json_at: int = -1,
) -> tuple[list[dict[str, Any]], int, str | None, str | None]:
    """Apply max_tokens and stop sequences to `blocks`.

    Returns the content, output tokens, stop reason (None when the content ended
    naturally) and stop sequence. `known` maps block indexes to their token counts;
    block `json_at` is JSON text, counted and cut at one token per 4 bytes.
    """
    out: list[dict[str, Any]] = []
    used = 0
    for i, block in enumerate(blocks):
        kind = block["type"]
        left = max_tokens - used
        if kind == "text" or kind == "thinking":
            text = block[kind]
            count = _json_count if i == json_at else sim_text.count_words
            if stops and kind == "text":
                hits = [(p, seq) for seq in stops if seq and (p := text.find(seq)) >= 0]
                if hits:
                    pos, seq = min(hits)
                    n = count(text[:pos])
                    if n <= left:
                        if text[:pos].strip():
                            out.append({**block, kind: text[:pos]})
                        return out, used + n, "stop_sequence", seq
            n = known[i] if i in known else count(text)
            if n > left:
                cut = text[: 4 * left] if i == json_at else sim_text.cut_words(text, left)
                if cut:
                    out.append({**block, kind: cut})
                return out, max_tokens, "max_tokens", None
            if n:
                out.append(block)
            used += n
        else:
            n = sim_input.json_tokens(block["input"]) if "input" in block else 0
            if n > left:
                return out, used, "max_tokens", None
            out.append(block)
            used += n
    return out, used, None, None


def _json_count(text: str) -> int:
    """Tokens of (a part of) a structured answer's JSON text: one per 4 bytes."""
    return len(text.encode()) // 4
