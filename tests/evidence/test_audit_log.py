"""The audit log: appends, signed checkpoints, proofs, and verification that catches edits."""

from __future__ import annotations

import json
from types import ModuleType

import pytest
from sqlalchemy import text

from tutela import Guard
from tutela.decision import CheckKind, Decision, Signal, Verdict
from tutela.errors import InputError
from tutela.evidence import merkle
from tutela.evidence.service import Evidence
from tutela.evidence.signing import CheckpointSigner


def _decision(i: int, verdict: Verdict = Verdict.BLOCK) -> Decision:
    return Decision(
        verdict=verdict,
        categories={"sexual_minors": 0.9} if verdict is Verdict.BLOCK else {},
        reasons=[f"reason {i}"],
        signals=[Signal("lexicon", "minor", 0.9, {"terms": ["t"]})],
        kind=CheckKind.PROMPT,
        account=f"acct-{i}",
    )


def _fill(ev: Evidence, n: int = 10) -> None:
    for i in range(n):
        if i % 3 == 2:
            ev.log.record_review(f"dec-{i - 1}", "rev@example.org", "overturn", note="benign")
        else:
            ev.log.record_decision(_decision(i))


def _set(ev: Evidence, seq: int, column: str, value: object) -> None:
    with ev.store.engine.begin() as conn:
        conn.execute(
            text(f"UPDATE audit_log SET {column} = :v WHERE seq = :s"), {"v": value, "s": seq}
        )


def _get(ev: Evidence, seq: int, column: str) -> object:
    with ev.store.engine.connect() as conn:
        return conn.execute(
            text(f"SELECT {column} FROM audit_log WHERE seq = :s"), {"s": seq}
        ).scalar_one()


def test_a_fresh_log_verifies_and_checkpoints_at_the_interval(evidence: Evidence) -> None:
    _fill(evidence, 10)
    result = evidence.log.verify()
    assert result.ok, result.problems
    assert result.entries == 10
    assert [c.tree_size for c in evidence.log.checkpoints()] == [4, 8]
    assert evidence.log.root() == merkle.root(evidence.log.leaf_hashes())


def test_verify_names_the_entry_for_every_single_changed_byte(evidence: Evidence) -> None:
    """The issue's target: flip each byte of a stored entry, in turn; each flip is caught."""
    _fill(evidence, 10)
    sample = 5
    original = bytes(_get(evidence, sample, "entry"))  # type: ignore[arg-type]
    for i in range(len(original)):
        for flip in (0x01, 0x80):
            tampered = bytearray(original)
            tampered[i] ^= flip
            _set(evidence, sample, "entry", bytes(tampered))
            result = evidence.log.verify()
            assert not result.ok and result.first_bad == sample, (i, flip, result.problems)
    _set(evidence, sample, "entry", original)
    leaf = bytes(_get(evidence, sample, "leaf_hash"))  # type: ignore[arg-type]
    for i in range(len(leaf)):
        tampered = bytearray(leaf)
        tampered[i] ^= 0x01
        _set(evidence, sample, "leaf_hash", bytes(tampered))
        assert evidence.log.verify().first_bad == sample
    _set(evidence, sample, "leaf_hash", leaf)
    assert evidence.log.verify().ok


@pytest.mark.parametrize(
    ("column", "value"), [("kind", "admin"), ("subject", "dec-x"), ("actor", "mallory")]
)
def test_verify_catches_edited_index_columns(evidence: Evidence, column: str, value: str) -> None:
    _fill(evidence, 6)
    _set(evidence, 3, column, value)
    assert evidence.log.verify().first_bad == 3


def test_a_consistent_rewrite_is_caught_by_the_signed_checkpoint(evidence: Evidence) -> None:
    """Whoever rewrites entry and hash together still cannot re-sign the checkpoint."""
    _fill(evidence, 10)
    doc = json.loads(_get(evidence, 2, "entry"))  # type: ignore[arg-type]
    doc["data"]["note"] = "edited"
    forged = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    _set(evidence, 2, "entry", forged)
    _set(evidence, 2, "leaf_hash", merkle.leaf_hash(forged))
    result = evidence.log.verify()
    assert not result.ok
    assert any("checkpoint 4: root mismatch" in p for p in result.problems)


def test_removed_entries_and_forged_signatures_are_caught(evidence: Evidence) -> None:
    _fill(evidence, 10)
    with evidence.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    result = evidence.log.verify()
    assert result.first_bad == 3 and "missing" in result.problems[0]


def test_truncation_below_a_checkpoint_and_bad_signatures(evidence: Evidence) -> None:
    _fill(evidence, 10)
    with evidence.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 6"))
        conn.execute(
            text("UPDATE audit_checkpoint SET signature = :z WHERE tree_size = 4"),
            {"z": b"\x00" * 64},
        )
    problems = evidence.log.verify().problems
    assert any("checkpoint 8: the log has only 6" in p for p in problems)
    assert any("checkpoint 4: bad signature" in p for p in problems)


