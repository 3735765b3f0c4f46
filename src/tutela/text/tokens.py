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
from itertools import product
from operator import itemgetter

from tutela.text.normalise import LEET, REPEAT, SEPARATOR, SPACING

# A raw token: word characters and leet symbols, possibly with separators inside.
_RAW = re.compile(r"[a-z0-9@$|!+]+(?:[._\-*~'`^=]+[a-z0-9@$|!+]+)*")
_INNER_SEP = re.compile(r"[._\-*~'`^=]+")
_GAP_OK = re.compile(r"^[\s._\-*~/|+,:'`^=]{1,3}$")
_RUN3 = re.compile(r"([a-z])\1{2,}")
_RUN2 = re.compile(r"([a-z])\1+")
_DIGITS_WORD = re.compile(r"^(\d{1,3})([a-z][a-z0-9@$|!+]*)$")
#: A run's letter (group 1): the replacement ``r"\1"`` names, as a C-level callable. With a
#: template string Python 3.11's ``re.sub`` goes through its Python template code on every
#: call, which cost more than twice the rest of reading a word with a double letter.
_LETTER = itemgetter(1)
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


def tokenise(
    base: str,
    is_word: Callable[[str], int],
    is_term: Callable[[str], int] | None = None,
) -> tuple[list[Token], list[Token]]:
    """Split ``base`` into position tokens and extra joined readings.

    Returns ``(tokens, extras)``: ``tokens`` are the words in order (phrases are matched
    over them); ``extras`` are whole-span readings of words written with separators inside
    (``nu-de`` -> ``nude``), matched as single words. ``is_word`` tells whether a string is
    a word the lexicons know; it settles the ambiguous cases (``1girl`` is ``1 girl``,
    ``ch!1d`` is ``child``). ``is_term`` (default ``is_word``) is the stricter test, for
    words that carry a signal: ``838e`` is ``bebe``, not the 838th. Each token notes the
    trick it undid in ``edit``; the reader counts a trick only where it hid a lexicon word,
    so ``3d`` or ``t-shirt`` are not taken for obfuscation.
    """
    is_term = is_term or is_word
    raws = [(m.group(), *m.span()) for m in _RAW.finditer(base)]
    if "'" in base:
        raws = _split_elisions(raws)
    raws = _merge_spaced(raws, base, is_word)
    tokens: list[Token] = []
    extras: list[Token] = []
    for raw, start, end in raws:
        if raw.isalpha():  # most words: what _read_word would do with them, without the tests
            tokens.append(_repeats(raw, start, end, is_word))
            continue
        if _INNER_SEP.search(raw) is None:
            tokens.extend(_read_word(raw, start, end, is_word, is_term))
            continue
        core = raw.rstrip("!+|")  # n-u-d-e! : the mark ends the sentence, not the word
        groups = _letter_groups(core, start)
        parts: list[Token] = []
        for text, g_start, g_end, spelled in groups:
            for tok in _read_word(text, g_start, g_end, is_word, is_term):
                if spelled and tok.edit != LEET:
                    tok.edit = SEPARATOR  # n.u.d.e: one word written letter by letter
                parts.append(tok)
        tokens.extend(parts)
        if len(groups) > 1:
            joined = "".join(p.text for p in parts if p.number is None or not p.ordinal)
            if joined and len(parts) > 1:
                extras.append(Token(joined, start, end, tuple(_squeezed(joined)), edit=SEPARATOR))
    return tokens, extras


#: Elided articles and prepositions (French, Catalan, Italian): ``l'enfant`` is two words.
_ELISIONS = frozenset(
    {
        "l", "d", "s", "n", "j", "c", "m", "t", "qu", "lorsqu", "puisqu", "dell", "all",
        "nell", "sull", "dall", "un", "quell", "bell", "sant",
    }
)  # fmt: skip
#: One written letter that transliterates to two (œ, æ, ß): still one letter of a spelled word.
_LIGATURES = frozenset({"oe", "ae", "ss"})
_PIECE = re.compile(r"[^._\-*~'`^=]+")


