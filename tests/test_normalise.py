"""The character layer: invisible characters, NFKC, homoglyphs, accents; each edit counted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutela.text.normalise import (
    ACCENT,
    FULLWIDTH,
    HOMOGLYPH,
    INVISIBLE,
    fold_term,
    is_invisible,
    normalise_chars,
)

INVISIBLES = {
    "zero width space": "\u200b",
    "zero width non-joiner": "\u200c",
    "zero width joiner": "\u200d",
    "soft hyphen": "\u00ad",
    "word joiner": "\u2060",
    "left-to-right mark": "\u200e",
    "right-to-left override": "\u202e",
    "first strong isolate": "\u2068",
    "byte order mark": "\ufeff",
    "tag letter n": "\U000e006e",
    "variation selector 16": "\ufe0f",
    "variation selector 200": "\U000e01c7",
    "hangul filler": "\u3164",
    "halfwidth hangul filler": "\uffa0",
    "braille blank": "\u2800",
    "mongolian vowel separator": "\u180e",
}


@pytest.mark.parametrize("name", sorted(INVISIBLES))
def test_invisible_characters_are_dropped_and_counted(name: str) -> None:
    ch = INVISIBLES[name]
    assert is_invisible(ch)
    base = normalise_chars(f"nu{ch}de{ch}")
    assert base.text == "nude"
    assert base.edits[INVISIBLE] == 2


def test_ordinary_characters_are_not_invisible() -> None:
    for ch in ["a", "ñ", "1", "-", "é", "ß", "Ж", "中"]:
        assert not is_invisible(ch)


@pytest.mark.parametrize(
    "written",
    [
        "ｎｕｄｅ",  # fullwidth
        "𝐧𝐮𝐝𝐞",  # mathematical bold
        "𝗻𝘂𝗱𝗲",  # mathematical sans-serif bold
        "𝓃𝓊𝒹ℯ",  # mathematical script
        "ⓝⓤⓓⓔ",  # circled
    ],
)
def test_compatibility_forms_fold_to_ascii(written: str) -> None:
    base = normalise_chars(written)
    assert base.text == "nude"
    assert base.edits[FULLWIDTH] == 4


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("сhild", "child"),  # Cyrillic es
        ("nаkеd", "naked"),  # Cyrillic a, ie
        ("νude", "vude"),  # Greek nu looks like v
        ("lοli", "loli"),  # Greek omicron
        ("ꓲoli", "loli"),  # Lisu letter
    ],
)
def test_homoglyphs_fold_onto_latin_letters(written: str, expected: str) -> None:
    base = normalise_chars(written)
    assert base.text == expected
    assert base.edits[HOMOGLYPH] >= 1


def test_accents_are_transliterated_and_counted_as_ordinary() -> None:
    base = normalise_chars("Niña Mädchen garçon größe")
    assert base.text == "nina madchen garcon grosse"
    assert base.edits[ACCENT] == 5  # ñ ä ç ö ß
    assert HOMOGLYPH not in base.edits


def test_ascii_text_is_only_lower_cased() -> None:
    base = normalise_chars("A Child At The PARK")
    assert base.text == "a child at the park"
    assert base.origin is None
    assert not base.edits


def test_span_as_written_maps_back_through_every_edit() -> None:
    text = "a ｎ\u200bｕｄｅ сhild"
    base = normalise_chars(text)
    start = base.text.index("nude")
    assert base.span_as_written(start, start + 4) == "ｎ\u200bｕｄｅ"
    start = base.text.index("child")
    assert base.span_as_written(start, start + 5) == "сhild"
    assert base.span_as_written(3, 3) == ""


def test_fold_term_matches_prompt_folding() -> None:
    assert fold_term("  Quítale   la ROPA ") == "quitale la ropa"
    assert fold_term("Schülerin") == normalise_chars("SCHÜLERIN").text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_unicode_string_normalises_to_ascii_with_a_consistent_map(text: str) -> None:
    base = normalise_chars(text)
    assert base.text.isascii()
    if base.origin is not None:
        assert len(base.origin) == len(base.text)
        assert all(0 <= o < len(text) for o in base.origin)
        assert base.origin == sorted(base.origin)
    assert all(v > 0 for v in base.edits.values())
    assert normalise_chars(base.text).text == base.text  # idempotent


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(categories=["Cf", "Mn", "Zs", "Co", "Cs", "Cn"]), max_size=50))
def test_format_marks_and_unassigned_code_points_never_crash(text: str) -> None:
    normalise_chars(text)
