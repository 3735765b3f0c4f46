"""The accounts area's pure rules: fingerprints, the indexes, probing, the ladder, the policy.

No database here: these are values in, values out, which is why the rules live apart from the
monitor. Prompts are short, non-graphic filter test strings.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tutela.accounts.fingerprint import (
    Fingerprint,
    LinearIndex,
    LshIndex,
    fingerprint,
    similarity,
)
from tutela.accounts.ladder import Events, escalate, find_probe
from tutela.accounts.policy import AccountsPolicy, Probing
from tutela.accounts.state import AccountState, Attempt
from tutela.accounts.tiers import AgeTier, meets
from tutela.decision import AccountAction, Verdict
from tutela.errors import ConfigError
from tutela.policy import Policy

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULES = AccountsPolicy()


# --- fingerprints ------------------------------------------------------------------------
def test_identical_text_is_similarity_one_and_round_trips_through_bytes() -> None:
    a = fingerprint("a watercolour of a lighthouse at dawn")
    b = Fingerprint.from_bytes(a.to_bytes(), a.size, a.digest)
    assert similarity(a, b) == 1.0
    assert len(a.to_bytes()) == 256


def test_reworded_text_is_near_and_unrelated_text_is_far() -> None:
    base = fingerprint("a watercolour of a lighthouse at dawn over a calm sea")
    reworded = fingerprint("a watercolor painting of a lighthouse at dawn over the calm sea")
    other = fingerprint("portrait of an old fisherman mending nets in the rain")
    assert similarity(base, reworded) > 0.5
    assert similarity(base, other) < 0.2


def test_containment_catches_padding_but_not_tiny_prompts() -> None:
    core = fingerprint("a lighthouse at dawn over a calm sea")
    padded = fingerprint(
        "a lighthouse at dawn over a calm sea, trending on artstation, highly detailed, 8k, "
        "octane render, dramatic lighting, masterpiece, award winning photograph"
    )
    assert similarity(core, padded) >= 0.6  # Jaccard alone would be far lower
    tiny = fingerprint("a sea")
    assert similarity(tiny, padded) < 0.5


def test_fingerprint_rejects_wrong_length_bytes() -> None:
    with pytest.raises(ValueError):
        Fingerprint.from_bytes(b"\x00" * 10, 3)


def test_lsh_index_finds_what_the_linear_oracle_finds() -> None:
    rng = random.Random(7)
    words = [
        *("lighthouse", "dawn", "sea", "calm", "storm", "boat", "harbour", "city", "street"),
        *("night", "rain", "cat", "dog", "park", "mountain", "lake", "forest", "watercolour"),
        *("oil", "painting", "photo", "portrait", "sunset", "bridge", "castle"),
    ]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) for _ in range(300)]
    lsh, linear = LshIndex(), LinearIndex()
    fps = [fingerprint(t) for t in texts]
    for i, fp in enumerate(fps):
        lsh.add(i, fp, f"acct-{i % 5}")
        linear.add(i, fp, f"acct-{i % 5}")
    misses = total = 0
    for t in texts[:60]:
        words_t = t.split()
        rng.shuffle(words_t)
        q = fingerprint(" ".join(words_t[:-1]) if len(words_t) > 4 else t)
        want = {h.key: h.similarity for h in linear.near(q, 0.6, limit=1000)}
        got = {h.key: h.similarity for h in lsh.near(q, 0.6, limit=1000)}
        assert got.keys() <= want.keys()  # LSH only proposes; hits are scored like the oracle
        assert all(abs(got[k] - want[k]) < 1e-9 for k in got)
        misses += len(want.keys() - got.keys())
        total += len(want)
    assert total > 0 and misses / total < 0.1
    assert len(lsh) == len(linear) == 300
    for t in texts[:40]:  # "has this owner a near-identical entry?": exactly the oracle's answer
        q = fingerprint(t)
        for owner in ("acct-0", "acct-3", "nobody"):
            assert lsh.has_near(q, owner, 0.95) == linear.has_near(q, owner, 0.95)


def _datasketch_minhash(text: str) -> np.ndarray:
    """The oracle: a datasketch MinHash built afresh for ``text`` alone."""
    import zlib

    from datasketch import MinHash

    from tutela.accounts.fingerprint import NUM_PERM, shingles

    mh = MinHash(num_perm=NUM_PERM, seed=20240611, hashfunc=zlib.crc32, scheme="affine32")
    mh.update_batch(list(shingles(" ".join(text.split()))))
    return mh.hashvalues


def _oracle_texts() -> list[str]:
    rng = random.Random(5)
    alphabet = "abcdefghijklmnopqrstuvwxyz      0123456789,.-éßж漢"
    texts = ["a watercolour of a lighthouse at dawn", "x", "", "abcd", "abcde",
             "naked child on a beach",
             "portrait of an old fisherman, oil painting " * 5]  # fmt: skip
    return texts + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
                    for _ in range(300)]  # fmt: skip


def test_fingerprint_is_datasketchs_minhash_bit_for_bit() -> None:
    """The fingerprint computes datasketch's affine32 MinHash itself (fewer NumPy calls):
    each one must equal, bit for bit, a datasketch MinHash built afresh for that prompt alone
    (stored fingerprints are compared with new ones), in any order and in any thread, on
    short, long, empty and non-ASCII texts."""
    import threading

    texts = _oracle_texts()
    for text in texts + texts[::-1]:
        fp = fingerprint(text)
        want = _datasketch_minhash(text)
        assert fp.hashvalues.dtype == np.uint32
        assert np.array_equal(fp.hashvalues, want)
        assert fp.to_bytes() == want.astype("<u4").tobytes()
    seen: list[bool] = []
    worker = threading.Thread(
        target=lambda: seen.extend(
            np.array_equal(fingerprint(t).hashvalues, _datasketch_minhash(t)) for t in texts[:20]
        )
    )
    worker.start()
    worker.join()
    assert seen == [True] * 20


def test_fingerprints_of_a_batch_are_each_prompts_own() -> None:
    """A batch's fingerprints, computed together, are each prompt's own: the oracle's
    signature, the same size and digest as alone, for batches of one, two and many, with
    one-shingle texts among them."""
    from tutela.accounts.fingerprint import fingerprints

    texts = _oracle_texts()[:60]
    assert fingerprints([]) == []
    for batch in ([texts[1]], texts[:2], texts[1:5], texts):
        together = fingerprints(batch)
        assert len(together) == len(batch)
        for text, fp in zip(batch, together, strict=True):
            alone = fingerprint(text)
            assert np.array_equal(fp.hashvalues, _datasketch_minhash(text))
            assert (fp.size, fp.digest, fp.to_bytes()) == (alone.size, alone.digest,
                                                          alone.to_bytes())


def test_fingerprint_remembered_shingle_hashes_are_bounded_and_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shingles' input hashes are remembered (a prompt's shingles are nearly all seen
    before); the memory starts afresh past its bound, and a fingerprint is the oracle's
    whether its shingles were all new, all remembered, or some of each."""
    from tutela.accounts import fingerprint as fp_module

    monkeypatch.setattr(fp_module, "_MIXED", {})
    monkeypatch.setattr(fp_module, "_MIXED_MAX", 64)
    texts = _oracle_texts()
    biggest = 0
    for text in texts + texts[:50]:  # new, then partly remembered, then remembered
        assert np.array_equal(fingerprint(text).hashvalues, _datasketch_minhash(text))
        biggest = max(biggest, len(fp_module._MIXED))
    # never more than the bound plus the shingles of the one prompt that crossed it
    assert 64 < biggest <= 64 + max(len(fp_module.shingles(t)) for t in texts)
    long_text = "portrait of an old fisherman, oil painting " * 5
    fingerprint(long_text)
    assert set(fp_module.shingles(long_text)) <= fp_module._MIXED.keys()