def _split_elisions(raws: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """``l'enfant`` -> ``l`` + ``enfant``: an elided article is a word of its own."""
    out: list[tuple[str, int, int]] = []
    for raw, start, end in raws:
        head, apostrophe, rest = raw.partition("'")
        if apostrophe and head in _ELISIONS and rest:
            cut = start + len(head) + 1
            out.append((head, start, start + len(head)))
            stripped = rest.lstrip("._-*~'`^=")
            if stripped:
                out.append((stripped, cut + len(rest) - len(stripped), end))
            continue
        out.append((raw, start, end))
    return out


def _letter_groups(raw: str, start: int) -> list[tuple[str, int, int, bool]]:
    """Pieces of a separated word; runs of three or more single letters joined into one.

    Returns ``(text, start, end, spelled)`` where ``spelled`` marks a piece joined from
    single letters (``t-r-e-u-li`` -> ``treu`` + ``li``).
    """
    pieces = [(m.group(), start + m.start(), start + m.end()) for m in _PIECE.finditer(raw)]
    out: list[tuple[str, int, int, bool]] = []
    i, n = 0, len(pieces)
    while i < n:
        j = i
        while j < n and (len(pieces[j][0]) == 1 or pieces[j][0] in _LIGATURES):
            j += 1
        if j - i >= 3:
            text = "".join(p[0] for p in pieces[i:j])
            out.append((text, pieces[i][1], pieces[j - 1][2], True))
            i = j
        else:
            out.append((*pieces[i], False))
            i += 1
    return out


def _merge_spaced(
    raws: list[tuple[str, int, int]], base: str, is_word: Callable[[str], int]
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


def _trim_run(text: str, is_word: Callable[[str], int]) -> tuple[int, int]:
    """How many single letters to split off the start and end of a spaced-out run."""
    if len(text) < 4 or is_word(text):
        return 0, 0
    for lo, hi in ((1, 0), (0, 1), (1, 1)):
        core = text[lo : len(text) - hi]
        if len(core) >= 3 and is_word(core):
            return lo, hi
    return 0, 0


def _squeezed(word: str) -> list[str]:
    s = _RUN2.sub(_LETTER, word)
    return [s] if s != word else []


# Symbols with two common readings; the others have one (LEET_PRIMARY).
_LEET_CHOICES: dict[str, str] = {"1": "il", "!": "il", "|": "li", "4": "ah", "6": "gb"}
_MAX_READINGS = 32


def _leet_readings(word: str) -> list[str]:
    """Every reading of a leet word, the primary one first (bounded: at most 32)."""
    options = [_LEET_CHOICES.get(c) or c.translate(LEET_PRIMARY) for c in word]
    count = 1
    for o in options:
        count *= len(o)
    if count > _MAX_READINGS:
        return [word.translate(LEET_PRIMARY), word.translate(LEET_SECOND)]
    return ["".join(p) for p in product(*options)]


def _read_word(
    raw: str,
    start: int,
    end: int,
    is_word: Callable[[str], int],
    is_term: Callable[[str], int],
) -> list[Token]:
    """Read one separator-free raw token into one or two tokens."""
    spaced = raw.startswith(SPACED_MARK)
    if spaced:
        toks = _read_word(raw[1:], start, end, is_word, is_term)
        for t in toks:
            t.edit = SPACING
        if len(toks) == 1:
            toks[0].start, toks[0].end = start, end
        return toks
    word = raw.strip("!+|")
    if word != raw and _first_known(_leet_readings(raw), is_word) is not None:
        word = raw  # the ! or | was a letter: !nfant!l
    if not word:
        return []
    lead = raw.index(word)
    start, end = start + lead, end - (len(raw) - lead - len(word))
    if word.isdigit():  # never leet: "1011 pencils" are pencils
        return [Token(word, start, end, number=int(word[:3]))]
    if word.isalpha():
        return [_repeats(word, start, end, is_word)]
    m = _DIGITS_WORD.match(word)
    readings = _leet_readings(word)
    if m and m.group(2) in ORDINAL_SUFFIXES and _first_known(readings, is_term) is None:
        digits = m.group(1)  # 5th, 3er, 4º; but 838e is bebe
        return [Token(digits + "th", start, end, number=int(digits), ordinal=True)]
    known = _first_known(readings, is_word)
    if known is None and m:
        digits, rest = m.groups()
        rest_reading = rest if rest.isalpha() else _first_known(_leet_readings(rest), is_word)
        if rest_reading is not None and _known(rest_reading, is_word):
            cut = start + len(digits)  # 12yo, 1girl, 12y0
            tail = _repeats(rest_reading, cut, end, is_word)
            if rest_reading != rest:
                tail.edit = LEET
            return [Token(digits, start, cut, number=int(digits)), tail]
    if not readings[0].isalpha():  # e.g. a version string or code: keep as written
        return [Token(word, start, end)]
    tok = _repeats(known or readings[0], start, end, is_word)
    others = [r for r in readings[:4] if r != tok.text and r not in tok.alts]
    tok.alts = (*tok.alts, *others)
    tok.edit = LEET
    return [tok]


def _first_known(readings: list[str], is_word: Callable[[str], int]) -> str | None:
    """The best-known reading (a whole word over a prefix match), first on a tie."""
    best, rank = None, 0
    for r in readings:
        k = _known(r, is_word)
        if k > rank:
            best, rank = r, k
            if k >= 2:
                break
    return best


def _known(word: str, is_word: Callable[[str], int]) -> int:
    """How well ``word``, or a spelling with repeated letters undone, is known (see is_word)."""
    rank = int(is_word(word))
    if rank >= 2 or _RUN2.search(word) is None:
        return rank
    return max(rank, *(int(is_word(r)) for r in _run_readings(word)))


def _run_readings(word: str) -> list[str]:
    """Readings of a word with runs of a letter: each run as two letters or one.

    ``topllless`` -> ``toplless``, ``topless``, ``toples`` ...; bounded to four runs.
    """
    runs = list(_RUN2.finditer(word))
    if len(runs) > 4:
        return [_RUN3.sub(r"\1\1", word), _RUN2.sub(_LETTER, word)]
    pieces: list[tuple[str, ...]] = []
    pos = 0
    for m in runs:
        pieces.append((word[pos : m.start()],))
        c = m.group(1)
        pieces.append((c + c, c))
        pos = m.end()
    pieces.append((word[pos:],))
    return ["".join(p) for p in product(*pieces)]


def _repeats(word: str, start: int, end: int, is_word: Callable[[str], int]) -> Token:
    """Undo repeated letters: each run becomes two letters or one, whichever is a word.

    ``nuuuude`` reads as ``nude``, ``cakkkke`` as ``cake``, ``topllless`` as ``topless``,
    ``kidds`` as ``kids``; other readings stay as alternatives. Ordinary double letters
    (``ball``) are left alone.
    """
    if _RUN2.search(word) is None:
        return Token(word, start, end)
    if _RUN3.search(word) is None:
        one = _RUN2.sub(_LETTER, word)
        if not is_word(word) and is_word(one):
            return Token(one, start, end, (word,), edit=REPEAT)
        return Token(word, start, end, (one,))
    readings = _run_readings(word)
    ranks = [int(is_word(r)) for r in readings]
    pick = readings[ranks.index(max(ranks))]
    alts = tuple(r for r in readings if r != pick)[:3]
    return Token(pick, start, end, alts, edit=REPEAT)
