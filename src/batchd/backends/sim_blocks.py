"""Content blocks the simulator builds for tools: tool inputs, citations, web search, code."""

from __future__ import annotations

import re
from typing import Any

from batchd.backends import sim_text

SEARCH_HOST = "https://search.batchd.invalid"
CONTAINER_EXPIRES_AT = "2099-01-01T00:00:00Z"  # fixed, so a request always gives one message
LEGACY_CODE_EXECUTION = "code_execution_20250522"  # later versions answer through bash

_SENTENCE = re.compile(r"[^\s.!?][^.!?\n]*[.!?]*")
_MAX_DEPTH = 6  # recursive `$ref`s stop growing optional parts past this
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_SECTIONS = ("news", "guides", "reference", "articles", "blog", "docs")
_TITLE_TAILS = ("A Practical Overview", "What You Need to Know", "Latest Updates",
                "Frequently Asked Questions", "A Short Guide", "Key Facts")
_SNIPPET_LEADS = ("{topic} matters because ", "Sources on {query} note that ",
                  "According to recent coverage of {query}, ", "A review of {query} found that ")
_CANNED_INPUTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("bash_", {"command": "ls -la"}),
    ("text_editor_", {"command": "view", "path": "/repo/README.md"}),
    ("computer_", {"action": "screenshot"}),
    ("memory_", {"command": "view", "path": "/memories"}),
)


# -- tool inputs ----------------------------------------------------------------------------


def tool_input(tool: dict[str, Any], rng: sim_text.Rng, words: list[str]) -> dict[str, Any]:
    """An input object for `tool` that satisfies its `input_schema` (or a canned one)."""
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        kind = str(tool.get("type") or "")
        for prefix, canned in _CANNED_INPUTS:
            if kind.startswith(prefix):
                return dict(canned)
        return {}
    value = _value(schema, schema, rng, words, "input", 0)
    return value if isinstance(value, dict) else {}


def _value(schema: Any, root: dict[str, Any], rng: sim_text.Rng, words: list[str], name: str,
           depth: int) -> Any:
    if not isinstance(schema, dict):
        return _string({}, rng, words, name)
    schema = _resolve(schema, root, depth)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][rng.below(len(schema["enum"]))]
    for key in ("anyOf", "oneOf"):
        options = [o for o in schema.get(key) or [] if isinstance(o, dict)]
        usable = [o for o in options if o.get("type") != "null"] or options
        if usable:
            return _value(usable[rng.below(len(usable))], root, rng, words, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or kind
        kind = kinds[rng.below(len(kinds))] if kinds else None
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        return _object(schema, root, rng, words, depth)
    if kind == "array":
        return _array(schema, root, rng, words, name, depth)
    if kind in ("integer", "number"):
        return _number(schema, rng, integer=kind == "integer")
    if kind == "boolean":
        return rng.chance(50)
    if kind == "null":
        return None
    return _string(schema, rng, words, name)


def _resolve(schema: dict[str, Any], root: dict[str, Any], depth: int) -> dict[str, Any]:
    """Follow local `$ref`s and merge `allOf` parts into one schema."""
    for _ in range(_MAX_DEPTH):
        ref = schema.get("$ref")
        if not (isinstance(ref, str) and ref.startswith("#")):
            break
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**rest, **_pointer(root, ref[1:])}
    parts = schema.get("allOf")
    if isinstance(parts, list) and depth < _MAX_DEPTH:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in parts:
            if isinstance(part, dict):
                part = _resolve(part, root, depth + 1)
                props = {**merged.get("properties", {}), **part.get("properties", {})}
                required = [*merged.get("required", []), *part.get("required", [])]
                merged = {**part, **merged, "properties": props, "required": required}
        schema = merged
    return schema


def _pointer(root: dict[str, Any], pointer: str) -> dict[str, Any]:
    target: Any = root
    for part in filter(None, pointer.split("/")):
        key = part.replace("~1", "/").replace("~0", "~")
        target = target.get(key, {}) if isinstance(target, dict) else {}
    return target if isinstance(target, dict) else {}


def _object(schema: dict[str, Any], root: dict[str, Any], rng: sim_text.Rng, words: list[str],
            depth: int) -> dict[str, Any]:
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    required = set(schema.get("required") or [])
    result: dict[str, Any] = {}
    for key, sub in props.items():
        if key in required or (depth < 3 and rng.chance(50)):
            result[key] = _value(sub, root, rng, words, key, depth + 1)
    for key in required - result.keys():  # required but not described: any string will do
        result[key] = _string({}, rng, words, key)
    return result


