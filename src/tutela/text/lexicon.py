"""Lexicons: the words of each language, kept as data files, and the index built from them.

One YAML file per language under ``tutela/text/lexicons/`` (see ``docs/lexicons.md`` for the
format). Terms are folded with the same character layer as prompts, so ``niña`` in a file
matches ``NIÑA``, ``nina`` and ``n1ña`` in a prompt. Term syntax:

- ``word`` or ``several words``: an exact word or phrase;
- ``word*``: any word starting with ``word`` (single words of 4+ letters only);
- ``=word``: counts only when the prompt reads as this language (for words that mean
  something innocent elsewhere, like German ``Kind`` and English ``kind``);
- ``first * last`` (only under ``undress``): a verb split around its object, as German
  separable verbs are (``zieh das Mädchen aus``): ``first``, then ``last`` within a few words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tutela.errors import ConfigError
from tutela.text.normalise import fold_term

#: Signal kind -> {tier -> score}. The scores are the reader's confidence, not a verdict.
TIER_SCORES: dict[str, dict[str, float]] = {
    "minor": {"strong": 0.95, "weak": 0.3},
    "adult": {"strong": 0.9},
    "sexual": {"strong": 0.9},
    "suggestive": {"strong": 0.7},
    "revealing": {"strong": 0.5},
    "undress": {"strong": 0.9},
    "coded_abuse": {"strong": 0.99},
    "benign": {"strong": 1.0},
}
_LIST_KEYS = ("stopwords", "age_units", "age_prefixes", "grade_words")
_SEP = re.compile(r"[-'`]+")
#: Prefix terms (``kinder*``) are at least this long.
_MIN_PREFIX = 4
#: Squeezed spellings shorter than this are ordinary words (``as`` is not ``ass``).
_MIN_SQUEEZED = 4


class _LexiconLoader(yaml.SafeLoader):
    """YAML without implicit booleans: ``no``, ``on``, ``si`` are words here, not flags."""


_LexiconLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One lexicon term as indexed: what it signals, how strongly, from which language."""

    kind: str
    score: float
    lang: str
    term: str
    gated: bool = False
    weak: bool = False


@dataclass(slots=True)
class LexiconIndex:
    """All languages' terms merged into lookup tables tuned for the prompt reader."""

    languages: dict[str, str] = field(default_factory=dict)  # code -> name
    words: dict[str, list[Entry]] = field(default_factory=dict)
    phrases: dict[str, list[Entry]] = field(default_factory=dict)
    phrase_starts: dict[str, int] = field(default_factory=dict)  # first word -> max length
    phrase_prefixes: frozenset[str] = frozenset()  # the first 2+ words of each phrase
    prefixes: dict[str, list[Entry]] = field(default_factory=dict)
    prefix_lengths: tuple[int, ...] = ()
    prefix_heads: frozenset[str] = frozenset()  # the first _MIN_PREFIX letters of each prefix
    frames: dict[str, list[tuple[str, Entry]]] = field(default_factory=dict)  # first -> (last, e)
    squeezed: dict[str, list[Entry]] = field(default_factory=dict)
    transposed: dict[str, list[Entry]] = field(default_factory=dict)  # "chlid" -> child's
    stopwords: dict[str, frozenset[str]] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)
    age_units: dict[str, int] = field(default_factory=dict)  # first word -> max length
    age_unit_phrases: frozenset[str] = frozenset()
    age_prefixes: frozenset[str] = frozenset()
    grade_words: frozenset[str] = frozenset()
    vocabulary: frozenset[str] = frozenset()  # every word any lexicon entry or list uses
    masked: dict[str, str] = field(default_factory=dict)  # "n*ked" -> "naked"

    def is_word(self, text: str) -> int:
        """How well the lexicons know ``text``: 2 a word, 1 a prefix term's word, 0 not.

        The token layer asks this to choose between readings of an obfuscated word
        (``1!p$71ck``: ``iipstick`` or ``lipstick``), so it covers the words inside phrases and
        the function words too, not only the words that carry a signal. A whole word beats a
        prefix match (``kinderporno`` over ``kinderpporno``, which only ``kinder*`` knows).
        """
        if text in self.vocabulary:
            return 2
        return 1 if self.lookup_word(text) is not None else 0

    def lookup_word(self, text: str) -> list[Entry] | None:
        """The entries of ``text`` as a word, else of its longest prefix term, else None.

        Most words asked about are neither: one look-up of their first four letters among
        the prefix terms' (``prefix_heads``) settles that, where trying every prefix length
        cost a slice and a look-up each, on every unknown word of every prompt.
        """
        hit = self.words.get(text)
        if hit is not None:
            return hit
        if text[:_MIN_PREFIX] not in self.prefix_heads:
            return None
        for k in self.prefix_lengths:
            if len(text) > k:
                hit = self.prefixes.get(text[:k])
                if hit is not None:
                    return hit
        return None