def test_lsh_scores_few_and_many_candidates_alike() -> None:
    """A few candidates are scored one by one, many at once: both give :func:`similarity`."""
    texts = [f"a watercolour of a harbour with {n} boats at dawn, oil on canvas" for n in range(20)]
    texts += ["short", "a lighthouse", "naked child on a beach"]
    index = LshIndex()
    fps = [fingerprint(t) for t in texts]
    for i, fp in enumerate(fps):
        index.add(i, fp, None)
    q = fingerprint("a watercolour of a harbour with boats at dawn")
    for rows in ([0], [0, 21, 22], list(range(8)), list(range(len(texts)))):
        got = index._scores(np.asarray(rows, dtype=np.int64), q)
        want = [similarity(q, fps[r]) for r in rows]
        assert np.allclose(got, want, atol=1e-12), rows


def test_own_entry_found_behind_many_identical_entries_of_others() -> None:
    """A popular blocked prompt: more identical entries of other accounts than a near()
    search returns must not hide the account's own (it would be indexed again each time)."""
    fp = fingerprint("a short blocked filter test string")
    for index in (LshIndex(), LinearIndex()):
        for i in range(40):
            index.add(i, fp, f"other-{i}")
        index.add(40, fp, "me")
        assert len(index.near(fp, 0.95)) == 32  # a search is cut at the best 32 of 41
        assert index.has_near(fp, "me", 0.95)
        assert not index.has_near(fp, "someone-else", 0.95)
        assert not index.has_near(fingerprint("an unrelated watercolour of a harbour"), "me", 0.95)


