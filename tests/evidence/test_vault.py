"""The evidence vault: sealed at rest, opened only with a reason, held, purged, re-wrapped."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text

from tutela.config import Settings
from tutela.decision import CheckKind, Decision, Verdict
from tutela.errors import ConfigError, InputError
from tutela.evidence.keyring import CallbackKeyring, KeyUnavailable, LocalKeyring
from tutela.evidence.service import Evidence
from tutela.evidence.vault import EvidenceCorrupt, EvidenceGone

CONTENT = b"benign bytes standing in for an image " * 20


def _blocked(category: str = "sexual_minors", verdict: Verdict = Verdict.BLOCK) -> Decision:
    return Decision(verdict, {category: 0.9}, ["r"], [], kind=CheckKind.OUTPUT, account="a-1")


def test_only_blocked_gravest_categories_are_kept(evidence: Evidence) -> None:
    v = evidence.vault
    assert v.preserve(_blocked("sexual_adult"), image=CONTENT) == []
    assert v.preserve(_blocked(verdict=Verdict.REVIEW), image=CONTENT) == []
    kept = v.preserve(_blocked("sexualised_real_person"), image=CONTENT, prompt="p")
    assert [(i.category, i.content_kind) for i in kept] == [
        ("sexualised_real_person", "image"),
        ("sexualised_real_person", "prompt"),
    ]
    with pytest.raises(InputError):
        v.store("d", "sexual_adult", "image", CONTENT, "image/png")


def test_the_hooks_prompt_seal_writes_what_preserve_writes(evidence: Evidence) -> None:
    """seal_prompt (the decision hook's path) and preserve(prompt=...): the same row but
    for its own id, key and time, and the same custody leaf."""
    v, d = evidence.vault, _blocked()
    with evidence.store.transaction() as session:
        assert v.seal_prompt(_blocked("sexual_adult"), "p", session=session) is None
        assert v.seal_prompt(d, None, session=session) is None
        sealed = v.seal_prompt(d, "a prompt", session=session)
    assert sealed is not None
    (kept,) = v.preserve(d, prompt="a prompt")
    items = {i.id: i.to_dict() for i in v.items(decision_id=d.id)}
    assert set(items) == {sealed, kept.id}
    assert items[kept.id] == kept.to_dict()
    differ = {"id", "created_at", "hold_until"}
    assert {k: x for k, x in items[sealed].items() if k not in differ} == {
        k: x for k, x in items[kept.id].items() if k not in differ
    }
    assert v.open(sealed, actor="rev", reason="case") == b"a prompt"
    custody = [v.custody(i)[0] for i in (sealed, kept.id)]
    assert [c["kind"] for c in custody] == ["evidence.store"] * 2
    assert custody[0]["data"] == custody[1]["data"]


def test_content_is_encrypted_at_rest_and_opens_only_with_a_reason(evidence: Evidence) -> None:
    (item,) = evidence.vault.preserve(_blocked(), image=CONTENT, image_type="image/png")
    with evidence.store.engine.connect() as conn:
        raw = conn.execute(text("SELECT ciphertext FROM evidence_item")).scalar_one()
    assert CONTENT[:32] not in raw and len(raw) == len(CONTENT) + 16
    for actor, reason in (("", "why"), ("rev", ""), ("rev", "   ")):
        with pytest.raises(InputError):
            evidence.vault.open(item.id, actor=actor, reason=reason)
    assert evidence.vault.open(item.id, actor="rev-1", reason="case review") == CONTENT
    custody = evidence.vault.custody(item.id)
    assert [(c["kind"], c["actor"]) for c in custody] == [
        ("evidence.store", "tutela"),
        ("evidence.access", "rev-1"),
    ]
    assert custody[1]["data"]["reason"] == "case review"


def test_tampered_or_swapped_ciphertext_does_not_open(evidence: Evidence) -> None:
    a, b = (evidence.vault.preserve(_blocked(), image=c)[0] for c in (CONTENT, CONTENT + b"2"))
    with evidence.store.engine.begin() as conn:
        ct = conn.execute(text("SELECT ciphertext FROM evidence_item WHERE id=:i"), {"i": a.id})
        flipped = bytearray(ct.scalar_one())
        flipped[5] ^= 1
        conn.execute(
            text("UPDATE evidence_item SET ciphertext=:c WHERE id=:i"),
            {"c": bytes(flipped), "i": a.id},
        )
        # b's wrapped key moved onto a: bound to b's id, it must not open a
        conn.execute(
            text(
                "UPDATE evidence_item SET wrapped_key=(SELECT wrapped_key FROM evidence_item "
                "WHERE id=:b) WHERE id=:a"
            ),
            {"a": a.id, "b": b.id},
        )
    with pytest.raises((EvidenceCorrupt, KeyUnavailable)):
        evidence.vault.open(a.id, actor="r", reason="x")
    assert evidence.vault.open(b.id, actor="r", reason="x") == CONTENT + b"2"


def test_holds_and_the_purge(settings: Settings) -> None:
    ev = Evidence.open(
        settings.model_copy(update={"evidence_hold_days_by_jurisdiction": {"DE": 730}})
    )
    v = ev.vault
    t0 = datetime.now(UTC)
    plain, us, de, held = (v.preserve(_blocked(), image=CONTENT + bytes([i]))[0] for i in range(4))
    v.mark_reported(us.id, actor="lead", jurisdiction="US", reference="cybertipline:1")
    v.mark_reported(de.id, actor="lead", jurisdiction="de")
    v.set_legal_hold(held.id, actor="counsel", reason="preservation request 2026-17", on=True)
    assert v.purge(actor="ops", at=t0 + timedelta(days=89)) == []
    assert v.purge(actor="ops", at=t0 + timedelta(days=91)) == [plain.id]
    assert v.purge(actor="ops", at=t0 + timedelta(days=366)) == [us.id]
    assert v.purge(actor="ops", at=t0 + timedelta(days=731)) == [de.id]
    assert v.get(held.id).purged_at is None  # a legal hold outlives every period
    gone = v.get(plain.id)
    assert gone.sha256 and gone.purged_at is not None  # hashes and metadata stay
    with pytest.raises(EvidenceGone):
        v.open(plain.id, actor="r", reason="x")
    purges = list(ev.log.entries(kinds=["evidence.purge"]))
    assert [e.subject for e in purges] == [plain.id, us.id, de.id]
    assert ev.log.verify().ok


def test_rotation_and_rewrap(tmp_path: Path) -> None:
    settings = Settings.load(None, data_dir=tmp_path / "d", audit_checkpoint_every=100)
    ev = Evidence.open(settings)  # no configured key: one is generated in the key file
    ring = ev.vault.keys
    assert isinstance(ring, LocalKeyring) and (tmp_path / "d/evidence-keys.json").exists()
    assert oct((tmp_path / "d/evidence-keys.json").stat().st_mode & 0o777) == "0o600"
    old = ev.vault.preserve(_blocked(), image=CONTENT)[0]
    first = ring.current_key_id()
    second = ring.rotate()
    assert second != first
    new = ev.vault.preserve(_blocked(), image=CONTENT + b"n")[0]
    assert (old.key_id, new.key_id) == (first, second)
    reopened = Evidence.open(settings)  # the rotated keyring is read back from its file
    assert reopened.vault.open(old.id, actor="r", reason="x") == CONTENT
    assert reopened.vault.rewrap(actor="ops") == 1
    assert reopened.vault.get(old.id).key_id == second
    assert reopened.vault.open(old.id, actor="r", reason="x") == CONTENT
    assert reopened.vault.rewrap(actor="ops") == 0


def test_a_configured_key_cannot_be_rotated_from_here(evidence: Evidence) -> None:
    with pytest.raises(ConfigError):
        evidence.vault.keys.rotate()  # type: ignore[attr-defined]


def test_a_kms_callback_keyring(settings: Settings) -> None:
    kek = {"kms-1": AESGCM.generate_key(bit_length=256)}
    calls: list[str] = []

    def wrap(dk: bytes, aad: bytes) -> tuple[str, bytes]:
        calls.append("wrap")
        nonce = os.urandom(12)
        return "kms-1", nonce + AESGCM(kek["kms-1"]).encrypt(nonce, dk, aad)

    def unwrap(kid: str, blob: bytes, aad: bytes) -> bytes:
        calls.append("unwrap")
        return AESGCM(kek[kid]).decrypt(blob[:12], blob[12:], aad)

    ev = Evidence.open(settings, keys=CallbackKeyring(lambda: "kms-1", wrap, unwrap))
    (item,) = ev.vault.preserve(_blocked(), image=CONTENT)
    assert ev.vault.open(item.id, actor="r", reason="x") == CONTENT
    assert calls == ["wrap", "unwrap"]
    kek["kms-1"] = AESGCM.generate_key(bit_length=256)  # the KMS lost the key
    with pytest.raises(KeyUnavailable):
        ev.vault.open(item.id, actor="r", reason="x")


def test_a_bad_configured_key_is_a_clear_error(tmp_path: Path) -> None:
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ConfigError):
            Evidence.open(Settings.load(None, data_dir=tmp_path, evidence_key=bad))


def test_workers_starting_together_share_one_generated_key(tmp_path: Path) -> None:
    """Two workers on a fresh data dir must not each generate (and overwrite) a key."""
    import threading

    from tutela.evidence.signing import KEY_FILE_NAME, CheckpointSigner

    rings: list[LocalKeyring] = []
    signers: list[CheckpointSigner] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        rings.append(LocalKeyring.load(tmp_path))
        signers.append(CheckpointSigner.from_file(tmp_path / KEY_FILE_NAME))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.current for r in rings}) == 1
    assert len({r.keys[r.current] for r in rings}) == 1
    assert len({s.public_key_raw for s in signers}) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit-signing-key.pem",
        "evidence-keys.json",
    ]


def test_a_key_rotated_elsewhere_is_picked_up(settings: Settings, tmp_path: Path) -> None:
    plain = Settings.load(None, data_dir=tmp_path / "shared")
    a, b = Evidence.open(plain), Evidence.open(plain)
    b.vault.keys.rotate()  # type: ignore[attr-defined]
    (item,) = b.vault.preserve(_blocked(), image=CONTENT)
    assert a.vault.open(item.id, actor="r", reason="x") == CONTENT