def _parse_term(raw: Any, source: str) -> tuple[str, bool, bool]:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{source}: every term must be a non-empty string, got {raw!r}")
    term = raw.strip()
    gated = term.startswith("=")
    term = term.lstrip("=")
    prefix = term.endswith("*")
    term = fold_term(term.rstrip("*"))
    if prefix and (" " in term or len(term) < _MIN_PREFIX):
        raise ConfigError(f"{source}: prefix terms must be one word of 4+ letters: {raw!r}")
    return term, gated, prefix


def _squeeze(word: str) -> str:
    return re.sub(r"([a-z])\1+", r"\1", word)


def load_index(paths: Iterable[Path] | None = None) -> LexiconIndex:
    """Build the index from lexicon files (default: every bundled language)."""
    if paths is None:
        folder = resources.files("tutela").joinpath("text/lexicons")
        files = sorted(
            (p for p in folder.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name
        )
        docs = [(p.name, p.read_text("utf-8")) for p in files]
    else:
        docs = [(str(p), Path(p).read_text("utf-8")) for p in paths]
    idx = LexiconIndex()
    units: set[str] = set()
    prefixes: set[str] = set()
    grade: set[str] = set()
    for name, text in docs:
        try:
            data = yaml.load(text, Loader=_LexiconLoader)
        except yaml.YAMLError as exc:
            raise ConfigError(f"lexicon {name} is not valid YAML: {exc}") from exc
        _add_language(idx, data, name, units, prefixes, grade)
    idx.age_unit_phrases = frozenset(units)
    idx.age_prefixes = frozenset(prefixes)
    idx.grade_words = frozenset(grade)
    idx.prefix_lengths = tuple(sorted({len(k) for k in idx.prefixes}, reverse=True))
    idx.prefix_heads = frozenset(k[:_MIN_PREFIX] for k in idx.prefixes)
    heads: set[str] = set()
    for phrase in idx.phrases:
        parts = phrase.split()
        heads.update(" ".join(parts[:k]) for k in range(2, len(parts) + 1))
    idx.phrase_prefixes = frozenset(heads)
    for word, entries in idx.words.items():
        sq = _squeeze(word)
        if sq != word and len(sq) >= _MIN_SQUEEZED:
            idx.squeezed.setdefault(sq, []).extend(entries)
    vocab: set[str] = set(idx.words) | set(idx.numbers) | grade | prefixes
    for phrase in (*idx.phrases, *units):
        vocab.update(phrase.split())
    for words in idx.stopwords.values():
        vocab.update(words)
    idx.vocabulary = frozenset(vocab)
    idx.masked = _mask_table(idx.words)
    idx.transposed = _transposition_table(idx.words)
    return idx


#: Words this long (in letters) are read with one swapped pair (``chlid``, ``nakde``).
TRANSPOSED_LENGTHS = range(5, 15)


def _transposition_table(words: dict[str, list[Entry]]) -> dict[str, list[Entry]]:
    """Every spelling of a word with one adjacent pair of letters swapped (the first letter
    kept) -> that word's entries; where two words give the same spelling, the one whose swap
    is further left, as a left-to-right search of the swaps finds it first.

    Built once, so the reader answers an unknown word with one look-up instead of trying
    each swap of it on every prompt (``reader._transposed`` is that search, kept as the
    reference the tests compare with).
    """
    table: dict[str, tuple[int, list[Entry]]] = {}
    for word, entries in words.items():
        if len(word) not in TRANSPOSED_LENGTHS or not word.isalpha():
            continue
        for j in range(1, len(word) - 1):
            if word[j] == word[j + 1]:
                continue
            swapped = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
            known = table.get(swapped)
            if known is None or j < known[0]:
                table[swapped] = (j, entries)
    return {w: entries for w, (_, entries) in table.items()}


def _mask_table(words: dict[str, list[Entry]]) -> dict[str, str]:
    """Starred-out spellings of signal words: one letter (``n*ked``) or two adjacent letters
    (``p**n``) replaced by ``*``. A pattern two words share keeps the first, which is enough:
    both carry a signal. Built once; the reader consults it only for text with a ``*``.
    """
    table: dict[str, str] = {}
    for word, entries in words.items():
        if not 3 <= len(word) <= 12 or not word.isalpha():
            continue
        if all(e.kind == "benign" for e in entries):
            continue
        for i in range(len(word)):
            table.setdefault(word[:i] + "*" + word[i + 1:], word)
            if i + 2 <= len(word) and len(word) >= 4:
                table.setdefault(word[:i] + "**" + word[i + 2:], word)
    return table


def _add_language(
    idx: LexiconIndex,
    data: Any,
    name: str,
    units: set[str],
    prefixes: set[str],
    grade: set[str],
) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("language"), str):
        raise ConfigError(f"lexicon {name} must be a mapping with a 'language' code")
    lang = data["language"]
    idx.languages[lang] = str(data.get("name", lang))
    for key in _LIST_KEYS:
        if not isinstance(data.get(key, []), list):
            raise ConfigError(f"lexicon {name}: '{key}' must be a list")
    idx.stopwords[lang] = frozenset(fold_term(w) for w in data.get("stopwords", []))
    for u in data.get("age_units", []):
        folded = _SEP.sub(" ", fold_term(u)).strip()
        units.add(folded)
        first = folded.split()[0]
        idx.age_units[first] = max(idx.age_units.get(first, 0), len(folded.split()))
    prefixes.update(fold_term(p) for p in data.get("age_prefixes", []))
    grade.update(fold_term(g) for g in data.get("grade_words", []))
    numbers = data.get("numbers", {}) or {}
    if not isinstance(numbers, dict):
        raise ConfigError(f"lexicon {name}: 'numbers' must map words to integers")
    for word, value in numbers.items():
        if not isinstance(value, int):
            raise ConfigError(f"lexicon {name}: number {word!r} must be an integer")
        idx.numbers[fold_term(str(word))] = value
    for kind, tiers in TIER_SCORES.items():
        section = data.get(kind)
        if section is None:
            continue
        if isinstance(section, list):
            section = {"strong": section}
        if not isinstance(section, dict):
            raise ConfigError(f"lexicon {name}: '{kind}' must be a list or tiers of lists")
        for tier, terms in section.items():
            if tier not in tiers or not isinstance(terms, list):
                raise ConfigError(f"lexicon {name}: unknown tier '{kind}.{tier}'")
            for raw in terms:
                if isinstance(raw, str) and " * " in raw:
                    _add_frame(idx, raw, kind, tiers[tier], lang, name)
                    continue
                term, gated, is_prefix = _parse_term(raw, f"lexicon {name} {kind}")
                entry = Entry(kind, tiers[tier], lang, term, gated, tier == "weak")
                _index_term(idx, term, entry, is_prefix)


