"""The prompt reader: normalised text in, signals out (minor, sexual, suggestive, revealing,
undressing, coded abuse, adult, obfuscation). It never decides; the policy does.

Steps, after the character layer (:mod:`.normalise`) and the token layer (:mod:`.tokens`):

1. language: function words vote (:func:`_leading`); language-specific terms (``=pedo``)
   count only in their language, or in prompts that read as no language;
2. lexicon: greedy longest-phrase-first over the tokens, so ``baby spinach`` (benign) wins over
   ``baby`` (minor) and ``young woman`` (adult) over ``young``; unknown words are tried as
   their other readings, squeezed, with two letters swapped, or as two glued words;
3. ages: numbers next to age units (``12yo``, ``doce años``), after age prefixes (``age 13``,
   ``she is 13``), after a word for a person (``girl of 14``), and school grades;
4. frames: verbs split around their object (``zieh das Mädchen aus``);
5. signals: one per kind, with the evidence; obfuscation counts one per hidden word.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter

from tutela.decision import Signal
from tutela.errors import PromptError
from tutela.text.lexicon import TRANSPOSED_LENGTHS, Entry, LexiconIndex, default_index
from tutela.text.normalise import GLUED, MASK, ORDINARY_EDITS, BaseText, normalise_chars
from tutela.text.tokens import Token, tokenise

DETECTOR = "prompt_lexicon"
MINOR_AGE = 18
_AGE_SCORE = 0.95
_ADULT_AGE_SCORE = 0.9
_WEAK_PAIR_SCORE = 0.7
_JOINERS = frozenset({"y", "e", "und", "et", "i"})
_MIN_GLUED = 7
_CACHE_SIZE = 50_000
_MAX_GLUED = 24  # longer runs are transliterated scripts without spaces, not two words
_FRAME_GAP = 5  # words allowed between the two halves of a frame
_AGE_JOINERS = frozenset(
    {
        "of", "de", "di", "da", "von", "du", "d", "aged", "about", "around", "roughly",
        "approximately", "maybe", "unos", "unas", "sobre", "environ", "vers", "etwa", "ungefahr",
        "circa", "cerca", "uns", "umas",
    }
)  # fmt: skip
_PERSON_KINDS = frozenset({"minor", "adult"})


@dataclass(slots=True)
class Match:
    """One lexicon hit: the entry, the words as written and as normalised."""

    entry: Entry
    as_written: str
    normalised: str
    edit: str | None = None


@dataclass(slots=True)
class PromptReading:
    """Everything the reader found in one prompt."""

    signals: list[Signal]
    language: str | None
    normalised: str
    edits: Counter[str] = field(default_factory=Counter)
    matches: list[Match] = field(default_factory=list)


class PromptReader:
    """Reads prompts against the lexicon index. Thread-safe: it holds no per-call state
    (only a bounded cache of lookups for unknown words, safe to share)."""

    def __init__(self, index: LexiconIndex | None = None, max_chars: int = 4000) -> None:
        self.index = index or default_index()
        self.max_chars = max_chars
        stop: dict[str, list[str]] = {}
        for lang, words in self.index.stopwords.items():
            for w in words:
                stop.setdefault(w, []).append(lang)
        self._stop = {w: tuple(langs) for w, langs in stop.items()}
        # word -> fallback result (see _fallback); plain dict operations are atomic in CPython
        self._unknown: dict[str, tuple[list[Entry] | None, list[Entry] | None]] = {}

    def _is_term(self, text: str) -> bool:
        """A word that carries a signal (stricter than ``is_word``: no function words)."""
        return self.index.lookup_word(text) is not None

    def validate(self, text: object) -> str:
        """Raise :class:`PromptError` unless ``text`` is a non-empty string within limits."""
        if not isinstance(text, str):
            raise PromptError(f"prompt must be text, got {type(text).__name__}")
        if len(text) > self.max_chars:
            raise PromptError(f"prompt is {len(text)} characters; the maximum is {self.max_chars}")
        if not text.strip():
            raise PromptError("prompt is empty")
        return text

    def read(self, text: str) -> PromptReading:
        """Normalise ``text`` and return its signals. Raises :class:`PromptError`.

        Fails closed: an unexpected error while reading (a bug, a broken custom lexicon)
        becomes a ``detector_error`` signal, which the policy turns into a block (or review),
        never an allow, instead of an exception that a caller might treat as "no finding".
        """
        self.validate(text)
        try:
            return self._read(text)
        except Exception as exc:  # fail closed on the sexual_minors path (DESIGN.md)
            error = f"{type(exc).__name__}: {exc}"[:300]
            signal = Signal(DETECTOR, "detector_error", 1.0, {"error": error})
            return PromptReading([signal], None, " ".join(text.lower().split()))

    def _read(self, text: str) -> PromptReading:
        base = normalise_chars(text)
        idx = self.index
        tokens, extras = tokenise(base.text, idx.is_word, self._is_term)
        if "*" in base.text:
            extras.extend(_unmasked(idx, base.text))
        texts = [t.text for t in tokens]  # the words, read by every step below
        langs = _leading(self._languages(texts))
        benign: set[int] = set()  # token indices covered by a benign phrase
        matches = self._match_lexicon(tokens, texts, base, langs, benign)
        matched_spans = {(m.as_written) for m in matches}
        for ex in extras:
            entries = idx.lookup_word(ex.text) or _first_hit(idx, ex.alts)
            if entries:
                as_written = base.span_as_written(ex.start, ex.end)
                if as_written not in matched_spans:
                    matches.extend(
                        Match(e, as_written, ex.text, ex.edit) for e in entries if _admits(e, langs)
                    )
        matches.extend(self._ages(tokens, base))
        if idx.frames:
            matches.extend(self._frames(tokens, texts, base, langs, benign))
        edits = base.edits  # base is this call's own: its counter is the reading's
        counted: set[str] = set()
        for m in matches:  # one count per obfuscated span, however many entries it matched
            if m.edit and m.as_written not in counted:
                counted.add(m.as_written)
                edits[m.edit] += 1
        language = _language(langs, matches)
        signals = _signals(matches, edits)
        normalised = " ".join(texts)
        return PromptReading(signals, language, normalised, edits, matches)

    # --- internals -------------------------------------------------------------------------
    def _languages(self, texts: list[str]) -> dict[str, int]:
        """Function words per language, in the order the languages first appear.

        A plain dict, not a Counter: a Counter's missing-key hook is a Python call, and this
        runs for every token of every prompt. The order is kept: ties go to the first seen.
        """
        langs: dict[str, int] = {}
        stop = self._stop
        for hit in filter(None, map(stop.get, texts)):
            for lang in hit:
                langs[lang] = langs.get(lang, 0) + 1
        return langs

    def _match_lexicon(
        self,
        tokens: list[Token],
        texts: list[str],
        base: BaseText,
        langs: dict[str, int],
        benign: set[int],
    ) -> list[Match]:
        """Greedy longest-first lexicon matches; fills ``benign`` with the innocent spans.
        ``texts`` are the tokens' words."""
        idx = self.index
        phrase_starts, phrases, lookup_word = idx.phrase_starts, idx.phrases, idx.lookup_word
        heads = idx.phrase_prefixes
        out: list[Match] = []
        i, n = 0, len(tokens)
        while i < n:
            tok = tokens[i]
            span = 1
            entries: list[Entry] | None = None
            longest = phrase_starts.get(texts[i])
            if longest:
                # every phrase's first words are a phrase prefix: the phrases that can start
                # here are no longer than the words that read as one (``a`` starts phrases of
                # up to four words, but ``a watercolour`` begins none: one look-up, not three)
                top, reach = min(longest, n - i), 1
                while reach < top and " ".join(texts[i : i + reach + 1]) in heads:
                    reach += 1
                for length in range(reach, 1, -1):
                    entries = phrases.get(" ".join(texts[i : i + length]))
                    if entries:
                        span = length
                        break
            if not entries:
                entries = lookup_word(tok.text)
                glued = None
                if entries is None and tok.number is None:
                    entries, glued = self._fallback(tok)
                    if glued:
                        written = base.span_as_written(tok.start, tok.end)
                        for e in glued:
                            if e.kind != "benign" and _admits(e, langs):
                                out.append(Match(e, written, tok.text, tok.edit or GLUED))
                        i += 1
                        continue
            if entries:
                last = tokens[i + span - 1]
                as_written = base.span_as_written(tok.start, last.end)
                if span == 1:
                    normalised, edit = tok.text, tok.edit or None
                else:
                    normalised = " ".join(texts[i : i + span])
                    edit = next((t.edit for t in tokens[i : i + span] if t.edit), None)
                for e in entries:
                    if e.kind == "benign":
                        benign.update(range(i, i + span))
                    elif _admits(e, langs):
                        out.append(Match(e, as_written, normalised, edit))
            i += span
        return out

    def _fallback(self, tok: Token) -> tuple[list[Entry] | None, list[Entry] | None]:
        """Entries for a word the lexicons do not know as written: (as one word, as two).

        Tries the token's other readings, squeezed letters, one swapped pair, then two glued
        words. Most words of a prompt end here with nothing, so plain words are cached.
        """
        cached = self._unknown.get(tok.text) if not tok.alts else None
        if cached is not None:
            return cached
        idx = self.index
        entries = (
            _first_hit(idx, tok.alts)
            or _first_squeezed(idx, (tok.text, *tok.alts))
            or idx.transposed.get(tok.text)  # what _transposed(idx, tok.text) finds
        )
        result = (entries, None if entries else _glued(idx, tok.text))
        if not tok.alts:
            if len(self._unknown) >= _CACHE_SIZE:
                self._unknown.clear()  # bounded; refills with the words in use
            self._unknown[tok.text] = result
        return result

    def _frames(
        self,
        tokens: list[Token],
        texts: list[str],
        base: BaseText,
        langs: dict[str, int],
        benign: set[int],
    ) -> list[Match]:
        """Verbs split around their object (``zieh das kleine Mädchen aus``).

        A frame whose closing word belongs to a benign phrase is innocent: ``zieht die Jacke
        aus`` (takes off the jacket), with ``die jacke aus`` in the benign list.
        """
        out: list[Match] = []
        frames = self.index.frames
        for i in [i for i, text in enumerate(texts) if text in frames]:  # few words open one
            tok = tokens[i]
            for last, entry in frames[tok.text]:
                for j in range(i + 2, min(i + 2 + _FRAME_GAP, len(tokens))):
                    if tokens[j].text == last and j not in benign and _admits(entry, langs):
                        written = base.span_as_written(tok.start, tokens[j].end)
                        normalised = " ".join(t.text for t in tokens[i : j + 1])
                        out.append(Match(entry, written, normalised))
                        break
        return out

    def _ages(self, tokens: list[Token], base: BaseText) -> list[Match]:
        """Numbers next to age units or prefixes, and school grades."""
        idx = self.index
        out: list[Match] = []
        n = len(tokens)
        done = -1  # last token already read as part of a number ("treinta y cinco")
        numbers = idx.numbers
        for i, tok in enumerate(tokens):
            if i <= done:
                continue
            value = tok.number if tok.number is not None else numbers.get(tok.text)  # _number
            if value is None:
                continue
            value, last = _compound(idx, tokens, i, value)
            done = last
            unit_end = _unit_end(idx, tokens, last + 1)
            has_prefix = i >= 1 and (
                tokens[i - 1].text in idx.age_prefixes
                or (i >= 2 and f"{tokens[i - 2].text} {tokens[i - 1].text}" in idx.age_prefixes)
            )
            if unit_end is not None or has_prefix:
                first = i - 1 if has_prefix and unit_end is None else i
                end = unit_end if unit_end is not None else last + 1
                out.append(_age_match(base, tokens, first, end, value))
                continue
            nxt = tokens[last + 1].text if last + 1 < n else None
            prv = tokens[i - 1].text if i >= 1 else None
            if value <= 12 and ((tok.ordinal and nxt in idx.grade_words) or prv in idx.grade_words):
                first = i - 1 if prv in idx.grade_words else i
                end = last + 2 if nxt in idx.grade_words else last + 1
                out.append(_age_match(base, tokens, first, end, None, grade=value))
                continue
            person = _person_before(idx, tokens, i)
            if person is not None and not tok.ordinal and 0 < value < 100:
                out.append(_age_match(base, tokens, person, last + 1, value))
        return out


