"""The token layer: words out of the normalised text, with separators, leetspeak and repeated
letters undone, each token remembering its span so reasons can quote the text as written.

Why tokens rather than one big regular expression: every trick here has a benign look-alike
(``3d``, ``4k``, ``1girl``, ``5th grade``, ``t-shirt``), and deciding per token keeps those
cases readable and testable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tutela.text.normalise import LEET, REPEAT, SEPARATOR, SPACING

# A raw token: word characters and leet symbols, possibly with separators inside.
_RAW = re.compile(r"[a-z0-9@$|!+]+(?:[._\-*~'`^=]+[a-z0-9@$|!+]+)*")
_INNER_SEP = re.compile(r"[._\-*~'`^=]+")
_GAP_OK = re.compile(r"^[\s._\-*~/|+,:'`^=]{1,3}$")
_RUN3 = re.compile(r"([a-z])\1{2,}")
_RUN2 = re.compile(r"([a-z])\1+")
_DIGITS_WORD = re.compile(r"^(\d{1,3})([a-z]+)$")
SPACED_MARK = "\x00"  # marks a raw token joined from spaced-out letters

LEET_PRIMARY = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "|": "l",
        "!": "i",
        "+": "t",
        "6": "g",
        "2": "z",
    }
)
LEET_SECOND = str.maketrans(
    {
        "1": "l",
        "|": "i",
        "!": "l",
        "4": "h",
        "0": "o",
        "3": "e",
        "5": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "+": "t",
        "6": "b",
        "2": "z",
    }
)

ORDINAL_SUFFIXES = frozenset(
    {
        "st",
        "nd",
        "rd",
        "th",
        "o",
        "a",
        "er",
        "e",
        "eme",
        "te",
        "ten",
        "ro",
        "do",
        "to",
        "vo",
        "no",
        "mo",
    }
)


@dataclass(slots=True)
class Token:
    """One word of the prompt after the token layer.

    ``text`` is the primary reading; ``alts`` are other readings tried when the primary one
    matches nothing (``1`` as ``l`` rather than ``i``; repeated letters squeezed to one).
    ``number`` is set for numbers and ordinals (``12``, ``5th``); ``start``/``end`` index the
    base text.
    """

    text: str
    start: int
    end: int
    alts: tuple[str, ...] = ()
    number: int | None = None
    ordinal: bool = False
    edit: str | None = None  # the obfuscation this token undid, if any


def tokenise(base: str, is_word: Callable[[str], bool]) -> tuple[list[Token], list[Token]]:
    """Split ``base`` into position tokens and extra joined readings.

    Returns ``(tokens, extras)``: ``tokens`` are the words in order (phrases are matched
    over them); ``extras`` are whole-span readings of words written with separators inside
    (``n.u.d.e`` -> ``nude``), matched as single words. ``is_word`` tells whether a string is
    a lexicon word; it settles the ambiguous cases (``1girl`` is ``1 girl``). Each token
    notes the trick it undid in ``edit``; the reader counts a trick only where it hid a
    lexicon word, so ``3d`` or ``t-shirt`` are not taken for obfuscation.
    """
    raws = [(m.group(), m.start(), m.end()) for m in _RAW.finditer(base)]
    raws = _merge_spaced(raws, base, is_word)
    tokens: list[Token] = []
    extras: list[Token] = []
    for raw, start, end in raws:
        if _INNER_SEP.search(raw) is None:
            tokens.extend(_read_word(raw, start, end, is_word))
            continue
        pieces = _INNER_SEP.split(raw)
        if len(pieces) >= 3 and all(len(p) == 1 for p in pieces):
            # n.u.d.e, n_u_d_e: one word written letter by letter; read it as one token so
            # that phrases over it still match (``r*e*m*o*v*e her clothes``)
            for tok in _read_word("".join(pieces), start, end, is_word):
                tok.edit = tok.edit if tok.edit == LEET else SEPARATOR
                tokens.append(tok)
            continue
        pos = start
        parts: list[Token] = []
        for piece in pieces:
            p_start = base.index(piece, pos)
            pos = p_start + len(piece)
            parts.extend(_read_word(piece, p_start, pos, is_word))
        tokens.extend(parts)
        joined = "".join(p.text for p in parts if p.number is None or not p.ordinal)
        if joined and len(parts) > 1:
            alts = tuple(_squeezed(joined))
            extras.append(Token(joined, start, end, alts, edit=SEPARATOR))
    return tokens, extras


def _merge_spaced(
    raws: list[tuple[str, int, int]], base: str, is_word: Callable[[str], bool]
) -> list[tuple[str, int, int]]:
    """Join runs of three or more single characters: ``n u d e`` -> ``nude``.

    A one-letter word next to the run (``a n u d e``, ``f o r a``) is split off again when
    the run reads as a word without it and not with it.
    """
    out: list[tuple[str, int, int]] = []
    i, n = 0, len(raws)
    while i < n:
        j = i
        while (
            j < n
            and len(raws[j][0]) == 1
            and (j == i or _GAP_OK.match(base[raws[j - 1][2] : raws[j][1]]))
        ):
            j += 1
        if j - i >= 3:
            lo, hi = _trim_run("".join(r[0] for r in raws[i:j]), is_word)
            out.extend(raws[i : i + lo])
            text = "".join(r[0] for r in raws[i + lo : j - hi])
            out.append((SPACED_MARK + text, raws[i + lo][1], raws[j - hi - 1][2]))
            out.extend(raws[j - hi : j])
            i = j
        else:
            out.append(raws[i])
            i += 1
    return out


def _trim_run(text: str, is_word: Callable[[str], bool]) -> tuple[int, int]:
    """How many single letters to split off the start and end of a spaced-out run."""
    if len(text) < 4 or is_word(text):
        return 0, 0
    for lo, hi in ((1, 0), (0, 1), (1, 1)):
        core = text[lo : len(text) - hi]
        if len(core) >= 3 and is_word(core):
            return lo, hi
    return 0, 0


def _squeezed(word: str) -> list[str]:
    s = _RUN2.sub(r"\1", word)
    return [s] if s != word else []


def _read_word(raw: str, start: int, end: int, is_word: Callable[[str], bool]) -> list[Token]:
    """Read one separator-free raw token into one or two tokens."""
    spaced = raw.startswith(SPACED_MARK)
    if spaced:
        toks = _read_word(raw[1:], start, end, is_word)
        for t in toks:
            t.edit = SPACING
        if len(toks) == 1:
            toks[0].start, toks[0].end = start, end
        return toks
    word = raw.strip("!+|")
    if not word:
        return []
    start += raw.index(word)
    end = start + len(word)
    if word.isdigit():
        return [Token(word, start, end, number=int(word[:3]))]
    if word.isalpha():
        return [_repeats(word, start, end, is_word)]
    primary = word.translate(LEET_PRIMARY)
    second = word.translate(LEET_SECOND)
    leet_word = primary.isalpha() and (_known(primary, is_word) or _known(second, is_word))
    m = None if leet_word else _DIGITS_WORD.match(word)
    if m:
        digits, rest = m.groups()
        if rest in ORDINAL_SUFFIXES:
            return [Token(digits + "th", start, end, number=int(digits), ordinal=True)]
        if _known(rest, is_word):
            cut = start + len(digits)
            return [
                Token(digits, start, cut, number=int(digits)),
                _repeats(rest, cut, end, is_word),
            ]
    if not primary.isalpha():  # e.g. a version string or code: keep as written
        return [Token(word, start, end)]
    if not _known(primary, is_word) and _known(second, is_word):
        primary, second = second, primary
    tok = _repeats(primary, start, end, is_word)
    alts = [a for a in (second, *_squeezed(second)) if a != tok.text and a not in tok.alts]
    tok.alts = (*tok.alts, *alts)
    tok.edit = LEET
    return [tok]


def _known(word: str, is_word: Callable[[str], bool]) -> bool:
    """``word`` or its squeezed spelling is a lexicon word."""
    return is_word(word) or is_word(_RUN2.sub(r"\1", word))


def _repeats(word: str, start: int, end: int, is_word: Callable[[str], bool]) -> Token:
    """Undo repeated letters: runs of three or more become two, or one where that is a word.

    ``nuuuude`` reads as ``nude``, ``cakkkke`` as ``cake``, ``kidds`` as ``kids``; the other
    readings stay as alternatives. Ordinary double letters (``ball``) are left alone.
    """
    if _RUN3.search(word):
        two = _RUN3.sub(r"\1\1", word)
        one = _RUN2.sub(r"\1", two)
        if is_word(two) or not is_word(one):
            return Token(two, start, end, (one,) if one != two else (), edit=REPEAT)
        return Token(one, start, end, (two,), edit=REPEAT)
    one = _RUN2.sub(r"\1", word)
    if one == word:
        return Token(word, start, end)
    if not is_word(word) and is_word(one):
        return Token(one, start, end, (word,), edit=REPEAT)
    return Token(word, start, end, (one,))
