"""The image rules end to end on recorded detector outputs: detector classes → runner → policy.

Each scenario in tests/data/image_detector_records.json says what NudeNet and the age
estimator "saw" and what the decision must be. The image itself is a benign drawing: the
recorded models ignore its pixels.
"""

from __future__ import annotations

from typing import Any

import pytest
from image_records import RecordedFaces, RecordedNudeNet, scenarios
from PIL import Image, ImageDraw

from tutela.image.age import FaceAgeDetector
from tutela.image.detectors import DetectorRunner
from tutela.image.nudity import NudityDetector
from tutela.policy import Policy
from tutela.text.reader import PromptReader

READER = PromptReader()


def _picture() -> Image.Image:
    img = Image.new("RGB", (320, 320), (200, 220, 240))
    ImageDraw.Draw(img).ellipse((80, 80, 240, 240), fill=(40, 120, 60))
    return img


def _policy(overrides: dict[str, Any] | None) -> Policy:
    base = Policy.load().model_dump()
    for section, values in (overrides or {}).items():
        base[section] = {**base[section], **values}
    return Policy.model_validate(base)


@pytest.mark.parametrize("case", scenarios(), ids=lambda c: c["name"])
def test_recorded_scenario(case: dict[str, Any]) -> None:
    faces = RecordedFaces(case.get("hint_faces"), case.get("search_faces"))
    runner = DetectorRunner(
        [NudityDetector(RecordedNudeNet(case["nudenet"])), FaceAgeDetector(faces)]
    )
    run = runner.run(_picture())
    assert run.failed == []
    text = case.get("edit") or case.get("prompt")
    prompt_signals = READER.read(text).signals if text else []
    judgement = _policy(case.get("policy")).judge_image(
        run.signals, prompt_signals=prompt_signals, edit="edit" in case
    )
    expect = case["expect"]
    assert str(judgement.verdict) == expect["verdict"], judgement.reasons
    image_categories = {k for k, v in judgement.categories.items() if v > 0}
    for category in expect["categories"]:
        assert category in image_categories, judgement.categories
    if not expect["categories"]:
        assert image_categories == set(), judgement.categories
    if "top" in expect:
        top = max(judgement.categories.items(), key=lambda kv: kv[1])[0]
        assert top == expect["top"], judgement.categories
    if "report" in expect:
        assert judgement.report is expect["report"]
    if "reason" in expect:
        assert any(expect["reason"] in r for r in judgement.reasons), judgement.reasons
    if "search_ran" in expect:
        assert bool(faces.searched) is expect["search_ran"]
    runner.close()


def test_hint_boxes_are_nudenet_faces_in_ltrb() -> None:
    """NudeNet's xywh face box reaches the age estimator as [left, top, right, bottom]."""
    faces = RecordedFaces([{"age": {"value": 30, "confidence": 50}, "face": [10, 20, 60, 90]}])
    nudenet = RecordedNudeNet([{"class": "FACE_MALE", "score": 0.9, "box": [10, 20, 50, 70]}])
    run = DetectorRunner([NudityDetector(nudenet), FaceAgeDetector(faces)]).run(_picture())
    assert faces.boxes_seen == [[10, 20, 60, 90]]
    ages = [s for s in run.signals if s.kind == "face_age"]
    assert [s.evidence["age"] for s in ages] == [30]
    assert ages[0].evidence["found_by"] == "hints"
