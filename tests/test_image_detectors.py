"""Detectors and the runner: label grouping, malformed outputs, and failing closed."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from image_records import RecordedFaces, RecordedNudeNet
from PIL import Image

from tutela.decision import Signal, Verdict
from tutela.image.age import FaceAgeDetector, signals_from_faces
from tutela.image.detectors import DETECTOR_ERROR, DetectorRunner, ImageDetector
from tutela.image.nudity import NudityDetector, signals_from_detections
from tutela.policy import Policy

IMG = Image.new("RGB", (200, 150), (90, 140, 200))


def test_nudenet_labels_grouped_exposed_covered_other_and_faces() -> None:
    signals = signals_from_detections(
        [
            {"class": "FEMALE_BREAST_EXPOSED", "score": 0.6, "box": [1, 2, 3, 4]},
            {"class": "MALE_GENITALIA_EXPOSED", "score": 0.8, "box": [5, 6, 7, 8]},
            {"class": "BUTTOCKS_COVERED", "score": 0.5, "box": [0, 0, 10, 10]},
            {"class": "FEET_EXPOSED", "score": 0.4, "box": [0, 0, 1, 1]},
            {"class": "ARMPITS_COVERED", "score": 0.9, "box": [0, 0, 1, 1]},
            {"class": "FACE_FEMALE", "score": 0.7, "box": [10, 10, 20, 30]},
        ]
    )
    by_kind = {s.kind: s for s in signals}
    assert set(by_kind) == {"nudity", "intimate_covered", "body_exposed", "face"}
    nudity = by_kind["nudity"]
    assert nudity.score == 0.8  # the strongest exposed part
    assert [p["label"] for p in nudity.evidence["parts"]] == [
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
    ]
    assert nudity.evidence["parts"][1]["box"] == [1, 2, 4, 6]  # xywh -> ltrb
    assert by_kind["face"].evidence["box"] == [10, 10, 30, 40]


def test_nudenet_boxes_scaled_back_to_the_original_image() -> None:
    model = RecordedNudeNet([{"class": "ANUS_EXPOSED", "score": 0.5, "box": [10, 10, 20, 20]}])
    big = Image.new("RGB", (1280, 640))
    (signal,) = NudityDetector(model, max_side=320).detect(big)
    assert signal.evidence["parts"][0]["box"] == [40, 40, 120, 120]  # 4x smaller for NudeNet


@pytest.mark.parametrize(
    "bad",
    [
        {"class": "SOMETHING_NEW", "score": 0.5, "box": [0, 0, 1, 1]},
        {"class": "FACE_MALE", "score": 1.5, "box": [0, 0, 1, 1]},
        {"class": "FACE_MALE", "score": 0.5, "box": [0, 0, -3, 1]},
    ],
)
def test_malformed_nudenet_output_is_an_error_not_nothing(bad: dict) -> None:
    with pytest.raises(ValueError):
        signals_from_detections([bad])


@pytest.mark.parametrize(
    "bad",
    [
        {"age": {"value": 300, "confidence": 50}, "face": [0, 0, 1, 1]},
        {"age": {"value": 30, "confidence": 150}, "face": [0, 0, 1, 1]},
        {"age": {"value": 30, "confidence": 50}, "face": [0, 0, 1]},
    ],
)
def test_malformed_age_output_is_an_error(bad: dict) -> None:
    with pytest.raises(ValueError):
        signals_from_faces([bad])


def test_age_detector_alone_searches_every_image() -> None:
    faces = RecordedFaces(search=[{"age": {"value": 40, "confidence": 70}, "face": [1, 1, 9, 9]}])
    signals = FaceAgeDetector(faces, face_hints_from=None).detect(IMG)
    assert faces.searched == 1
    assert signals[0].evidence == {"age": 40, "box": [1, 1, 9, 9], "found_by": "search"}
    assert signals[0].score == 0.7


def test_search_skips_faces_already_given_as_hints() -> None:
    same = {"age": {"value": 30, "confidence": 50}, "face": [10, 10, 60, 60]}
    other = {"age": {"value": 9, "confidence": 50}, "face": [100, 100, 140, 140]}
    faces = RecordedFaces(hint=[same], search=[dict(same, face=[12, 11, 61, 58]), other])
    prior = [
        Signal("nudenet", "face", 0.9, {"box": [10, 10, 60, 60]}),
        Signal("nudenet", "nudity", 0.9, {"parts": []}),
    ]
    signals = FaceAgeDetector(faces).detect(IMG, prior)
    assert [(s.evidence["age"], s.evidence["found_by"]) for s in signals] == [
        (30, "hints"),
        (9, "search"),
    ]


def test_search_runs_when_the_face_hint_detector_failed() -> None:
    faces = RecordedFaces(search=[])
    prior = [Signal("nudenet", DETECTOR_ERROR, 1.0, {"error": "boom"})]
    FaceAgeDetector(faces).detect(IMG, prior)
    assert faces.searched == 1


# --- failing closed --------------------------------------------------------------------------
class Exploding(ImageDetector):
    name = "exploding"

    def detect(self, image: Image.Image, prior: Sequence[Signal] = ()) -> list[Signal]:
        raise RuntimeError("model file corrupt")


class Slow(ImageDetector):
    name = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.release = threading.Event()

    def detect(self, image: Image.Image, prior: Sequence[Signal] = ()) -> list[Signal]:
        self.release.wait(self.seconds)
        return []


def test_a_raising_detector_becomes_an_error_signal_and_blocks() -> None:
    nudenet = NudityDetector(RecordedNudeNet([]))
    run = DetectorRunner([Exploding(), nudenet]).run(IMG)
    assert run.failed == ["exploding"]
    (err,) = [s for s in run.signals if s.kind == DETECTOR_ERROR]
    assert "model file corrupt" in err.evidence["error"]
    judgement = Policy.load().judge_image(run.signals)
    assert judgement.verdict is Verdict.BLOCK
    assert any("failing closed" in r for r in judgement.reasons)


def test_a_detector_over_its_time_budget_blocks_and_later_ones_are_not_waited_for() -> None:
    slow = Slow(5.0)
    after = NudityDetector(RecordedNudeNet([]))
    runner = DetectorRunner([slow, after], timeout_s=0.2)
    t0 = time.perf_counter()
    run = runner.run(IMG)
    elapsed = time.perf_counter() - t0
    slow.release.set()
    assert elapsed < 2.0
    assert run.failed == ["slow", "nudenet"]
    assert all(s.evidence["timeout"] for s in run.signals if s.kind == DETECTOR_ERROR)
    assert Policy.load().judge_image(run.signals).verdict is Verdict.BLOCK
    runner.close()


def test_review_on_failure_where_the_policy_says_so() -> None:
    policy = Policy.model_validate({**Policy.load().model_dump(), "detector_failure": "review"})
    run = DetectorRunner([Exploding()]).run(IMG)
    assert policy.judge_image(run.signals).verdict is Verdict.REVIEW


def test_failure_never_lowers_a_block() -> None:
    policy = Policy.model_validate({**Policy.load().model_dump(), "detector_failure": "review"})
    nudenet = NudityDetector(
        RecordedNudeNet([{"class": "FEMALE_GENITALIA_EXPOSED", "score": 0.9, "box": [0, 0, 5, 5]}])
    )
    faces = RecordedFaces(search=[{"age": {"value": 11, "confidence": 40}, "face": [0, 0, 9, 9]}])
    run = DetectorRunner([nudenet, FaceAgeDetector(faces), Exploding()]).run(IMG)
    assert policy.judge_image(run.signals).verdict is Verdict.BLOCK
