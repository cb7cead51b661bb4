"""The quote markup's parser: well-formed quotes become segments naming their sources, anything
malformed becomes plain text, and no markup survives."""

from __future__ import annotations

import re

import pytest

from batchd.tools.citations import markup
from batchd.tools.citations.markup import Segment

LEAK = re.compile(r"<\s*/?\s*cit(e|ation)\b", re.IGNORECASE)


def parse(text: str) -> list[Segment]:
    segments = markup.parse(text)
    assert all(s.text for s in segments)
    assert not any(LEAK.search(s.text) for s in segments)
    return segments


def test_plain_text_is_one_segment() -> None:
    assert parse('No quotes here [1] "at all".') == [Segment('No quotes here [1] "at all".')]
    assert parse("") == []


def test_a_quote_between_plain_text() -> None:
    assert parse('Shannon was <cite source="1">born in 1916</cite>, in Michigan.') == [
        Segment("Shannon was "),
        Segment("born in 1916", (1,)),
        Segment(", in Michigan."),
    ]


def test_markup_at_the_start_and_the_end() -> None:
    assert parse('<cite source="2">First words</cite> then <cite source="1">last words</cite>') == [
        Segment("First words", (2,)),
        Segment(" then "),
        Segment("last words", (1,)),
    ]


def test_several_quotes_in_one_sentence() -> None:
    text = (
        'It is <cite source="1">red</cite>, <cite source="2">round</cite> and <cite source="1">sweet</cite>.'
    )
    assert [s.sources for s in parse(text)] == [(), (1,), (), (2,), (), (1,), ()]


@pytest.mark.parametrize(
    "tag",
    [
        '<cite source="3">',
        "<cite source='3'>",
        "<cite source=3>",
        '<CITE SOURCE="3">',
        '< cite  source = "3" >',
        '<cite src="3">',
        '<cite id="3">',
        '<cite source="[3]">',
        '<cite source="Source 3">',
        "<cite 3>",
        '<cite="3">',
        '<citation source="3">',
        '<cite source="3" page="7">',
    ],
)
def test_lenient_opening_tags(tag: str) -> None:
    close = "</citation>" if "citation" in tag else "</cite>"
    assert parse(f"a {tag}quoted{close} b") == [Segment("a "), Segment("quoted", (3,)), Segment(" b")]


def test_a_quote_may_name_several_sources_each_once() -> None:
    assert parse('<cite source="2, 1; 2">x</cite>') == [Segment("x", (2, 1))]


def test_a_tag_naming_no_source_quotes_nothing() -> None:
    assert parse("<cite>words</cite>") == [Segment("words")]
    assert parse('<cite title="a book">words</cite>') == [Segment("words")]


def test_an_unclosed_tag_leaves_plain_text() -> None:
    assert parse('Start <cite source="1">never closed') == [Segment("Start "), Segment("never closed")]


def test_a_stray_closing_tag_is_dropped() -> None:
    assert parse("one</cite> two") == [Segment("one"), Segment(" two")]


def test_nested_tags_quote_only_the_inner_pair() -> None:
    text = '<cite source="1">a <cite source="2">b</cite> c</cite>'
    assert parse(text) == [Segment("a "), Segment("b", (2,)), Segment(" c")]


def test_an_opening_tag_used_as_a_closer() -> None:
    assert parse('<cite source="1">words<cite>') == [Segment("words")]


def test_a_self_closing_tag_is_dropped() -> None:
    assert parse('See <cite source="1"/> here.') == [Segment("See "), Segment(" here.")]


def test_a_tag_cut_off_by_max_tokens_is_dropped() -> None:
    assert parse('The answer <cite source="1') == [Segment("The answer ")]
    assert parse('<cite source="1">quoted</cite') == [Segment("quoted", (1,))]


def test_a_tag_without_its_bracket_is_dropped() -> None:
    assert parse('a <cite source="1" b</cite> c') == [Segment("a "), Segment(" c")]


def test_other_angle_brackets_are_text() -> None:
    text = "if a<b and c>d, <citing> is not a tag, nor <source>"
    assert parse(text) == [Segment(text)]


def test_huge_numbers_do_not_break_the_parser() -> None:
    assert parse(f'<cite source="{"9" * 5000}">x</cite>')[0].text == "x"


def test_the_instructions_show_the_markup_the_parser_reads() -> None:
    example = markup.CITATION_INSTRUCTIONS.split("Example:")[1]
    quoted = [s for s in parse(example) if s.sources]
    assert [(s.text, s.sources) for s in quoted] == [
        ("revenue grew by 12% in 2023", (1,)),
        ("costs stayed flat", (2,)),
    ]
