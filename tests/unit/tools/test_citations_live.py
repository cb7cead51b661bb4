"""`citations.Live`: `cite` as a streamed answer comes. Whatever the text and wherever it is cut,
what it sends adds up to `cite(whole text)` block for block, plain text goes out as it comes, and a
quote as soon as its closing tag is in."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from batchd.tools.citations import Live, Source, cite
from batchd.tools.citations.live import Op, safe_point

NONCES = iter(range(10**9))
SOURCES = [
    Source.plain("The sky is blue. The grass is green. Water boils at 100 degrees.", document_index=0),
    Source.plain("Llamas live in herds and hum softly.", document_index=1),
    # A search hit's citations carry a token sealed with a fresh nonce each time they are made.
    Source.search_result(
        url="https://l.example",
        title="Llamas",
        text="Alpacas and llamas are camelids. Llamas hum.",
        encrypted_index_for=lambda start, end: f"{start}-{end}-{next(NONCES)}",
    ),
]


def rebuilt(ops: list[Op]) -> list[dict[str, Any]]:
    """The blocks the ops add up to (as the SDK's accumulator would), checking their order."""
    blocks: list[dict[str, Any]] = []
    open_ = False
    for op, value in ops:
        if op == "start":
            assert not open_
            blocks.append(dict(value))
            open_ = True
        elif op == "stop":
            assert open_
            open_ = False
        else:
            assert open_
            if op == "citation":
                blocks[-1]["citations"].append(value)
            else:
                blocks[-1]["text"] += value
    assert not open_
    return blocks


def streamed(pieces: list[str]) -> tuple[list[dict[str, Any]], list[list[Op]]]:
    live = Live(SOURCES)
    steps = [live.add(p) for p in pieces]
    steps.append(live.end())
    assert not live.broken  # what was sent always extended to what came next
    return rebuilt([op for step in steps for op in step]), steps


def expected(text: str) -> list[dict[str, Any]]:
    return [b for b in cite(text, SOURCES) if b.get("text")]


def sealed(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`blocks` without the nonces of their tokens."""
    for block in blocks:
        for c in block.get("citations") or ():
            if "encrypted_index" in c:
                c["encrypted_index"] = c["encrypted_index"].rsplit("-", 1)[0]
    return blocks


def test_plain_text_streams_as_it_comes() -> None:
    blocks, steps = streamed(["The ", "answer ", "is ", "here."])
    assert blocks == [{"type": "text", "text": "The answer is here."}]
    assert [[v for op, v in s if op == "text"] for s in steps] == [
        ["The"],
        [" answer"],
        [" is"],
        [" here."],
        [],
    ]


def test_a_quote_comes_when_its_closing_tag_is_in() -> None:
    text = 'So: <cite source="2">Llamas live in herds</cite> and <cite source="1">The sky is blue</cite>.'
    cut = [text[i : i + 4] for i in range(0, len(text), 4)]
    blocks, steps = streamed(cut)
    assert blocks == expected(text)
    assert [b.get("citations", [{}])[0].get("document_index") for b in blocks] == [None, 1, None, 0, None]
    # The first quote was sent before the second one began.
    first_quote = next(i for i, s in enumerate(steps) if any(op == "citation" for op, _ in s))
    assert "".join(cut[: first_quote + 1]).count("<cite") == 1


def test_safe_point() -> None:
    assert safe_point("plain  ") == 5
    assert safe_point('a <cite source="1">b') == 1
    assert safe_point('a <cite source="1">b</cite> c <ci') == len('a <cite source="1">b</cite> c')
    assert safe_point("x < y") == 5
    assert safe_point("x <") == 1


WORDS = st.sampled_from(
    [
        "The sky is blue",
        "Llamas live in herds",
        "hum softly",
        "unknown words",
        "Water boils",
        " ",
        "  ",
        "\n",
        ".",
        " and ",
        "<",
        "< b",
        "<ci",
        "</cite>",
        '<cite source="1">',
        '<cite source="2">',
        "<cite source=3>",
        "<citation source='1, 2'>",
        '<cite source="1"/>',
        "<cite source=1",
        "</CITE>",
        "<cite source=3>Llamas hum</cite>",
        "Alpacas and llamas",
    ]
)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(WORDS, max_size=14), cuts=st.lists(st.integers(min_value=1, max_value=9), min_size=1))
def test_any_text_cut_anywhere_adds_up_to_cite(parts: list[str], cuts: list[int]) -> None:
    text = "".join(parts)
    pieces, at, i = [], 0, 0
    while at < len(text):
        size = cuts[i % len(cuts)]
        pieces.append(text[at : at + size])
        at, i = at + size, i + 1
    blocks, _ = streamed(pieces)
    assert sealed(blocks) == sealed(expected(text)), (text, pieces)
