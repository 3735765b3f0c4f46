"""The account monitor in the image flows: the learned prompt bank fed by blocked outputs,
the age rule for editing photos of real people, suspension before any detector runs, and
the account action on every image decision. Detectors play recorded outputs
(tests/image_records.py) on benign drawn images."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from image_records import RecordedFaces, RecordedNudeNet
from imagesamples import drawn, encode
from PIL import Image

from tutela import Guard
from tutela.accounts.state import Verification
from tutela.accounts.tiers import AgeTier
from tutela.decision import AccountAction, Signal, Verdict
from tutela.image.age import FaceAgeDetector
from tutela.image.detectors import ImageDetector
from tutela.image.nudity import NudityDetector

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ADULT_FACE = {"class": "FACE_FEMALE", "score": 0.8, "box": [40, 30, 60, 70]}
ADULT_AGE = {"age": {"value": 33, "confidence": 50}, "face": [40, 30, 100, 100]}
WEAK_NUDITY = [{"class": "BUTTOCKS_EXPOSED", "score": 0.3, "box": [10, 10, 20, 20]}]


def _guard(tmp_path: Path, nudenet: list[dict] | None = None,
           faces: list[dict] | None = None) -> Guard:  # fmt: skip
    guard = Guard.open(data_dir=tmp_path / "data")
    guard.images.use_detectors(
        [
            NudityDetector(RecordedNudeNet(nudenet or [])),
            FaceAgeDetector(RecordedFaces(hint=faces, search=[])),
        ]
    )
    return guard


def test_blocked_output_teaches_the_prompt_bank(tmp_path: Path) -> None:
    guard = _guard(tmp_path, nudenet=WEAK_NUDITY)
    prompt = "a child playing at the beach in the summer, photorealistic"
    assert guard.check_prompt(prompt, account="g1", at=T0).verdict is Verdict.ALLOW
    out = guard.check_output(encode(drawn(5), "PNG"), "g1", prompt=prompt,
                             at=T0 + timedelta(minutes=1))  # fmt: skip
    assert out.decision.verdict is Verdict.BLOCK
    assert out.decision.account_action is AccountAction.WARN  # a strike like a prompt's
    assert out.decision.created_at == T0 + timedelta(minutes=1)
    again = guard.check_prompt(prompt + ", 8k", account="g2", at=T0 + timedelta(minutes=2))
    assert again.verdict is Verdict.BLOCK and "bank_match" in {s.kind for s in again.signals}
    assert guard.accounts.describe("g1", T0 + timedelta(minutes=3))["strikes"] == {
        "sexual_minors": 1
    }


def test_editing_a_real_persons_photo_needs_verified_adult(tmp_path: Path) -> None:
    guard = _guard(tmp_path, nudenet=[ADULT_FACE], faces=[ADULT_AGE])
    photo = encode(drawn(4), "JPEG")
    d = guard.check_edit("add a party hat", photo, "e1", at=T0)
    assert d.verdict is Verdict.BLOCK
    assert any("edit_real_person requires" in r for r in d.reasons)
    guard.accounts.record_verification(
        "e1", Verification(AgeTier.VERIFIED_ADULT, "id_document", T0), T0
    )
    ok = guard.check_edit("add a party hat", photo, "e1", at=T0 + timedelta(minutes=1))
    assert ok.verdict is Verdict.ALLOW and ok.account_action is AccountAction.NONE


class Counting(ImageDetector):
    """A detector that only counts its calls (and finds nothing)."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: Image.Image, prior: Sequence[Signal] = ()) -> list[Signal]:
        self.calls += 1
        return []


def test_suspended_account_images_are_blocked_before_any_detector(tmp_path: Path) -> None:
    """Edits, outputs and uploads of a suspended account: blocked, no model and no prompt
    reader runs, nothing is scored; the image is still hashed (banks are matched)."""
    guard = Guard.open(data_dir=tmp_path / "data")
    counting = Counting()
    guard.images.use_detectors([counting])
    guard.accounts.set_action("s1", AccountAction.SUSPEND, "abuse", "admin", T0)
    image = encode(drawn(4), "PNG")
    decisions = [
        guard.check_edit("add a party hat", image, "s1", at=T0),
        guard.check_output(image, "s1", prompt="a lighthouse at dawn", at=T0).decision,
        guard.check_upload(image, "s1", at=T0),
    ]
    for d in decisions:
        assert d.verdict is Verdict.BLOCK and d.account_action is AccountAction.SUSPEND
        assert any("account suspended (abuse)" in r for r in d.reasons)
        assert d.categories == {} and not d.report
        assert {s.detector for s in d.signals} <= {"pdq"}  # hashed, nothing detected
        assert guard.store.decisions.get(d.id) is not None
    assert counting.calls == 0
    guard.check_upload(image, "other", at=T0)
    assert counting.calls == 1  # the detector works; it was skipped for the suspended one


def test_upload_decisions_carry_the_action_in_force(tmp_path: Path) -> None:
    guard = _guard(tmp_path)
    guard.check_prompt("naked child", account="u1", at=T0)
    d = guard.check_upload(encode(drawn(3), "PNG"), "u1", at=T0 + timedelta(minutes=1))
    assert d.verdict is Verdict.ALLOW and d.account_action is AccountAction.WARN


def test_suspended_accounts_known_material_is_still_matched_and_reported(tmp_path: Path) -> None:
    """No model runs for a suspended account, but a hash-bank match is found, reported and
    its image sealed: suspension must not hide known material from the reporting path."""
    from imagesamples import sample

    from tutela.hashes.repository import BankRepository
    from tutela.image.pdq import hash_image

    guard = Guard.open(data_dir=tmp_path / "data")
    counting = Counting()
    guard.images.use_detectors([counting])
    banks = BankRepository(guard.store)
    banks.create_bank("known-list", "block")
    known = sample("astronaut")  # a benign image standing in for a known list entry
    banks.add_entry("known-list", hash_image(known).hash, ref="case-1")
    guard.accounts.set_action("s2", AccountAction.SUSPEND, "abuse", "admin", T0)
    d = guard.check_upload(encode(known, "PNG"), "s2", at=T0)
    assert counting.calls == 0
    assert d.verdict is Verdict.BLOCK and d.account_action is AccountAction.SUSPEND
    assert d.top_category() == "sexual_minors" and d.report
    assert any(s.kind == "hash_match" for s in d.signals)
    assert guard.audit.evidence.vault.items(decision_id=d.id)