def _array(schema: dict[str, Any], root: dict[str, Any], rng: sim_text.Rng, words: list[str],
           name: str, depth: int) -> list[Any]:
    low = int(schema.get("minItems", 0 if depth >= _MAX_DEPTH else 1))
    high = int(schema.get("maxItems", max(low, 3)))
    prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
    count = max(low, min(high, rng.between(low, low + 2)))
    items = schema.get("items", {})
    values = []
    for i in range(count):
        sub = prefix[i] if i < len(prefix) else items
        values.append(_value(sub, root, rng, words, name, depth + 1))
    return values


def _number(schema: dict[str, Any], rng: sim_text.Rng, *, integer: bool) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = 1 if integer else 0.01
    if isinstance(ex_low, int | float) and not isinstance(ex_low, bool):
        low = max(low, ex_low + step) if isinstance(low, int | float) else ex_low + step
    if isinstance(ex_high, int | float) and not isinstance(ex_high, bool):
        high = min(high, ex_high - step) if isinstance(high, int | float) else ex_high - step
    if low is None:
        low = 0 if high is None or high >= 0 else high - 100
    if high is None:
        high = low + 100
    if integer:
        low_i, high_i = -(-low // 1), high // 1  # ceil and floor keep bounds on floats
        value = rng.between(int(low_i), int(max(low_i, high_i)))
        multiple = schema.get("multipleOf")
        if isinstance(multiple, int) and multiple > 0 and value % multiple:
            up = value + multiple - value % multiple
            value = up if up <= high_i else value - value % multiple
        return value
    if high <= low:
        return low
    return min(max(round(low + (high - low) * rng.below(10_001) / 10_000, 2), low), high)


def _string(schema: dict[str, Any], rng: sim_text.Rng, words: list[str], name: str) -> str:
    fmt = schema.get("format", "")
    key = name.lower()
    pool = words or ["example"]
    n = rng.between(1, 99)
    if fmt == "date-time":
        text = f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}T{n % 24:02d}:00:00Z"
    elif fmt == "date" or key.endswith("date"):
        text = f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}"
    elif fmt == "time":
        text = f"{n % 24:02d}:{n % 60:02d}:00"
    elif fmt == "email" or "email" in key:
        text = f"user{n}@example.com"
    elif fmt in ("uri", "url", "iri") or key in ("url", "uri", "link", "href"):
        text = f"https://example.com/item/{n}"
    elif fmt == "uuid":
        text = f"{n:08x}-0000-4000-8000-{n:012x}"
    elif fmt == "ipv4":
        text = f"192.0.2.{n}"
    else:
        start = rng.below(len(pool))
        text = " ".join(pool[start : start + rng.between(1, 3)])
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    while len(text) < low:
        text += " " + rng.choice(pool)
    return text[: int(high)] if isinstance(high, int) else text