def _leading(langs: dict[str, int]) -> dict[str, int]:
    """Only the languages with the most function words (all of them on a tie)."""
    if not langs:
        return langs
    top = max(langs.values())
    return {lang: n for lang, n in langs.items() if n == top}


_MASKED = re.compile(r"(?<![a-z*])(?:[a-z]+(?:\*{1,2}[a-z]+)+|\*{1,2}[a-z]{2,})(?![a-z*])")


def _unmasked(idx: LexiconIndex, text: str) -> list[Token]:
    """Readings of starred-out words (``n*ked``, ``p**n``, ``*oli``) as extra tokens."""
    out: list[Token] = []
    for m in _MASKED.finditer(text):
        word = idx.masked.get(m.group())
        if word is not None:
            out.append(Token(word, m.start(), m.end(), edit=MASK))
    return out


def _admits(entry: Entry, langs: dict[str, int]) -> bool:
    """A gated term counts when the prompt reads as its language, or as no language at all.

    Terse prompts (``pedo pics``) carry no function words; refusing gated terms there would
    let the shortest requests through, while a prompt with another language's function
    words (``un niño tirándose un pedo``) shows the innocent sense is meant.
    """
    return not entry.gated or not langs or langs.get(entry.lang, 0) > 0


def _first_hit(idx: LexiconIndex, alts: tuple[str, ...]) -> list[Entry] | None:
    for a in alts:
        hit = idx.lookup_word(a)
        if hit:
            return hit
    return None


