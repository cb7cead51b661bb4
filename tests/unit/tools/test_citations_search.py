"""Finding a quote in a source: forgiving about how models copy, exact about the offsets."""

from __future__ import annotations

import pytest

from batchd.tools.citations import search


def span(quote: str, text: str) -> str | None:
    """The source text the quote is located at, checking the offsets' contract on the way."""
    found = search.locate(quote, text)
    if found is None:
        return None
    start, end = found
    assert 0 <= start < end <= len(text)
    return text[start:end]


def test_a_verbatim_quote() -> None:
    text = "Claude Shannon was born on April 30, 1916, in Petoskey, Michigan."
    assert search.locate("born on April 30, 1916", text) == (19, 41)


def test_whitespace_crlf_and_line_breaks() -> None:
    text = "The river\r\n   flows\tnorth\u00a0to the sea."
    assert span("river flows north to the sea", text) == "river\r\n   flows\tnorth\u00a0to the sea"
    assert search.locate("river flows", text) == (4, 19)  # CR and LF count as two characters


def test_case_quotes_and_dashes() -> None:
    text = "“Don’t panic,” he said — twice."
    assert span('"don\'t panic," he said - twice', text) == text[:-1]


def test_composed_and_decomposed_accents() -> None:
    decomposed = "Le cafe\u0301 est ouvert."
    assert span("café est ouvert", decomposed) == "cafe\u0301 est ouvert"
    composed = "Le café est ouvert."
    assert span("cafe\u0301", composed) == "café"
    # A match never ends between a letter and its accent.
    assert span("Le cafe", decomposed) is None


def test_astral_characters_count_once() -> None:
    text = "Rockets 🚀 launch at dawn; 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 text follows."
    start, end = search.locate("launch at dawn", text) or (0, 0)
    assert (start, end) == (10, 24)
    assert text[start:end] == "launch at dawn"


def test_ligatures_and_full_width_letters() -> None:
    assert span("the office", "See the oﬃce now.") == "the oﬃce"
    assert span("ABC 123", "Ｘ ＡＢＣ １２３ Ｙ") == "ＡＢＣ １２３"


def test_soft_hyphens_and_zero_width_characters_are_ignored() -> None:
    assert span("international", "An inter\u00adnational\u200b event.") == "inter\u00adnational"


def test_first_occurrence_wins() -> None:
    text = "The cat sat. Later the cat sat again."
    assert search.locate("the cat sat", text) == (0, 11)


def test_word_edges_in_cased_scripts() -> None:
    text = "We concatenate strings; the cat watches."
    assert search.locate("cat", text) == (28, 31)
    assert search.locate("concat", text) is None
    assert span("2016", "In 12016 and 2016.") == "2016"


def test_scripts_without_spaces_match_inside_a_sentence() -> None:
    text = "東京は日本の首都です。大阪は大きい都市です。"
    assert span("日本の首都", text) == "日本の首都"


def test_a_paraphrase_is_not_found() -> None:
    text = "Claude Shannon was born on April 30, 1916."
    assert search.locate("Shannon was born in April 1916", text) is None
    assert search.locate("was born on the 30th of April", text) is None


def test_quote_marks_and_punctuation_around_a_quote() -> None:
    text = "Water boils at 100 degrees, at sea level"
    assert span('"Water boils at 100 degrees."', text) == "Water boils at 100 degrees"
    assert span("(at sea level.)", text) == "at sea level"
    # Punctuation the source has is kept when the quote has it too.
    assert span("100 degrees,", text) == "100 degrees,"


def test_an_elided_quote_spans_its_pieces() -> None:
    text = "The committee, after a long debate about costs, approved the plan."
    assert span("The committee ... approved the plan", text) == text[:-1]
    assert span("The committee… approved the plan.", text) == text[:-1]
    assert (
        span("The committee [...] approved", text)
        == "The committee, after a long debate about costs, approved"
    )
    assert search.locate("approved ... The committee", text) is None  # pieces out of order


def test_an_elision_is_bounded() -> None:
    text = "Alpha starts here. " + "filler words " * 40 + "Omega ends here."
    assert search.locate("Alpha starts here ... Omega ends here", text) is None
    near = "Alpha starts here. A few words. Omega ends here."
    assert span("Alpha starts here ... Omega ends here", near) == near[:-1]


def test_a_source_with_literal_dots_matches_them_first() -> None:
    text = "Wait... what happened next?"
    assert span("Wait... what", text) == "Wait... what"


@pytest.mark.parametrize("quote", ["", "   ", "...", '""', "\u200b"])
def test_empty_quotes_are_not_found(quote: str) -> None:
    assert search.locate(quote, "Anything at all ... here.") is None


def test_fold_maps_every_folded_character_back() -> None:
    text = "A\r\n  ßé\u0301ﬁ “x”"
    folded = search.fold(text)
    assert folded.text == 'a ssé\u0301fi "x"'.replace("é\u0301", "\u00e9\u0301")
    assert len(folded.starts) == len(folded.ends) == len(folded.text)
    for i in range(len(folded.text)):
        assert 0 <= folded.starts[i] < folded.ends[i] <= len(text)