# -- citations ------------------------------------------------------------------------------


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) char spans of the sentences of `text`, preferring ones of 3+ words."""
    spans = [m.span() for m in _SENTENCE.finditer(text) if m.group().strip()]
    long = [s for s in spans if text.count(" ", s[0], s[1]) >= 2]
    return long or spans


def document_citations(index: int, doc: dict[str, Any], pages: tuple[str, ...] | None,
                       rng: sim_text.Rng) -> list[dict[str, Any]]:
    """Text blocks quoting document number `index` with its kind of citation; [] if empty."""
    title = doc.get("title") if isinstance(doc.get("title"), str) else None
    base = {"document_index": index, "document_title": title, "file_id": None}
    source = doc.get("source") or {}
    quotes: list[tuple[str, dict[str, Any]]] = []
    if source.get("type") == "text":
        data = source.get("data") or ""
        for a, b in _pick(sentence_spans(data), rng):
            quotes.append((data[a:b], {"type": "char_location", "cited_text": data[a:b], **base,
                                       "start_char_index": a, "end_char_index": b}))
    elif source.get("type") == "content":
        blocks = source.get("content")
        blocks = [{"type": "text", "text": blocks}] if isinstance(blocks, str) else blocks or []
        usable = [(i, i + 1) for i, b in enumerate(blocks) if isinstance(b, dict)
                  and b.get("type") == "text" and str(b.get("text", "")).strip()]
        for i, _ in _pick(usable, rng):
            text = blocks[i]["text"]
            quotes.append((text, {"type": "content_block_location", "cited_text": text, **base,
                                  "start_block_index": i, "end_block_index": i + 1}))
    elif pages is not None:
        usable = [(p, p + 1) for p, text in enumerate(pages) if sentence_spans(text)]
        for p, _ in _pick(usable, rng):
            spans = sentence_spans(pages[p])
            a, b = spans[rng.below(len(spans))]
            cited = pages[p][a:b]
            quotes.append((cited, {"type": "page_location", "cited_text": cited, **base,
                                   "start_page_number": p + 1, "end_page_number": p + 2}))
    if not quotes:
        return []
    label = f'the document "{title}"' if title else f"document {index + 1}"
    blocks_out: list[dict[str, Any]] = [{"type": "text", "text": f"According to {label}:"}]
    for quote, citation in quotes:
        claim = " ".join(quote.split())
        blocks_out.append({"type": "text", "text": f" {claim}", "citations": [citation]})
    return blocks_out


def _pick(spans: list[tuple[int, int]], rng: sim_text.Rng) -> list[tuple[int, int]]:
    """One or two distinct spans, in document order."""
    if len(spans) <= 1:
        return spans
    first = rng.below(len(spans))
    second = rng.below(len(spans))
    return sorted({spans[first], spans[second]})


# -- web search -----------------------------------------------------------------------------


def web_search(digest: bytes, rng: sim_text.Rng, query: str) -> tuple[list[dict[str, Any]],
                                                             list[dict[str, Any]]]:
    """The server_tool_use + web_search_tool_result pair and the blocks that cite it."""
    tool_id = "srvtoolu_01" + sim_text.ident(digest, b"web_search")
    slug = "-".join(query.lower().split()[:6]) or "search"
    topic = query[:1].upper() + query[1:] if query else "This topic"
    results = []
    for i in range(rng.between(3, 5)):
        results.append({
            "type": "web_search_result",
            "url": f"{SEARCH_HOST}/{rng.choice(_SECTIONS)}/{slug}-{i + 1}",
            "title": f"{topic}: {rng.choice(_TITLE_TAILS)}",
            "encrypted_content": sim_text.opaque(digest, b"wsc%d" % i, 96),
            "page_age": f"{rng.choice(_MONTHS)} {rng.between(1, 28)}, {rng.between(2023, 2025)}",
        })
    pair = [
        {"type": "server_tool_use", "id": tool_id, "name": "web_search",
         "input": {"query": query}},
        {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": results},
    ]
    cited: list[dict[str, Any]] = [{"type": "text", "text": "Here is what the search found:"}]
    for i, result in enumerate(results[:2]):
        sentence = sim_text.PROSE.take(rng, 8).split(". ")[0].rstrip(".")
        lead = rng.choice(_SNIPPET_LEADS).format(query=query, topic=topic)
        snippet = f"{lead}{sentence[:1].lower()}{sentence[1:]}."
        cited.append({"type": "text", "text": f" {snippet}", "citations": [{
            "type": "web_search_result_location", "cited_text": snippet,
            "url": result["url"], "title": result["title"],
            "encrypted_index": sim_text.opaque(digest, b"wsi%d" % i, 48),
        }]})
    return pair, cited


# -- code execution -------------------------------------------------------------------------


def code_execution(digest: bytes, rng: sim_text.Rng, tool_type: str) -> tuple[list[dict[str, Any]],
                                                                    dict[str, Any], str]:
    """The tool call and result blocks, the container, and a sentence about the output.

    `code_execution_20250522` runs Python (`code_execution_result`); later versions run it
    through bash (`bash_code_execution_result`), as the real API does.
    """
    values = [rng.between(1, 99) for _ in range(rng.between(4, 7))]
    total = sum(values)
    program = (f"values = {values}\n"
               "total = sum(values)\n"
               'print(f"count = {len(values)}")\n'
               'print(f"sum = {total}")\n'
               'print(f"mean = {total / len(values):.2f}")\n')
    stdout = f"count = {len(values)}\nsum = {total}\nmean = {total / len(values):.2f}\n"
    tool_id = "srvtoolu_01" + sim_text.ident(digest, b"code_execution")
    if tool_type == LEGACY_CODE_EXECUTION:
        call = {"type": "server_tool_use", "id": tool_id, "name": "code_execution",
                "input": {"code": program}}
        result = {"type": "code_execution_tool_result", "tool_use_id": tool_id, "content": {
            "type": "code_execution_result", "stdout": stdout, "stderr": "", "return_code": 0,
            "content": []}}
    else:
        call = {"type": "server_tool_use", "id": tool_id, "name": "bash_code_execution",
                "input": {"command": f"python3 - <<'EOF'\n{program}EOF"}}
        result = {"type": "bash_code_execution_tool_result", "tool_use_id": tool_id,
                  "content": {"type": "bash_code_execution_result", "stdout": stdout,
                              "stderr": "", "return_code": 0, "content": []}}
    container = {"id": "container_011C" + sim_text.ident(digest, b"container", 20),
                 "expires_at": CONTAINER_EXPIRES_AT}
    summary = (f"The program printed a sum of {total} and a mean of "
               f"{total / len(values):.2f} over {len(values)} values.")
    return [call, result], container, summary