def _first_squeezed(idx: LexiconIndex, texts: tuple[str, ...]) -> list[Entry] | None:
    for t in texts:
        hit = idx.squeezed.get(t)
        if hit:
            return hit
    return None


def _transposed(idx: LexiconIndex, word: str) -> list[Entry] | None:
    """Catch one swapped pair of letters in longer words (``chlid``, ``nakde``).

    The reference search: the reader looks the word up in ``idx.transposed``, built once
    from the same rule, and the tests check the two agree.
    """
    if len(word) not in TRANSPOSED_LENGTHS or not word.isalpha():
        return None
    words = idx.words
    for j in range(1, len(word) - 1):  # keep the first letter: fewer accidental hits
        if word[j] == word[j + 1]:
            continue
        hit = words.get(word[:j] + word[j + 1] + word[j] + word[j + 2 :])
        if hit:
            return hit
    return None


def _person_before(idx: LexiconIndex, tokens: list[Token], i: int) -> int | None:
    """Index of a person word just before the number at ``i`` (``girl 14``, ``chica de 14``).

    A bare number right after a word for a person, or after it and ``of``/``de``/``di``, is
    that person's age in every language read here; elsewhere a bare number is left alone
    (``a set of 12 pencils``).
    """
    j = i - 1
    for _ in range(2):  # "girl of 14", "girl, about 12", "chica de unos 14"
        if j >= 0 and _is_joiner(tokens[j]):
            j -= 1
    if j < 0:
        return None
    entries = idx.lookup_word(tokens[j].text)
    if entries and any(e.kind in _PERSON_KINDS for e in entries):
        return j
    return None


