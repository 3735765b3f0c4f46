"""Undo the tricks people use to slip words past a filter, and count each trick.

The base layer works character by character (so that every normalised character knows where
it came from in the text as written): default-ignorable characters are dropped, NFKC folds
fullwidth and mathematical letters, ``confusable_homoglyphs``' data folds Cyrillic and Greek
look-alikes onto Latin letters, and ``anyascii`` transliterates accents and other scripts.
The token layer (see :mod:`tutela.text.tokens`) then handles separators inside words,
leetspeak and repeated letters.

The per-character work is cached, so a prompt in plain ASCII costs one ``str.lower``.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from anyascii import anyascii

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties) plus the blank-looking letters
# that are not ignorable but are used as invisible padding (Hangul fillers, braille blank).
_INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors, vowel separator
    (0x200B, 0x200F),  # zero width space/non-joiner/joiner, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated
    (0x2800, 0x2800),  # braille pattern blank
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero width no-break space (BOM)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),  # unassigned specials
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0000, 0xE0FFF),  # tag characters and variation selectors supplement
)


def is_invisible(ch: str) -> bool:
    """True for characters that render as nothing (or as blank padding)."""
    cp = ord(ch)
    if any(lo <= cp <= hi for lo, hi in _INVISIBLE_RANGES):
        return True
    return unicodedata.category(ch) == "Cf"


@lru_cache(maxsize=1)
def _confusable_table() -> dict[str, str]:
    """Non-ASCII look-alikes -> the ASCII letter or digit they imitate.

    Built once from ``confusable_homoglyphs``' copy of Unicode's confusables data: a
    character whose homoglyph set contains a single ASCII letter or digit maps onto it.
    """
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text()
    data: dict[str, list[dict[str, str]]] = json.loads(raw)
    table: dict[str, str] = {}
    for ch, homoglyphs in data.items():
        if len(ch) != 1 or ch.isascii():
            continue
        targets = [h["c"] for h in homoglyphs if len(h["c"]) == 1 and h["c"].isascii()]
        letters = [t for t in targets if t.isalpha()] or [t for t in targets if t.isdigit()]
        if letters:
            table[ch] = letters[0].lower()
    return table


# Kinds of edits, named as they appear in obfuscation signals and evaluation reports.
INVISIBLE = "invisible"
FULLWIDTH = "fullwidth"  # NFKC compatibility folding: fullwidth, mathematical, ligatures
HOMOGLYPH = "homoglyph"
ACCENT = "accent"  # transliteration of accents/other scripts (ordinary in many languages)
SEPARATOR = "separator"
LEET = "leet"
REPEAT = "repeat"
SPACING = "spacing"
GLUED = "glued"  # two words written as one: nudechild
MASK = "mask"  # letters starred out: n*ked, p**n

#: Edits that ordinary writing produces; reported, but not counted as obfuscation.
ORDINARY_EDITS = frozenset({ACCENT})


@lru_cache(maxsize=65536)
def _fold_char(ch: str) -> tuple[str, str | None]:
    """Normalise one non-ASCII character; return (ASCII text, kind of edit or None)."""
    if is_invisible(ch):
        return "", INVISIBLE
    kind: str | None = None
    nf = unicodedata.normalize("NFKC", ch)
    if nf != ch:
        kind = FULLWIDTH  # a compatibility fold: fullwidth, mathematical, ligature, circled
    out = []
    for c in nf:
        if c.isascii():
            out.append(c.lower())
            continue
        conf = _confusable_table().get(c) or _confusable_table().get(c.lower())
        if conf is not None and not _is_latin_letter(c):
            out.append(conf)
            kind = kind or HOMOGLYPH
            continue
        tr = anyascii(c).lower()
        out.append(tr)
        if tr != c:
            kind = kind or ACCENT
    return "".join(out), kind


def _is_latin_letter(c: str) -> bool:
    try:
        return "LATIN" in unicodedata.name(c)
    except ValueError:
        return False


@dataclass(slots=True)
class BaseText:
    """The text after the character layer: ASCII, lower case, with a map to the original.

    ``origin[i]`` is the index in the original text of the character that produced
    ``text[i]``; ``edits`` counts each kind of edit.
    """

    original: str
    text: str
    origin: list[int] | None  # None means identity (the text was ASCII)
    edits: Counter[str] = field(default_factory=Counter)

    def span_as_written(self, start: int, end: int) -> str:
        """The original characters that produced ``text[start:end]``."""
        if end <= start:
            return ""
        if self.origin is None:
            return self.original[start:end]
        o_start = self.origin[start]
        o_end = self.origin[end - 1] + 1
        return self.original[o_start:o_end]


def normalise_chars(text: str) -> BaseText:
    """Apply the character layer to ``text`` (see the module docstring)."""
    if text.isascii():
        return BaseText(text, text.lower(), None)
    out: list[str] = []
    origin: list[int] = []
    edits: Counter[str] = Counter()
    for i, ch in enumerate(text):
        if ch.isascii():
            out.append(ch.lower())
            origin.append(i)
            continue
        folded, kind = _fold_char(ch)
        if kind is not None:
            edits[kind] += 1
        for c in folded:
            out.append(c)
            origin.append(i)
    return BaseText(text, "".join(out), origin, edits)


def fold_term(term: str) -> str:
    """Normalise a lexicon term with the same character layer as prompts."""
    return " ".join(normalise_chars(term).text.split())
