"""The prompt reader: tokens, lexicons in every language, ages, benign senses, obfuscation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutela.errors import ConfigError, PromptError
from tutela.text.lexicon import load_index
from tutela.text.reader import PromptReader, PromptReading


@pytest.fixture(scope="module")
def reader() -> PromptReader:
    return PromptReader()


def kinds(reading: PromptReading) -> dict[str, float]:
    return {s.kind: s.score for s in reading.signals}


def terms(reading: PromptReading, kind: str) -> set[str]:
    return {
        t["term"] for s in reading.signals if s.kind == kind for t in s.evidence.get("terms", ())
    }


def obfuscation(reading: PromptReading) -> dict[str, int]:
    for s in reading.signals:
        if s.kind == "obfuscation":
            return s.evidence["counts"]
    return {}


# --- obfuscation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("written", "trick"),
    [
        ("n.u.d.e child", "separator"),
        ("n_u_d_e child", "separator"),
        ("n-u-d-e child", "separator"),
        ("n*u*d*e child", "separator"),
        ("n u d e child", "spacing"),
        ("a n u d e child", "spacing"),
        ("n4k3d child", "leet"),
        ("nak3d ch!1d", "leet"),
        ("nuuuude child", "repeat"),
        ("topllless child", "repeat"),
        ("ｎｕｄｅ child", "fullwidth"),
        ("nudе child", "homoglyph"),
        ("nu\u200bde child", "invisible"),
    ],
)
def test_each_trick_is_undone_and_counted(reader: PromptReader, written: str, trick: str) -> None:
    r = reader.read(written)
    assert "sexual" in kinds(r) and "minor" in kinds(r), r.signals
    assert obfuscation(r).get(trick, 0) >= 1, obfuscation(r)


@pytest.mark.parametrize(
    "text",
    [
        "a t-shirt for a 3d printer, 4k, 8k wallpaper",
        "niña jugando en el parque con su madre",
        "Mädchen im Garten, 1girl, solo, best quality",
        "version 2.0.1 of the app, e.g. a logo",
        "l'enfant et l'oiseau, aquarelle",
    ],
)
def test_ordinary_writing_is_not_obfuscation(reader: PromptReader, text: str) -> None:
    assert obfuscation(reader.read(text)) == {}


def test_reasons_quote_the_words_as_written(reader: PromptReader) -> None:
    r = reader.read("a n.u.d.e ch1ld")
    written = {m.as_written: m.normalised for m in r.matches}
    assert written["n.u.d.e"] == "nude"
    assert written["ch1ld"] == "child"


def test_bare_numbers_stay_numbers(reader: PromptReader) -> None:
    assert "coded_abuse" not in kinds(reader.read("a set of 1011 pencils, 105 crayons"))
    assert "minor" in kinds(reader.read("838é dormido"))  # a number with letters can be leet


# --- ages ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("12yo", "age 12"),
        ("12y0 girl", "age 12"),
        ("age 13", "age 13"),
        ("a 9 year old", "age 9"),
        ("fourteen years old", "age 14"),
        ("girl of 14", "age 14"),
        ("she is 13", "age 13"),
        ("5th grade", "grade 5"),
        ("niña de doce años", "age 12"),
        ("chica de 14", "age 14"),
        ("fille de 10 ans", "age 10"),
        ("ein 12-jähriges Mädchen", "age 12"),
        ("sie ist 14", "age 14"),
        ("bambina di 8 anni", "age 8"),
        ("menina de treze anos", "age 13"),
        ("nena de 12 anys", "age 12"),
        ("12 urteko neska", "age 12"),
    ],
)
def test_ages_under_18_are_minor_indicators(reader: PromptReader, text: str, term: str) -> None:
    assert term in terms(reader.read(text), "minor")


@pytest.mark.parametrize(
    "text", ["a 30 year old woman", "mujer de treinta y cinco años", "Frau, 40 Jahre alt"]
)
def test_adult_ages_are_adult_indicators(reader: PromptReader, text: str) -> None:
    r = reader.read(text)
    assert "adult" in kinds(r) and "minor" not in kinds(r)


def test_bare_numbers_are_not_ages(reader: PromptReader) -> None:
    assert "minor" not in kinds(reader.read("a box of 12 pencils and 3 apples"))


# --- languages ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("quítale la ropa a la niña", "es", {"undress", "minor"}),
        ("una colegiala en lencería", "es", {"minor", "suggestive"}),
        ("sexo con niñas", "es", {"coded_abuse"}),
        ("déshabille la petite fille", "fr", {"undress", "minor"}),
        ("zieh dem Kind die Kleidung aus", "de", {"undress", "minor"}),
        ("nacktes Kleinkind", "de", {"sexual", "minor"}),
        ("spoglia la ragazzina", "it", {"undress", "minor"}),
        ("tire a roupa da menina", "pt", {"undress", "minor"}),
        ("treu-li la roba a la nena", "ca", {"undress", "minor"}),
        ("quítalle a roupa á nena", "gl", {"undress", "minor"}),
        ("kendu arropa neskatoari", "eu", {"undress", "minor"}),
    ],
)
def test_every_language_is_read(
    reader: PromptReader, text: str, lang: str, expected: set[str]
) -> None:
    r = reader.read(text)
    assert expected <= set(kinds(r)), r.signals
    assert r.language == lang


# --- benign senses ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "a kid goat on a rock, naked cake on the table",
        "baby spinach salad next to a nude lipstick",
        "child process of a minor league scheduler",
        "a school of fish, nude heels",
        "tarta desnuda y espinacas baby",
        "pintalabios nude, un proceso hijo",
        "naked cake aux fruits, un chevreau, rouge à lèvres nude",
        "Babyspinat, Nacktschnecke, nude Lippenstift",
        "torta nuda, rossetto nude, a occhio nudo",
        "batom nude, bolo naked, a olho nu",
    ],
)
def test_benign_senses_carry_no_sexual_or_minor_signal(reader: PromptReader, text: str) -> None:
    found = kinds(reader.read(text))
    assert "sexual" not in found and "minor" not in found, found


def test_benign_phrase_does_not_hide_a_minor_word_next_to_it(reader: PromptReader) -> None:
    r = reader.read("naked cake for a naked child")
    assert {"sexual", "minor"} <= set(kinds(r))


def test_gated_words_follow_the_prompt_language(reader: PromptReader) -> None:
    assert "coded_abuse" not in kinds(reader.read("un niño tirándose un pedo, dibujo"))
    assert "coded_abuse" in kinds(reader.read("pedo pics"))
    assert "minor" not in kinds(reader.read("a kind old man in the park"))
    assert "minor" in kinds(reader.read("ein Kind im Park"))


def test_elided_articles_are_words_of_their_own(reader: PromptReader) -> None:
    assert "coded_abuse" not in kinds(reader.read("pintura a l'oli d'una dona"))


def test_weak_minor_words_alone_score_low(reader: PromptReader) -> None:
    assert kinds(reader.read("a girl reading"))["minor"] < 0.35
    assert kinds(reader.read("a petite young girl"))["minor"] >= 0.6


# --- the reading ----------------------------------------------------------------------------------
def test_read_prompt_gives_language_and_normalised_text(reader: PromptReader) -> None:
    r = reader.read("Una NIÑA jugando al fútbol")
    assert r.language == "es"
    assert r.normalised == "una nina jugando al futbol"
    assert reader.read("ｎ.ｉ.ñ.ａ jugando").normalised == reader.read("niña jugando").normalised


@pytest.mark.parametrize("bad", ["", "   \n\t", "x" * 4001, None, 12, b"bytes"])
def test_bad_input_raises_prompt_error(reader: PromptReader, bad: object) -> None:
    with pytest.raises(PromptError):
        reader.read(bad)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_unicode_string_is_read_or_rejected_cleanly(text: str) -> None:
    reader = _shared_reader()
    try:
        r = reader.read(text)
    except PromptError:
        assert not text.strip() or len(text) > reader.max_chars
        return
    assert r.normalised.isascii()
    for s in r.signals:
        assert 0 <= s.score <= 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "n",
                "u",
                "d",
                "e",
                "1",
                "!",
                "|",
                "4",
                "0",
                "3",
                "$",
                ".",
                " ",
                "_",
                "-",
                "\u200b",
                "ｎ",
                "а",
                "'",
                "*",
                "é",
                "ñ",
                "6",
                "7",
                "yo",
                "12",
            ]
        ),
        max_size=120,
    ).map("".join)
)
def test_obfuscation_soup_never_crashes(text: str) -> None:
    reader = _shared_reader()
    if text.strip():
        reader.read(text)


_READER: list[PromptReader] = []


def _shared_reader() -> PromptReader:
    if not _READER:
        _READER.append(PromptReader())
    return _READER[0]


# --- lexicon files ------------------------------------------------------------------------------
def test_every_bundled_language_loads() -> None:
    idx = load_index()
    assert {"en", "es", "fr", "de", "it", "pt", "ca", "gl", "eu"} <= set(idx.languages)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("language: xx\nminor: [ok]\nsexual: {loud: [x]}\n", "unknown tier"),
        ("language: xx\nsexual: [nu*]\n", "prefix terms"),
        ("language: xx\nsexual: ['']\n", "non-empty"),
        ("language: xx\nnumbers: {one: uno}\n", "integer"),
        ("[not, a, mapping]\n", "mapping"),
        ("language: xx\nsexual: [a, b\n", "not valid YAML"),
    ],
)
def test_bad_lexicon_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "xx.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_index([path])


def test_a_custom_lexicon_is_used(tmp_path: Path) -> None:
    path = tmp_path / "xx.yaml"
    path.write_text("language: xx\nstopwords: [zo]\nminor: [vauk]\nsexual: [plim]\n", "utf-8")
    r = PromptReader(load_index([path])).read("zo vauk plim")
    assert {"minor", "sexual"} <= set(kinds(r))
    assert r.language == "xx"


def test_split_verbs_are_read_as_undressing(reader: PromptReader) -> None:
    r = reader.read("zieh das kleine Mädchen aus")
    assert {"undress", "minor"} <= set(kinds(r))
    assert "undress" not in kinds(reader.read("zieh die Stiefel an und geh hinaus"))


def test_frames_must_be_two_words_under_undress(tmp_path: Path) -> None:
    path = tmp_path / "xx.yaml"
    path.write_text("language: xx\nsexual: [take * off]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="frames"):
        load_index([path])


def test_innocent_objects_close_no_frame(reader: PromptReader) -> None:
    assert "undress" not in kinds(reader.read("Das Kind zieht die Jacke aus"))
    assert "undress" not in kinds(reader.read("Kinder müssen die Schuhe ausziehen"))
    assert "minor" in kinds(reader.read("Kinder in Badehosen am See"))


@pytest.mark.parametrize(
    "text",
    [
        "nudechild",
        "N U D E   C H I L D",
        "nude, c-h-i-l-d!",
        "ɴᴜᴅᴇ child",  # small capitals
        "ⁿᵘᵈᵉ child",  # superscripts
        "n̶u̶d̶e̶ child",  # combining strike-through
        "ņ̷̢ų̸d̴e̵ child",  # zalgo
        "🧒 nude",  # emoji read by name
        "🇳🇺🇩🇪 child",  # regional indicator letters
        "Nude Chıld",  # dotless i
    ],
)
def test_tricks_beyond_the_variant_generator(reader: PromptReader, text: str) -> None:
    assert {"sexual", "minor"} <= set(kinds(reader.read(text)))


def test_ordinary_compounds_are_not_split(reader: PromptReader) -> None:
    for text in ("kidnapped", "understanding", "boyfriend", "assessment", "butterfly"):
        assert kinds(reader.read(text)) == {}, text


def test_obfuscation_counts_rise_with_the_tricks(reader: PromptReader) -> None:
    """The account monitor watches these counts rise to see an account probing the filter."""
    steps = [
        "nude child",
        "n.u.d.e child",
        "n.u.d.e ch1ld",
        "n.u.d.e ch1ld ｎａｋｅｄ",
        "n.u.d.e ch1ld ｎａ\u200bｋｅｄ",
    ]
    totals = [sum(obfuscation(reader.read(t)).values()) for t in steps]
    assert totals[0] == 0
    assert totals == sorted(totals) and len(set(totals)) == len(totals), totals


@pytest.mark.parametrize(
    ("written", "kind", "term"),
    [("n*ked", "sexual", "naked"), ("p**n", "sexual", "porn"), ("*oli", "coded_abuse", "loli")],
)
def test_starred_out_letters_are_read(
    reader: PromptReader, written: str, kind: str, term: str
) -> None:
    reading = reader.read(f"a {written} picture")
    assert term in terms(reading, kind)
    assert reading.edits["mask"] == 1


def test_stars_that_hide_no_signal_word_stay_quiet(reader: PromptReader) -> None:
    reading = reader.read("rate this cake 5* and my b*rthday party")
    assert not reading.signals


# --- the index's precomputed tables answer as the plain searches they replace ---------------
def test_index_tables_agree_with_the_reference_searches() -> None:
    """``transposed`` (one swapped pair), ``prefix_heads`` (prefix terms) and
    ``phrase_prefixes`` (phrases) are built once so the reader does one look-up per word;
    each must answer exactly as the search it replaces, on every swap of every lexicon word
    and on random strings."""
    import random
    import string

    from tutela.text.lexicon import default_index
    from tutela.text.reader import _transposed

    idx = default_index()

    def prefix_reference(text: str) -> object:
        hit = idx.words.get(text)
        if hit is not None:
            return hit
        for k in idx.prefix_lengths:
            if len(text) > k and (hit := idx.prefixes.get(text[:k])) is not None:
                return hit
        return None

    rng = random.Random(3)
    words = set(idx.words) | set(idx.prefixes) | set(idx.vocabulary)
    texts = set(words)
    for w in words:
        texts.update(w[:j] + w[j + 1] + w[j] + w[j + 2 :] for j in range(len(w) - 1))
        texts.update(w + suffix for suffix in ("s", "ed", "ing", "x"))
    texts.update(
        "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 16)))
        for _ in range(20_000)
    )
    for text in texts:
        assert idx.transposed.get(text) is _transposed(idx, text), text
        assert idx.lookup_word(text) is prefix_reference(text), text
    for phrase in idx.phrases:
        parts = phrase.split()
        assert all(" ".join(parts[:k]) in idx.phrase_prefixes for k in range(2, len(parts) + 1))