def _glued(idx: LexiconIndex, word: str) -> list[Entry] | None:
    """Two lexicon words written as one (``nudechild``, ``childnude``): both halves' entries.

    Only whole words of three letters or more on both sides, so ordinary compounds that merely
    start with a short word are left alone.
    """
    if not _MIN_GLUED <= len(word) <= _MAX_GLUED or not word.isalpha():
        return None
    words = idx.words
    for k in range(3, len(word) - 2):
        left = words.get(word[:k])
        if left is None:
            continue
        right = words.get(word[k:])
        if right is not None:
            return [*left, *right]
    return None


def _is_joiner(tok: Token) -> bool:
    return tok.text in _AGE_JOINERS or any(a in _AGE_JOINERS for a in tok.alts)


def _number(idx: LexiconIndex, tok: Token) -> int | None:
    if tok.number is not None:
        return tok.number
    return idx.numbers.get(tok.text)


def _compound(idx: LexiconIndex, tokens: list[Token], i: int, value: int) -> tuple[int, int]:
    """Read ``thirty five`` / ``treinta y cinco`` as one number; return (value, last index)."""
    if value < 20 or value % 10 or value >= 100:
        return value, i
    n = len(tokens)
    j = i + 1
    if j < n and tokens[j].text in _JOINERS:
        j += 1
    if j < n:
        unit = _number(idx, tokens[j])
        if unit is not None and 0 < unit < 10:
            return value + unit, j
    return value, i


