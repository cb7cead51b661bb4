"""`cite`: the model's answer as Anthropic's text blocks, each quote found in its source cited at
exact indices, everything else uncited, no markup left."""

from __future__ import annotations

import pytest

from batchd import params as batchd_params
from batchd.tools import citations
from batchd.tools.citations import Source
from tests.unit.conftest import make_pdf
from tests.unit.tools.citations_checks import checked_cite as cite

SHANNON = (
    "Claude Elwood Shannon (April 30, 1916 – February 24, 2001) was an American mathematician, "
    "electrical engineer, computer scientist, cryptographer and inventor known as the father of "
    "information theory. He was born in Petoskey, Michigan."
)


def plain(text: str, index: int = 0, title: str | None = "Doc") -> Source:
    return Source.plain(text, document_index=index, title=title)


def test_plain_text_without_markup_is_one_uncited_block() -> None:
    assert cite("Just an answer.", [plain(SHANNON)]) == [{"type": "text", "text": "Just an answer."}]
    assert cite("No sources at all.", []) == [{"type": "text", "text": "No sources at all."}]


def test_a_quote_in_a_plain_text_document() -> None:
    blocks = cite(
        'Per the text, <cite source="1">he was born in Petoskey, Michigan</cite>.', [plain(SHANNON)]
    )
    start = SHANNON.index("He was born")
    assert blocks == [
        {"type": "text", "text": "Per the text, "},
        {
            "type": "text",
            "text": "he was born in Petoskey, Michigan",
            "citations": [
                {
                    "type": "char_location",
                    "cited_text": "He was born in Petoskey, Michigan",
                    "document_index": 0,
                    "document_title": "Doc",
                    "file_id": None,
                    "start_char_index": start,
                    "end_char_index": start + len("He was born in Petoskey, Michigan"),
                }
            ],
        },
        {"type": "text", "text": "."},
    ]


def test_several_citations_in_one_sentence() -> None:
    text = (
        'Shannon was <cite source="1">an American mathematician</cite> and '
        '<cite source="1">cryptographer</cite>, <cite source="2">a juggler</cite>.'
    )
    sources = [plain(SHANNON), plain("He was also a juggler and a unicyclist.", index=1, title=None)]
    blocks = cite(text, sources)
    assert [b["text"] for b in blocks] == [
        "Shannon was ",
        "an American mathematician",
        " and ",
        "cryptographer",
        ", ",
        "a juggler",
        ".",
    ]
    assert [c["document_index"] for b in blocks for c in b.get("citations", ())] == [0, 0, 1]


def test_markup_at_the_start_and_the_end() -> None:
    blocks = cite(
        '<cite source="1">Claude Elwood Shannon</cite> was <cite source="1">born in Petoskey</cite>',
        [plain(SHANNON)],
    )
    assert [(b["text"], "citations" in b) for b in blocks] == [
        ("Claude Elwood Shannon", True),
        (" was ", False),
        ("born in Petoskey", True),
    ]
    assert blocks[0]["citations"][0]["start_char_index"] == 0


def test_a_paraphrased_quote_is_not_cited() -> None:
    blocks = cite('He <cite source="1">was born in Michigan in 1916</cite>.', [plain(SHANNON)])
    assert blocks == [{"type": "text", "text": "He was born in Michigan in 1916."}]


def test_a_quote_naming_a_source_that_does_not_exist() -> None:
    text = (
        'Shannon was <cite source="3">an American mathematician</cite> and '
        '<cite source="0">an engineer</cite>.'
    )
    assert cite(text, [plain(SHANNON)]) == [
        {"type": "text", "text": "Shannon was an American mathematician and an engineer."}
    ]


def test_a_quote_is_only_looked_up_in_the_sources_it_names() -> None:
    sources = [plain(SHANNON), plain("Unrelated text.", index=1)]
    assert "citations" not in cite('<cite source="2">father of information theory</cite>', sources)[0]


def test_a_quote_present_twice_cites_its_first_occurrence() -> None:
    text = "The bridge opened in 1932. Critics said the bridge opened in 1932 too early."
    blocks = cite('<cite source="1">the bridge opened in 1932</cite>', [plain(text)])
    citation = blocks[0]["citations"][0]
    assert (citation["start_char_index"], citation["end_char_index"]) == (0, 25)


def test_a_quote_found_in_two_named_sources_cites_both() -> None:
    sources = [
        plain("Water boils at 100 degrees."),
        plain("At sea level, water boils at 100 degrees.", index=1),
    ]
    blocks = cite('<cite source="1,2">water boils at 100 degrees</cite>', sources)
    assert [c["document_index"] for c in blocks[0]["citations"]] == [0, 1]


def test_non_ascii_offsets_are_code_points() -> None:
    text = "Zoë’s café 🚀 opened in Zürich\r\nin 2019; its motto: « vivre vite »."
    blocks = cite(
        'It <cite source="1">opened in Zürich in 2019</cite> (<cite source="1">"vivre vite"</cite>).',
        [plain(text)],
    )
    first, second = (b["citations"][0] for b in blocks if "citations" in b)
    assert (first["start_char_index"], first["end_char_index"]) == (13, 38)  # the rocket counts one, CRLF two
    assert first["cited_text"] == "opened in Zürich\r\nin 2019"
    assert second["cited_text"] == "vivre vite"
    # Python's own slicing, as the official SDK's users would do it.
    assert text[second["start_char_index"] : second["end_char_index"]] == "vivre vite"


