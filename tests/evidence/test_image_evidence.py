"""Blocked images of the gravest categories are sealed in the vault by the Guard's flows.

The block comes from a real hash-bank match on a benign sample image standing in for a
known list entry (no sexual imagery anywhere), so decoding, hashing, matching, judging,
recording and sealing are all real.
"""

from __future__ import annotations

from pathlib import Path

from imagesamples import drawn, encode, sample

from tutela import Guard
from tutela.decision import Verdict
from tutela.hashes.repository import BankRepository
from tutela.image.pdq import hash_image


def _guard_with_known_image(tmp_path: Path) -> tuple[Guard, bytes]:
    guard = Guard.open(data_dir=tmp_path / "data")
    banks = BankRepository(guard.store)
    banks.create_bank("known-list", "block")
    known = sample("astronaut")
    banks.add_entry("known-list", hash_image(known).hash, ref="case-1")
    return guard, encode(known, "JPEG", quality=90)


def test_a_blocked_upload_is_sealed_byte_for_byte(tmp_path: Path) -> None:
    guard, data = _guard_with_known_image(tmp_path)
    decision = guard.check_upload(data, account="acct-9")
    assert decision.verdict is Verdict.BLOCK and decision.top_category() == "sexual_minors"
    vault = guard.audit.evidence.vault
    (item,) = vault.items(decision_id=decision.id)
    assert item.content_kind == "image" and item.media_type == "image/jpeg"
    assert item.meta["generated"] is False
    assert vault.open(item.id, actor="rev", reason="review") == data
    kinds = [e.kind for e in guard.audit.evidence.log.entries()]
    assert kinds[:2] == ["decision", "evidence.store"]


def test_a_blocked_output_is_sealed_as_generated_and_an_allowed_one_is_not(
    tmp_path: Path,
) -> None:
    guard, data = _guard_with_known_image(tmp_path)
    blocked = guard.check_output(data, account="acct-9", prompt="a portrait")
    assert blocked.decision.verdict is Verdict.BLOCK
    items = guard.audit.evidence.vault.items(decision_id=blocked.decision.id)
    by_kind = {i.content_kind: i for i in items}
    assert sorted(by_kind) == ["image", "prompt"]  # the prompt that produced it is kept too
    assert by_kind["image"].meta["generated"] is True
    allowed = guard.check_upload(encode(drawn(2, (200, 150)), "PNG"), account="acct-9")
    assert allowed.verdict is Verdict.ALLOW
    assert guard.audit.evidence.vault.items(decision_id=allowed.id) == []
    assert guard.audit.evidence.log.verify().ok