# --- probing ---------------------------------------------------------------------------
def _attempt(text: str, minutes: float, verdict: Verdict = Verdict.BLOCK, lang: str = "en",
             obf: int = 0) -> Attempt:  # fmt: skip
    return Attempt(
        at=T0 + timedelta(minutes=minutes),
        verdict=verdict.value,
        content_verdict=verdict.value,
        blocked_category="sexual_minors" if verdict is Verdict.BLOCK else None,
        language=lang,
        obfuscation=obf,
        fingerprint=fingerprint(text),
    )


BLOCKED_TEXT = "naked child on a beach at sunset"


def test_honest_rewording_after_a_false_block_is_not_a_probe() -> None:
    recent = [_attempt(BLOCKED_TEXT, 0)]
    f = find_probe(
        fingerprint("child on a beach at sunset"), Verdict.ALLOW, "en", 0, recent,
        T0 + timedelta(minutes=1), Probing(),
    )  # fmt: skip
    assert f.similarity >= 0.5 and not f.probe
    assert f.signs == ("near_duplicate",)


@pytest.mark.parametrize(
    ("verdict", "lang", "obf", "sign"),
    [
        (Verdict.BLOCK, "en", 0, "blocked_again"),
        (Verdict.ALLOW, "en", 3, "more_obfuscation"),
        (Verdict.ALLOW, "es", 0, "language_switch"),
    ],
)
def test_near_duplicate_with_a_second_sign_is_a_probe(
    verdict: Verdict, lang: str, obf: int, sign: str
) -> None:
    recent = [_attempt(BLOCKED_TEXT, 0)]
    f = find_probe(
        fingerprint("naked child on the beach at sunset"), verdict, lang, obf, recent,
        T0 + timedelta(minutes=2), Probing(),
    )  # fmt: skip
    assert f.probe and sign in f.signs


def test_attempts_outside_the_window_or_without_a_block_are_not_probes() -> None:
    late = find_probe(
        fingerprint(BLOCKED_TEXT), Verdict.BLOCK, "en", 0, [_attempt(BLOCKED_TEXT, 0)],
        T0 + timedelta(minutes=61), Probing(window_minutes=60),
    )  # fmt: skip
    assert not late.probe
    none = find_probe(
        fingerprint(BLOCKED_TEXT), Verdict.BLOCK, "en", 0,
        [_attempt(BLOCKED_TEXT, 0, Verdict.ALLOW)], T0 + timedelta(minutes=1), Probing(),
    )  # fmt: skip
    assert not none.probe


def test_unrelated_attempt_in_another_language_is_a_probe_only_if_blocked() -> None:
    recent = [_attempt(BLOCKED_TEXT, 0)]
    at = T0 + timedelta(minutes=1)
    other = fingerprint("un faro al amanecer sobre el mar")
    assert not find_probe(other, Verdict.ALLOW, "es", 0, recent, at, Probing()).probe
    assert find_probe(other, Verdict.BLOCK, "es", 0, recent, at, Probing()).probe


# --- the ladder --------------------------------------------------------------------------
def _blocks(*minutes: float) -> dict[str, list[datetime]]:
    return {"sexual_minors": [T0 + timedelta(minutes=m) for m in minutes]}


def test_default_ladder_warn_cooldown_suspend() -> None:
    st = AccountState(id="a")
    ev = Events(blocked_category="sexual_minors")
    first = escalate(st, ev, _blocks(0), RULES.escalation, T0)
    assert first.action is AccountAction.WARN and not first.report
    assert first.until == T0 + timedelta(hours=24)
    st = AccountState(id="a", action=AccountAction.WARN, action_until=first.until)
    at2 = T0 + timedelta(hours=2)
    second = escalate(st, ev, _blocks(0, 120), RULES.escalation, at2)
    assert second.action is AccountAction.COOLDOWN and second.until == at2 + timedelta(hours=1)
    st = AccountState(id="a", action=AccountAction.COOLDOWN, action_until=second.until)
    at3 = T0 + timedelta(hours=5)
    third = escalate(st, ev, _blocks(0, 120, 300), RULES.escalation, at3)
    assert third.action is AccountAction.SUSPEND and third.report and third.until is None