def _add_frame(idx: LexiconIndex, raw: str, kind: str, score: float, lang: str, name: str) -> None:
    """``zieh * aus``: two words around an object of up to a few words."""
    first, _, last = (fold_term(p) for p in raw.partition(" * "))
    if kind != "undress" or not first or not last or " " in first or " " in last:
        raise ConfigError(f"lexicon {name}: frames are 'word * word' under undress: {raw!r}")
    entry = Entry(kind, score, lang, f"{first} ... {last}")
    idx.frames.setdefault(first, []).append((last, entry))


def _index_term(idx: LexiconIndex, term: str, entry: Entry, is_prefix: bool) -> None:
    if is_prefix:
        idx.prefixes.setdefault(term, []).append(entry)
        return
    words = term.split()
    joined_parts = _SEP.sub(" ", term).split()
    variants = {" ".join(words)}
    if joined_parts != words:  # "pre-teen": match "preteen" and "pre teen"
        variants.add(" ".join(joined_parts))
        variants.add(_SEP.sub("", term))
    for v in variants:
        parts = v.split()
        if len(parts) == 1:
            idx.words.setdefault(v, []).append(entry)
        else:
            idx.phrases.setdefault(v, []).append(entry)
            idx.phrase_starts[parts[0]] = max(idx.phrase_starts.get(parts[0], 0), len(parts))


@lru_cache(maxsize=1)
def default_index() -> LexiconIndex:
    """The bundled lexicons, indexed once per process."""
    return load_index()
