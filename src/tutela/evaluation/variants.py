"""Obfuscated variants of a prompt, one per trick people use to slip words past a filter.

Each kind rewrites the *words* of a prompt (runs of letters, three or more long) the way a
person evading a filter would, without knowing which words the filter looks for: the
generator never reads the lexicons, so a variant tests the normaliser, not the word lists.
Variants are deterministic (seeded by the prompt and the kind), so an evaluation run can be
repeated and a failing variant reproduced from its prompt alone.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable

LEET = "leet"
HOMOGLYPH = "homoglyph"
ZERO_WIDTH = "zero_width"
SPACING = "spacing"
FULLWIDTH = "fullwidth"
REPEAT = "repeat"
MIXED = "mixed"

#: Every kind, in report order. ``original`` is the prompt as written (no variant).
KINDS: tuple[str, ...] = (LEET, HOMOGLYPH, ZERO_WIDTH, SPACING, FULLWIDTH, REPEAT, MIXED)
ORIGINAL = "original"

_WORD = re.compile(r"[^\W\d_]{3,}")

_LEET_MAP: dict[str, tuple[str, ...]] = {
    "a": ("4", "@"),
    "e": ("3",),
    "i": ("1", "!"),
    "o": ("0",),
    "s": ("5", "$"),
    "t": ("7",),
    "l": ("1",),
    "g": ("9",),
    "b": ("8",),
}
# Cyrillic and Greek letters that render like Latin ones (a subset of Unicode confusables).
_HOMOGLYPHS: dict[str, tuple[str, ...]] = {
    "a": ("\u0430", "\u03b1"),
    "c": ("\u0441",),
    "e": ("\u0435",),
    "i": ("\u0456", "\u03b9"),
    "j": ("\u0458",),
    "o": ("\u043e", "\u03bf"),
    "p": ("\u0440", "\u03c1"),
    "s": ("\u0455",),
    "x": ("\u0445",),
    "y": ("\u0443",),
    "h": ("\u04bb",),
    "n": ("\u0578",),
    "d": ("\u0501",),
    "k": ("\u03ba",),
    "v": ("\u03bd",),
}
_INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
_SEPARATORS = (".", "_", "-", "*", " ")


def _rng(text: str, kind: str) -> random.Random:
    seed = hashlib.sha256(f"{kind}\x00{text}".encode()).digest()[:8]
    return random.Random(int.from_bytes(seed, "big"))


def _leet_word(word: str, rng: random.Random) -> str:
    spots = [i for i, c in enumerate(word) if c.lower() in _LEET_MAP]
    if not spots:
        return word
    chosen = {i for i in spots if rng.random() < 0.6} or {rng.choice(spots)}
    return "".join(
        rng.choice(_LEET_MAP[c.lower()]) if i in chosen else c for i, c in enumerate(word)
    )


def _homoglyph_word(word: str, rng: random.Random) -> str:
    spots = [i for i, c in enumerate(word) if c.lower() in _HOMOGLYPHS]
    if not spots:
        return word
    chosen = {i for i in spots if rng.random() < 0.5} or {rng.choice(spots)}
    out = []
    for i, c in enumerate(word):
        if i in chosen:
            g = rng.choice(_HOMOGLYPHS[c.lower()])
            out.append(g.upper() if c.isupper() and g.upper() != g else g)
        else:
            out.append(c)
    return "".join(out)


def _zero_width_word(word: str, rng: random.Random) -> str:
    out = [word[0]]
    for c in word[1:]:
        if rng.random() < 0.6:
            out.append(rng.choice(_INVISIBLE))
        out.append(c)
    return "".join(out)


def _fullwidth_char(c: str, style: int) -> str:
    if not c.isascii() or not c.isalnum():
        return c
    if style == 0:  # fullwidth forms
        return chr(ord(c) + 0xFEE0)
    if c.isdigit():  # mathematical bold digits
        return chr(0x1D7CE + ord(c) - 48)
    base = 0x1D400 if style == 1 else 0x1D5D4  # mathematical bold / sans-serif bold
    return chr(base + (ord(c) - 65 if c.isupper() else 26 + ord(c) - 97))


def _fullwidth_text(text: str, rng: random.Random) -> str:
    style = rng.randrange(3)
    return "".join(_fullwidth_char(c, style) for c in text)


def _repeat_word(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    return word[: i + 1] + word[i] * rng.randint(2, 4) + word[i + 1 :]


def _map_words(text: str, fn: Callable[[str, random.Random], str], rng: random.Random) -> str:
    return _WORD.sub(lambda m: fn(m.group(), rng), text)


def _spacing_text(text: str, rng: random.Random) -> str:
    """Separators inside words; a plain space only where no neighbour is space-split too."""
    out: list[str] = []
    pos = 0
    last_space = False
    for m in _WORD.finditer(text):
        out.append(text[pos : m.start()])
        sep = rng.choice(_SEPARATORS)
        if sep == " " and last_space:
            sep = "."
        last_space = sep == " "
        out.append(sep.join(m.group()))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _mixed_text(text: str, rng: random.Random) -> str:
    """Each word gets one trick of its own, as in real evasive prompts."""
    tricks = (_leet_word, _homoglyph_word, _zero_width_word, _repeat_word)
    return _WORD.sub(lambda m: rng.choice(tricks)(m.group(), rng), text)


def variant(text: str, kind: str) -> str:
    """The ``kind`` variant of ``text`` (``original`` returns it unchanged)."""
    rng = _rng(text, kind)
    if kind == ORIGINAL:
        return text
    if kind == LEET:
        return _map_words(text, _leet_word, rng)
    if kind == HOMOGLYPH:
        return _map_words(text, _homoglyph_word, rng)
    if kind == ZERO_WIDTH:
        return _map_words(text, _zero_width_word, rng)
    if kind == SPACING:
        return _spacing_text(text, rng)
    if kind == FULLWIDTH:
        return _fullwidth_text(text, rng)
    if kind == REPEAT:
        return _map_words(text, _repeat_word, rng)
    if kind == MIXED:
        return _mixed_text(text, rng)
    raise ValueError(f"unknown variant kind {kind!r}; known: {', '.join(KINDS)}")


def variants(text: str, kinds: tuple[str, ...] = KINDS) -> dict[str, str]:
    """Every requested variant of ``text``, keyed by kind."""
    return {k: variant(text, k) for k in kinds}