def test_inclusion_proofs_pass_the_standalone_verifier(
    evidence: Evidence, proof_verifier: ModuleType
) -> None:
    _fill(evidence, 11)
    public_key = evidence.log.signer.public_key_raw  # type: ignore[union-attr]
    for seq in range(11):
        proof = json.loads(json.dumps(evidence.log.inclusion_proof(seq)))
        assert proof_verifier.verify(proof, public_key) == "", seq
    # the proof for entry 10 needed a new checkpoint over all 11 entries
    assert evidence.log.latest_checkpoint().tree_size == 11  # type: ignore[union-attr]
    proof = evidence.log.inclusion_proof(7)
    bad = dict(proof, audit_path=[*proof["audit_path"][:-1], "00" * 32])
    assert "audit path" in proof_verifier.verify(bad, public_key)
    other = CheckpointSigner.generate().public_key_raw
    assert "signature" in proof_verifier.verify(proof, other)
    forged_entry = dict(proof, entry=proof["entry"][:-4] + "AAAA")
    assert proof_verifier.verify(forged_entry, public_key) != ""


def test_consistency_proofs_between_checkpoints(evidence: Evidence) -> None:
    _fill(evidence, 9)
    p = evidence.log.consistency_proof(4, 9)
    assert merkle.verify_consistency(
        4,
        9,
        bytes.fromhex(p["old_root"]),
        bytes.fromhex(p["new_root"]),
        [bytes.fromhex(h) for h in p["proof"]],
    )


def test_the_guard_logs_every_decision_and_preserves_blocked_minor_prompts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    guard = Guard.open(data_dir=tmp_path / "data")
    allowed = guard.check_prompt("a watercolour of a lighthouse", account="a1")
    blocked = guard.check_prompt("nude child", account="a2")
    assert blocked.verdict is Verdict.BLOCK and "sexual_minors" in blocked.categories
    ev = guard.audit.evidence
    decided = [e.subject for e in ev.log.entries(kinds=["decision"])]
    assert decided == [allowed.id, blocked.id]
    items = ev.vault.items(decision_id=blocked.id)
    assert [i.content_kind for i in items] == ["prompt"]
    assert ev.vault.items(decision_id=allowed.id) == []
    text_back = ev.vault.open(items[0].id, actor="rev@example.org", reason="review case 1")
    assert text_back == b"nude child"
    assert ev.log.verify().ok


def test_checkpoints_built_from_the_saved_edge_match_a_full_rebuild(evidence: Evidence) -> None:
    _fill(evidence, 21)
    leaves = evidence.log.leaf_hashes()
    for cp in evidence.log.checkpoints():
        assert cp.root_hash == merkle.root(leaves[: cp.tree_size])
    # a corrupt saved edge is not trusted: the next checkpoint rebuilds from the leaves
    with evidence.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_checkpoint SET frontier = :f"), {"f": b"junk"})
    _fill(evidence, 3)
    latest = evidence.log.latest_checkpoint()
    assert latest is not None and latest.tree_size == 24
    assert latest.root_hash == merkle.root(evidence.log.leaf_hashes())
    assert evidence.log.verify().ok


def test_a_rewrite_by_the_key_holder_is_caught_by_a_published_root(evidence: Evidence) -> None:
    """Whoever holds the database and the key can re-sign; a root kept elsewhere still holds."""
    _fill(evidence, 8)
    published = {8: evidence.log.root()}
    assert evidence.log.verify(published).ok
    doc = json.loads(_get(evidence, 1, "entry"))  # type: ignore[arg-type]
    doc["data"]["outcome"] = "confirm"
    forged = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    _set(evidence, 1, "entry", forged)
    _set(evidence, 1, "leaf_hash", merkle.leaf_hash(forged))
    with evidence.store.engine.begin() as conn:  # ...and re-signs every checkpoint
        conn.execute(text("DELETE FROM audit_checkpoint"))
    evidence.log.checkpoint(4)
    evidence.log.checkpoint(8)
    assert evidence.log.verify().ok  # the database alone cannot tell
    problems = evidence.log.verify(published).problems
    assert problems == [
        "known root at size 8: the log no longer produces it (history was rewritten)"
    ]


def test_the_hooks_add_writes_what_append_writes(evidence: Evidence) -> None:
    """add_decision (the decision hook's path, no LogEntry built) and record_decision:
    the same entry bytes for the same decision, at consecutive indexes."""
    log, d = evidence.log, _decision(1)
    with evidence.store.transaction() as session:
        seq = log.add_decision(session, d)
    again = log.record_decision(d)
    assert again.seq == seq + 1
    first = log.get(seq)
    assert first is not None and first.data == again.data == json.loads(
        json.dumps(d.to_dict())
    )
    assert first.entry.replace(b'"seq":%d' % seq, b'"seq":%d' % again.seq) == again.entry
    with pytest.raises(InputError), evidence.store.transaction() as session:
        log.add(session, "", {})
    assert log.verify().ok