def test_combining_characters_cite_whole_characters() -> None:
    text = "Nai\u0308ve re\u0301sume\u0301 writing."  # decomposed accents
    blocks = cite('<cite source="1">naïve résumé</cite>', [plain(text)])
    assert blocks[0]["citations"][0]["cited_text"] == "Nai\u0308ve re\u0301sume\u0301"


def test_pdf_pages_and_a_quote_across_a_page_break() -> None:
    data = make_pdf("The survey covered nine towns.", "Rainfall fell by a third.", "Wells ran dry in May.")
    block = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}}
    source = citations.document_source({**block, "title": "Survey"}, 2)
    assert source is not None and source.page_texts == (
        "The survey covered nine towns.",
        "Rainfall fell by a third.",
        "Wells ran dry in May.",
    )
    text = (
        '<cite source="1">Wells ran dry in May</cite>; <cite source="1">nine towns. Rainfall fell</cite>; '
        '<cite source="1">covered nine towns</cite>.'
    )
    pages = [
        (c["start_page_number"], c["end_page_number"], c["cited_text"])
        for b in cite(text, [source])
        for c in b.get("citations", ())
    ]
    assert pages == [
        (3, 4, "Wells ran dry in May"),
        (1, 3, "nine towns.\n\nRainfall fell"),
        (1, 2, "covered nine towns"),
    ]
    assert cite(text, [source])[0]["citations"][0]["document_title"] == "Survey"


def test_content_documents_cite_whole_blocks() -> None:
    source = Source.content(
        ["Minutes of the meeting.", "", "Budget approved: 40k.", "Next meeting in June."],
        document_index=1,
        title="Minutes",
    )
    text = '<cite source="1">Budget approved</cite>; <cite source="1">40k. Next meeting</cite>.'
    found = [c for b in cite(text, [source]) for c in b.get("citations", ())]
    assert [(c["start_block_index"], c["end_block_index"], c["cited_text"]) for c in found] == [
        (2, 3, "Budget approved: 40k."),
        (2, 4, "Budget approved: 40k.\n\nNext meeting in June."),
    ]
    assert {c["type"] for c in found} == {"content_block_location"}


def test_web_search_results() -> None:
    spans: list[tuple[int, int]] = []

    def token(start: int, end: int) -> str:
        spans.append((start, end))
        return f"{start}:{end}"

    hit = Source.search_result(
        url="https://en.wikipedia.org/wiki/Claude_Shannon",
        title="Claude Shannon - Wikipedia",
        text=SHANNON,
        encrypted_index_for=token,
    )
    blocks = cite(f'Shannon was <cite source="1">{SHANNON[:200]}</cite>', [hit])
    citation = blocks[1]["citations"][0]
    assert citation == {
        "type": "web_search_result_location",
        "cited_text": SHANNON[:150],
        "url": "https://en.wikipedia.org/wiki/Claude_Shannon",
        "title": "Claude Shannon - Wikipedia",
        "encrypted_index": "0:200",
    }
    assert spans == [(0, 200)]


def test_web_cited_text_is_never_cut_inside_a_combining_sequence() -> None:
    text = "x" * 149 + "e\u0301 and more words here"
    hit = Source.search_result(
        url="https://a.example", title=None, text=text, encrypted_index_for=lambda a, b: f"{a}:{b}"
    )
    cited = cite(f'<cite source="1">{text}</cite>', [hit])[0]["citations"][0]["cited_text"]
    assert cited == "x" * 149


def test_documents_and_search_results_together() -> None:
    hit = Source.search_result(
        url="https://b.example",
        title="B",
        text="Tides follow the moon.",
        encrypted_index_for=lambda a, b: f"{a}:{b}",
    )
    blocks = cite(
        '<cite source="1">inventor</cite> <cite source="2">tides follow the moon</cite>',
        [plain(SHANNON), hit],
    )
    assert [b["citations"][0]["type"] for b in blocks] == ["char_location", "web_search_result_location"]


def test_blank_text_between_quotes_joins_the_quote_before_it() -> None:
    blocks = cite(
        '<cite source="1">mathematician</cite> <cite source="1">inventor</cite>\n', [plain(SHANNON)]
    )
    assert [b["text"] for b in blocks] == ["mathematician ", "inventor\n"]
    blocks = cite('  <cite source="1">inventor</cite>', [plain(SHANNON)])
    assert [b["text"] for b in blocks] == ["  inventor"]


@pytest.mark.parametrize("text", ["", "   ", '<cite source="1"></cite>', '<cite source="1">  </cite>\n'])
def test_nothing_but_blanks_gives_no_blocks(text: str) -> None:
    assert cite(text, [plain(SHANNON)]) == []


def test_unquoted_neighbours_merge_into_one_block() -> None:
    text = 'a <cite source="9">b</cite> c <cite source="1">not in the source</cite> d'
    assert cite(text, [plain(SHANNON)]) == [{"type": "text", "text": "a b c not in the source d"}]


def test_the_blocks_are_accepted_back_in_a_later_turn() -> None:
    blocks = cite('So <cite source="1">he was born in Petoskey</cite>.', [plain(SHANNON)])
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": SHANNON}}
    request = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [{**document, "citations": {"enabled": True}}, {"type": "text", "text": "Where?"}],
            },
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": "And when?"},
        ],
    }
    assert batchd_params.prepare(request, strict=True)["messages"][1]["content"] == blocks
