"""The audit entry's canonical bytes do not depend on which encoder wrote them.

``encode_entry`` takes orjson's bytes where they are known to equal json's and asks json
otherwise (evidence/log.py, ``_canonical``); ``encode_entry_json`` is the canonical form's
definition (json alone, as every existing entry was written). Any difference would make
existing logs fail verification, so the two are compared on every code point, on the
float and integer edges, on generated documents and on the decisions of the prompt corpus.
"""

from __future__ import annotations

import json
import math
import random
import struct
import uuid
from datetime import UTC, datetime
from enum import Enum, IntEnum, StrEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutela import Guard
from tutela.evidence import merkle
from tutela.evidence.log import encode_entry, encode_entry_json

AT = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def same(data: Any, *, actor: str | None = "tutela", subject: str | None = "s") -> bytes:
    """The entry for ``data`` by both encoders, asserted equal (bytes and leaf hash)."""
    fast = encode_entry(7, "decision", AT, actor, subject, data)
    reference = encode_entry_json(7, "decision", AT, actor, subject, data)
    assert fast == reference
    assert merkle.leaf_hash(fast) == merkle.leaf_hash(reference)
    return fast


def test_every_code_point_in_values_and_keys() -> None:
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(points), 4096):
        chunk = points[start : start + 4096]
        same({"s": "".join(chunk), "each": chunk, **{f"k{c}": 1 for c in chunk[:64]}})


def test_floats_on_and_off_the_edges() -> None:
    edges = [0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e-5, 5e-324, 2.2250738585072014e-308,
             0.1, 0.9, 1.0, 1e15, 1e16, 1e22, 9007199254740993.0, 1.7976931348623157e308,
             math.nan, math.inf, -math.inf]  # fmt: skip
    for x in edges:
        same({"score": x, "neg": -x})
    rng = random.Random(20261123)
    for _ in range(50_000):
        bits = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        scaled = rng.random() * 10.0 ** rng.randrange(-30, 30)
        same({"a": bits, "b": scaled, "c": round(scaled, rng.randrange(8))})


def test_integers_to_64_bits_and_beyond() -> None:
    for k in range(70):
        for v in (2**k, 2**k - 1, -(2**k), 1 - 2**k):
            same({"n": v, "list": [v, True, False]})


def test_what_json_refuses_is_still_refused_and_subclasses_keep_json_bytes() -> None:
    class Kind(StrEnum):
        PROMPT = "prompt"

    class Level(IntEnum):
        HIGH = 3

    same({"kind": Kind.PROMPT, Kind.PROMPT: Level.HIGH, "t": (1, 2)})
    same({"ints": {1: "a", 10: "b", 9: "c"}, "none": {None: 1}, "float": {0.5: 2}})
    for bad in ({"at": AT}, {"mixed": {1: "a", "b": 2}}, {"set": {1}}):
        with pytest.raises(TypeError):
            encode_entry_json(0, "x", AT, None, None, bad)
        with pytest.raises(TypeError):
            encode_entry(0, "x", AT, None, None, bad)
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate: not UTF-8, as before
        encode_entry(0, "x", AT, None, None, {"s": "\ud800"})


def test_the_one_widening_still_verifies() -> None:
    """An enum without str/int and a UUID: json raises, orjson writes the value (unless
    something else in the document sends it to json, which raises as before). The entry
    then re-encodes to the same bytes from its parsed form, as verify() does."""

    class Colour(Enum):
        RED = "red"

    u = uuid.UUID(int=7)
    entry = encode_entry(1, "admin", AT, "op", "s", {"c": Colour.RED, "u": u})
    data = json.loads(entry)["data"]
    assert data == {"c": "red", "u": str(u)}
    assert encode_entry(1, "admin", AT, "op", "s", data) == entry
    assert encode_entry_json(1, "admin", AT, "op", "s", data) == entry
    with pytest.raises(TypeError):
        encode_entry(1, "admin", AT, "op", None, {"c": Colour.RED})


_scalars = (
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=True, allow_infinity=True)
)  # fmt: skip
_documents = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children,
                                                                      max_size=5),
    max_leaves=40,
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(data=st.dictionaries(st.text(), _documents, max_size=6),
       actor=st.none() | st.text(), subject=st.none() | st.text())  # fmt: skip
def test_generated_documents(data: dict[str, Any], actor: str | None, subject: str | None) -> None:
    try:
        reference = encode_entry_json(3, "decision", AT, actor, subject, data)
    except UnicodeEncodeError:  # generated text may hold lone surrogates: both refuse
        with pytest.raises(UnicodeEncodeError):
            encode_entry(3, "decision", AT, actor, subject, data)
        return
    assert encode_entry(3, "decision", AT, actor, subject, data) == reference


def test_the_decisions_of_the_prompt_corpus(tmp_path: Path) -> None:
    """Real decisions (every language of the corpus, allowed and blocked, with and without
    an account) and the vault's custody entries: the same bytes either way."""
    guard = Guard.open(data_dir=tmp_path)
    prompts = [json.loads(line)["text"] for line in
               (REPO / "corpus/prompts.jsonl").read_text("utf-8").splitlines() if line]  # fmt: skip
    assert len(prompts) > 500
    for i, text in enumerate(prompts):
        decision = guard.check_prompt(text, account=f"acct-{i % 7}" if i % 3 else None)
        same(decision.to_dict(), subject=decision.id)
    log = guard.audit.evidence.log
    entries = list(log.entries())
    assert len(entries) > len(prompts)  # the decisions and the sealed prompts' custody
    for e in entries:
        assert encode_entry_json(e.seq, e.kind, e.at, e.actor, e.subject, e.data) == e.entry
    assert log.verify().ok


def test_the_fast_path_is_on_with_the_installed_orjson() -> None:
    """The import-time check found the installed orjson writing canonical bytes, so the
    comparisons above exercised it (were it off, every entry would be json's)."""
    from tutela.evidence import log

    assert log._ORJSON_AGREES


def test_remembered_time_texts_are_isoformat_in_every_zone() -> None:
    """decision.isoformat (used for the leaf's ``at`` and the decision's ``created_at``)
    keeps equal instants in different zones, and naive times, apart."""
    from datetime import timedelta, timezone

    from tutela.decision import isoformat

    plus2 = timezone(timedelta(hours=2), "CEST")
    utc_named = timezone(timedelta(0), "Z")
    base = datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC)
    values = [base, base.astimezone(plus2), base.replace(tzinfo=utc_named),
              base.replace(tzinfo=None), base.replace(microsecond=0),
              base.replace(tzinfo=plus2)]  # fmt: skip
    for _ in range(2):  # the second round reads what the first remembered
        for v in values:
            assert isoformat(v) == v.isoformat()
    for i in range(600):  # past the cache's bound
        v = base + timedelta(microseconds=i)
        assert isoformat(v) == v.isoformat()