def test_second_block_after_a_day_is_only_a_warning() -> None:
    at = T0 + timedelta(hours=25)
    esc = escalate(
        AccountState(id="a"), Events(blocked_category="sexual_minors"),
        _blocks(0, 25 * 60), RULES.escalation, at,
    )  # fmt: skip
    assert esc.action is AccountAction.WARN


def test_probing_steps_up_and_coded_abuse_suspends_with_report() -> None:
    st = AccountState(id="a")
    assert escalate(st, Events(probing=True), {}, RULES.escalation, T0).action is (
        AccountAction.STEP_UP
    )
    coded = escalate(st, Events(coded_abuse=True), {}, RULES.escalation, T0)
    assert coded.action is AccountAction.SUSPEND and coded.report


def test_a_milder_rung_never_lowers_the_action_in_force() -> None:
    st = AccountState(id="a", action=AccountAction.STEP_UP, action_since=T0)
    esc = escalate(st, Events(blocked_category="sexual_minors"), _blocks(0), RULES.escalation, T0)
    assert esc.action is AccountAction.STEP_UP


def test_timed_actions_lapse() -> None:
    st = AccountState(id="a", action=AccountAction.COOLDOWN, action_until=T0 + timedelta(hours=1))
    assert st.action_in_force(T0) is AccountAction.COOLDOWN
    assert st.action_in_force(T0 + timedelta(hours=1)) is AccountAction.NONE


def test_risk_decays_by_half_life_and_combines() -> None:
    st = AccountState(id="a").with_risk(T0, 24, 0.5)
    assert st.risk == pytest.approx(0.5)
    assert st.risk_at_time(T0 + timedelta(hours=24), 24) == pytest.approx(0.25)
    again = st.with_risk(T0, 24, 0.5)
    assert again.risk == pytest.approx(0.75)


# --- tiers and policy --------------------------------------------------------------------
def test_tier_order_and_minor() -> None:
    assert meets(AgeTier.VERIFIED_ADULT, AgeTier.ESTIMATED)
    assert not meets(AgeTier.SELF_DECLARED, AgeTier.VERIFIED_ADULT)
    assert meets(AgeTier.MINOR, AgeTier.UNKNOWN)
    assert not meets(AgeTier.MINOR, AgeTier.SELF_DECLARED)


def test_default_policy_has_the_issue_defaults() -> None:
    acc = Policy.load().accounts
    aa = acc.age_assurance
    assert aa.minimum_tier("edit_real_person", None) is AgeTier.VERIFIED_ADULT
    assert aa.minimum_tier("text_to_image", None) is AgeTier.UNKNOWN
    assert aa.minimum_age("ES") == 16
    assert [r.action for r in acc.escalation] == [
        AccountAction.WARN, AccountAction.COOLDOWN, AccountAction.STEP_UP,
        AccountAction.SUSPEND, AccountAction.SUSPEND,
    ]  # fmt: skip
    assert acc.risk.band(0.0) is None and acc.risk.band(0.7).name == "high"


@pytest.mark.parametrize(
    "section",
    [
        "escalation: [{when: blocks, action: warn}]",  # warn needs a duration
        "escalation: [{when: sometimes, action: suspend}]",
        "age_assurance: {jurisdictions: {spain: {minimum_generation_age: 16}}}",
        "age_assurance: {step_up_requires: unknown}",
        "risk: {bands: [{name: x, min_risk: 0.2, thresholds: {block: 0.3, review: 0.5}}]}",
        "surprise: 1",
    ],
)
def test_invalid_accounts_sections_are_refused(tmp_path, section: str) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "p.yaml"
    f.write_text("accounts:\n  " + section + "\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        Policy.load(f)


def test_platform_can_demand_verified_adult_per_jurisdiction(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "p.yaml"
    f.write_text(
        "accounts:\n  age_assurance:\n    jurisdictions:\n"
        "      GB: {features: {image_of_person: verified_adult}, minimum_generation_age: 18}\n",
        encoding="utf-8",
    )
    aa = Policy.load(f).accounts.age_assurance
    assert aa.minimum_tier("image_of_person", "GB") is AgeTier.VERIFIED_ADULT
    assert aa.minimum_tier("image_of_person", "FR") is AgeTier.UNKNOWN
    assert aa.minimum_age("GB") == 18 and aa.minimum_age(None) == 16
