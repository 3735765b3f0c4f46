"""The image endpoints over HTTP: multipart in, stored decision out, 4xx for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from image_records import RecordedFaces, RecordedNudeNet
from imagesamples import drawn, encode, sample
from test_api import Service, _error

from tutela import Guard
from tutela.accounts.state import Verification
from tutela.accounts.tiers import AgeTier
from tutela.hashes.repository import BankRepository
from tutela.image.age import FaceAgeDetector
from tutela.image.nudity import NudityDetector
from tutela.image.pdq import hash_image

WEAK_NUDITY = [{"class": "BUTTOCKS_EXPOSED", "score": 0.3, "box": [10, 10, 20, 20]}]
FACE = [{"class": "FACE_FEMALE", "score": 0.8, "box": [40, 30, 60, 70]}]
ADULT = [{"age": {"value": 35, "confidence": 50}, "face": [40, 30, 100, 100]}]


def _svc(tmp_path: Path, nudenet: list, faces: list | None = None, **settings) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    guard = Guard.open(data_dir=tmp_path / "data", **settings)
    guard.store.upgrade()
    guard.images.use_detectors(
        [NudityDetector(RecordedNudeNet(nudenet)), FaceAgeDetector(RecordedFaces(faces, []))]
    )
    svc = Service(guard)
    with svc.client:
        yield svc


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    yield from _svc(tmp_path, [])


PNG = encode(drawn(21), "PNG")


def _post(svc: Service, path: str, data: bytes = PNG, scope: str = "check", **form: str):  # type: ignore[no-untyped-def]
    return svc.client.post(
        f"/v1/{path}/check",
        files={"image": ("x.png", data, "image/png")},
        data={"account": "acct-9", **form},
        headers=svc.headers(scope),
    )


def test_upload_is_checked_and_stored(svc: Service) -> None:
    res = _post(svc, "uploads")
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["kind"] == "upload" and body["verdict"] == "allow"
    assert svc.guard.store.decisions.get(body["id"]) is not None


def test_known_hash_upload_is_blocked(svc: Service) -> None:
    banks = BankRepository(svc.guard.store)
    banks.create_bank("known", "block")
    banks.add_entry("known", hash_image(sample("rocket")).hash)
    res = _post(svc, "uploads", encode(sample("rocket"), "JPEG", quality=95))
    assert res.status_code == 200
    assert res.json()["verdict"] == "block" and res.json()["report"] is True


def test_output_for_a_child_prompt_with_nudity_is_blocked(tmp_path: Path) -> None:
    for svc in _svc(tmp_path, WEAK_NUDITY):
        res = _post(svc, "outputs", prompt="a child at the beach", generation="gen-1")
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["kind"] == "output" and body["verdict"] == "block"
        assert "sexual_minors" in body["categories"]
        assert body["marked_image"] is None and body["generation"] == "gen-1"
        assert body["image"]["width"] == 256


def test_edit_of_a_real_adult_photo(tmp_path: Path) -> None:
    for svc in _svc(tmp_path, FACE, ADULT):
        # Editing a photo of a real person needs a verified adult account (accounts policy).
        now = datetime.now(UTC)
        svc.guard.accounts.record_verification(
            "acct-9", Verification(AgeTier.VERIFIED_ADULT, "id_document", now), now
        )
        blocked = _post(svc, "edits", prompt="undress her").json()
        assert blocked["verdict"] == "block"
        assert "sexualised_real_person" in blocked["categories"]
        allowed = _post(svc, "edits", prompt="add a party hat").json()
        assert allowed["verdict"] == "allow"


def test_scopes_and_missing_key(svc: Service) -> None:
    res = svc.client.post("/v1/uploads/check", files={"image": ("x.png", PNG)},
                          data={"account": "a"})
    _error(res, 401, "unauthorized")


@pytest.mark.parametrize(
    ("data", "needle"),
    [(b"", "empty"), (b"%PDF-1.7 not an image", "unsupported"), (PNG[:120], "truncated")],
    ids=["empty", "pdf", "truncated"],
)
def test_bad_images_are_422_and_nothing_is_stored(svc: Service, data: bytes, needle: str) -> None:
    res = _post(svc, "uploads", data)
    body = _error(res, 422, "invalid_request")
    assert needle in body["message"]
    assert svc.guard.store.decisions.for_account("acct-9") == []


def test_missing_fields_are_422(svc: Service) -> None:
    res = _post(svc, "edits")  # no instruction
    assert res.status_code == 422
    res = svc.client.post("/v1/uploads/check", data={"account": "a"}, headers=svc.headers())
    assert res.status_code == 422
    res = _post(svc, "outputs", prompt="a\x00b")
    assert res.status_code == 422


def test_image_over_the_byte_limit_is_refused(tmp_path: Path) -> None:
    for svc in _svc(tmp_path, [], image_max_bytes=2048):
        res = _post(svc, "uploads", encode(sample("astronaut"), "PNG"))
        assert res.status_code in (413, 422)
        assert "limit" in res.json()["error"]["message"]