def _unit_end(idx: LexiconIndex, tokens: list[Token], j: int) -> int | None:
    """If an age unit starts at ``j`` (after an optional ``de``/``of``), return its end."""
    n = len(tokens)
    if j >= n:
        return None
    longest = idx.age_units.get(tokens[j].text, 0)
    for length in range(min(longest, n - j), 0, -1):
        if " ".join(t.text for t in tokens[j : j + length]) in idx.age_unit_phrases:
            return j + length
    return None


def _age_match(
    base: BaseText,
    tokens: list[Token],
    first: int,
    end: int,
    age: int | None,
    grade: int | None = None,
) -> Match:
    as_written = base.span_as_written(tokens[first].start, tokens[end - 1].end)
    normalised = " ".join(t.text for t in tokens[first:end])
    if grade is not None:
        entry = Entry("minor", _AGE_SCORE, "*", f"grade {grade}")
    elif age is not None and age < MINOR_AGE:
        entry = Entry("minor", _AGE_SCORE, "*", f"age {age}")
    else:
        entry = Entry("adult", _ADULT_AGE_SCORE, "*", f"age {age}")
    edit = next((t.edit for t in tokens[first:end] if t.edit), None)
    return Match(entry, as_written, normalised, edit)


def _language(langs: dict[str, int], matches: list[Match]) -> str | None:
    """The language with the most votes (function words, then matched terms); on a tie the
    first to get a vote, as ``Counter.most_common`` would pick (``max`` keeps the first)."""
    votes = dict(langs)
    for m in matches:
        lang = m.entry.lang
        if lang != "*":
            votes[lang] = votes.get(lang, 0) + 1
    if not votes:
        return None
    return max(votes.items(), key=itemgetter(1))[0]


def _signals(matches: list[Match], edits: Counter[str]) -> list[Signal]:
    by_kind: dict[str, list[Match]] = {}
    for m in matches:
        by_kind.setdefault(m.entry.kind, []).append(m)
    signals: list[Signal] = []
    for kind, ms in by_kind.items():
        score = max(m.entry.score for m in ms)
        if kind == "minor" and all(m.entry.weak for m in ms):
            distinct = {m.entry.term for m in ms}
            if len(distinct) >= 2:
                score = _WEAK_PAIR_SCORE
        terms = []
        seen: set[tuple[str, str]] = set()
        for m in ms:
            key = (m.as_written, m.entry.term)
            if key in seen:
                continue
            seen.add(key)
            term = {
                "as_written": m.as_written,
                "normalised": m.normalised,
                "term": m.entry.term,
                "lang": m.entry.lang,
            }
            if m.entry.weak:
                term["weak"] = True
            terms.append(term)
        signals.append(Signal(DETECTOR, kind, score, {"terms": terms}))
    tricks = {k: v for k, v in edits.items() if k not in ORDINARY_EDITS and v}
    if tricks:
        total = sum(tricks.values())
        signals.append(
            Signal(
                "normaliser",
                "obfuscation",
                min(1.0, total / 4),
                {"counts": dict(sorted(tricks.items()))},
            )
        )
    return signals
