"""The Guard's image flows end to end: decoding, PDQ, real hash banks, detectors, policy, store.

Detectors play recorded outputs (tests/image_records.py) so the positive paths run without
any real sexual imagery; decoding, hashing, bank matching, judging and recording are real.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from image_records import RecordedFaces, RecordedNudeNet
from imagesamples import drawn, encode, sample
from PIL import Image

from tutela import Guard
from tutela.decision import CheckKind, Signal, Verdict
from tutela.errors import ImageError, PromptError
from tutela.hashes.repository import BankRepository
from tutela.image.age import FaceAgeDetector
from tutela.image.detectors import ImageDetector
from tutela.image.nudity import NudityDetector
from tutela.image.output import OutputResult
from tutela.image.pdq import hash_image

ADULT_FACE = {"class": "FACE_FEMALE", "score": 0.8, "box": [40, 30, 60, 70]}
ADULT_AGE = {"age": {"value": 33, "confidence": 50}, "face": [40, 30, 100, 100]}


def _guard(
    tmp_path: Path, nudenet: list[dict] | None = None, hint_faces: list[dict] | None = None
) -> Guard:
    guard = Guard.open(data_dir=tmp_path / "data")
    guard.images.use_detectors(
        [
            NudityDetector(RecordedNudeNet(nudenet or [])),
            FaceAgeDetector(RecordedFaces(hint=hint_faces, search=[])),
        ]
    )
    return guard


def _stored(guard: Guard, decision_id: str):  # type: ignore[no-untyped-def]
    stored = guard.store.decisions.get(decision_id)
    assert stored is not None, "every image decision is recorded before it is returned"
    return stored


def test_benign_upload_is_allowed_and_recorded_with_its_hash(tmp_path: Path) -> None:
    guard = _guard(tmp_path)
    data = encode(drawn(3, (300, 200)), "PNG")
    decision = guard.check_upload(data, account="acct-1")
    assert decision.verdict is Verdict.ALLOW and decision.kind is CheckKind.UPLOAD
    (pdq,) = [s for s in decision.signals if s.kind == "pdq"]
    assert pdq.evidence["hash"] == hash_image(drawn(3, (300, 200))).hash
    stored = _stored(guard, decision.id)
    assert stored.decision.account == "acct-1" and stored.prompt_text is None


def test_block_bank_match_blocks_and_is_reported_even_rotated(tmp_path: Path) -> None:
    guard = _guard(tmp_path)
    banks = BankRepository(guard.store)
    banks.create_bank("known-list", "block")
    known = sample("astronaut")  # a benign image standing in for a known list entry
    banks.add_entry("known-list", hash_image(known).hash, ref="case-1")
    rotated = known.transpose(Image.Transpose.ROTATE_90)
    decision = guard.check_upload(encode(rotated, "JPEG", quality=90))
    assert decision.verdict is Verdict.BLOCK
    assert decision.top_category() == "sexual_minors"
    assert decision.report is True
    (match,) = [s for s in decision.signals if s.kind == "hash_match"]
    assert match.evidence["bank"] == "known-list" and match.evidence["distance"] <= 31
    assert _stored(guard, decision.id).decision.verdict is Verdict.BLOCK


def test_false_positive_bank_suppresses_the_block(tmp_path: Path) -> None:
    guard = _guard(tmp_path)
    banks = BankRepository(guard.store)
    banks.create_bank("known-list", "block")
    banks.create_bank("overturned", "false_positive")
    image = sample("coffee")
    h = hash_image(image).hash
    banks.add_entry("known-list", h)
    banks.add_entry("overturned", h)
    decision = guard.check_upload(encode(image, "PNG"))
    assert decision.verdict is Verdict.ALLOW
    assert not [s for s in decision.signals if s.kind == "hash_match"]
    assert [s for s in decision.signals if s.kind == "hash_match_suppressed"]


def test_flat_image_is_too_weak_to_match_and_says_so(tmp_path: Path) -> None:
    guard = _guard(tmp_path)
    decision = guard.check_upload(encode(Image.new("RGB", (128, 128), (120, 120, 120)), "PNG"))
    kinds = {s.kind for s in decision.signals}
    assert "hash_quality_low" in kinds
    assert decision.verdict is Verdict.ALLOW


def test_output_for_a_prompt_about_a_child_with_any_nudity_is_blocked(tmp_path: Path) -> None:
    weak = [{"class": "BUTTOCKS_EXPOSED", "score": 0.3, "box": [10, 10, 20, 20]}]
    guard = _guard(tmp_path, nudenet=weak)
    result = guard.check_output(
        encode(drawn(5), "WEBP"), "acct-2", prompt="a child at the beach", generation="gen-42"
    )
    assert isinstance(result, OutputResult)
    assert result.decision.verdict is Verdict.BLOCK
    assert result.decision.top_category() == "sexual_minors"
    assert result.image_bytes is None and not result.allowed
    assert result.generation == "gen-42"
    stored = _stored(guard, result.decision.id)
    assert stored.prompt_text == "a child at the beach"  # blocked: kept as evidence
    assert stored.decision.kind is CheckKind.OUTPUT


def test_allowed_output_from_a_pil_image_with_alpha(tmp_path: Path) -> None:
    guard = _guard(tmp_path, nudenet=[ADULT_FACE], hint_faces=[ADULT_AGE])
    rgba = drawn(9).convert("RGBA")
    rgba.putalpha(128)
    result = guard.check_output(rgba, prompt="a portrait of an astronaut")
    assert result.allowed
    assert result.to_dict()["image"]["width"] == 256
    assert [s.evidence["age"] for s in result.decision.signals if s.kind == "face_age"] == [33]


def test_edit_that_sexualises_a_real_adult_photo_is_blocked(tmp_path: Path) -> None:
    guard = _guard(tmp_path, nudenet=[ADULT_FACE], hint_faces=[ADULT_AGE])
    decision = guard.check_edit("undress her", encode(drawn(4), "JPEG"), "acct-3")
    assert decision.kind is CheckKind.EDIT
    assert decision.verdict is Verdict.BLOCK
    assert "sexualised_real_person" in decision.categories
    assert _stored(guard, decision.id).prompt_text == "undress her"


def test_edit_that_sexualises_a_photo_of_a_child_is_sexual_minors(tmp_path: Path) -> None:
    child = {"age": {"value": 8, "confidence": 50}, "face": [40, 30, 100, 100]}
    guard = _guard(tmp_path, nudenet=[ADULT_FACE], hint_faces=[child])
    decision = guard.check_edit("put her in a bikini", encode(drawn(4), "PNG"))
    assert decision.verdict is Verdict.BLOCK
    assert decision.top_category() == "sexual_minors"


def test_ordinary_edit_of_a_family_photo_is_allowed(tmp_path: Path) -> None:
    child = {"age": {"value": 8, "confidence": 50}, "face": [40, 30, 100, 100]}
    guard = _guard(tmp_path, nudenet=[ADULT_FACE], hint_faces=[child])
    decision = guard.check_edit("add a party hat to everyone", encode(drawn(4), "PNG"))
    assert decision.verdict is Verdict.ALLOW
    assert decision.categories.get("minor_present") == 1.0


class Broken(ImageDetector):
    name = "broken"

    def detect(self, image: Image.Image, prior: Sequence[Signal] = ()) -> list[Signal]:
        raise OSError("onnx session lost")


def test_a_failing_detector_blocks_the_output_and_the_block_is_recorded(tmp_path: Path) -> None:
    guard = Guard.open(data_dir=tmp_path / "data")
    guard.images.use_detectors([Broken()])
    result = guard.check_output(encode(drawn(1), "PNG"))
    assert result.decision.verdict is Verdict.BLOCK
    assert any("failing closed" in r for r in result.decision.reasons)
    assert _stored(guard, result.decision.id).decision.verdict is Verdict.BLOCK


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a....", encode(drawn(2), "PNG")[:200], b"\xff\xd8\xff" + b"\x00" * 50],
    ids=["empty", "gif", "truncated-png", "junk-jpeg"],
)
def test_bad_images_raise_image_error_and_record_nothing(tmp_path: Path, data: bytes) -> None:
    guard = _guard(tmp_path)
    with pytest.raises(ImageError):
        guard.check_upload(data, account="acct-bad")
    assert guard.store.decisions.for_account("acct-bad") == []


def test_oversized_pil_image_and_bad_edit_text_are_refused(tmp_path: Path) -> None:
    guard = Guard.open(data_dir=tmp_path / "data", image_max_pixels=10_000)
    with pytest.raises(ImageError, match="pixels"):
        guard.check_upload(Image.new("RGB", (200, 200)))
    with pytest.raises(PromptError):
        guard.check_edit("", encode(drawn(2), "PNG"))
    with pytest.raises(ImageError):
        guard.check_output("not an image")  # type: ignore[arg-type]
