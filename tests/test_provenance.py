"""Provenance end to end: C2PA signing/validation, the dev chain, marking in check_output,
tracing through each channel, the account held back and every reveal logged, CLI and HTTP.

Everything is real: c2pa-python signs and validates, the store is SQLite with the real
migrations, the registry bank is the real index; detectors play recorded outputs
(tests/image_records.py) so check_output can run without models.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from image_records import RecordedFaces, RecordedNudeNet
from imagesamples import encode, sample
from PIL import Image
from sqlalchemy.exc import IntegrityError
from test_api import Service
from typer.testing import CliRunner

from tutela import Guard
from tutela.cli.main import app as cli
from tutela.config import Settings
from tutela.errors import ImageError
from tutela.image.age import FaceAgeDetector
from tutela.image.nudity import NudityDetector
from tutela.provenance.devcerts import DevChain, make_dev_chain
from tutela.provenance.factory import build_provenance, dev_chain_dir
from tutela.provenance.manifest import (
    TRAINED_ALGORITHMIC_MEDIA,
    ManifestSigner,
    read_manifest,
)
from tutela.provenance.tiled import TiledEngine
from tutela.store import migrate
from tutela.store.database import Store

WEAK_NUDITY = [{"class": "BUTTOCKS_EXPOSED", "score": 0.3, "box": [10, 10, 20, 20]}]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> DevChain:
    return make_dev_chain(tmp_path_factory.mktemp("chain"))


def _png(name: str = "astronaut", size: int = 512) -> bytes:
    return encode(sample(name).resize((size, size)), "PNG")


def _reencode(data: bytes, quality: int = 80) -> bytes:
    return encode(Image.open(io.BytesIO(data)).convert("RGB"), "JPEG", quality=quality)


def _guard(tmp_path: Path, nudenet: list | None = None, *, dev_chain: bool = True) -> Guard:
    guard = Guard.open(data_dir=tmp_path / "data")
    if dev_chain:
        make_dev_chain(dev_chain_dir(guard.settings))
    guard.images.use_detectors(
        [NudityDetector(RecordedNudeNet(nudenet or [])), FaceAgeDetector(RecordedFaces([], []))]
    )
    return guard


# --- the certificate chain and the manifest ---------------------------------------------------
def test_dev_chain_is_root_intermediate_leaf_with_a_signing_eku(chain: DevChain) -> None:
    leaf, inter = x509.load_pem_x509_certificates(chain.chain_pem.read_bytes())
    root = x509.load_pem_x509_certificate(chain.root_pem.read_bytes())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert inter.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    leaf.verify_directly_issued_by(inter)
    inter.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert chain.key_pem.stat().st_mode & 0o077 == 0  # the key is private to its owner


def test_manifest_signs_reads_and_validates(chain: DevChain) -> None:
    signer = ManifestSigner.from_files(chain.chain_pem, chain.key_pem)
    signed = signer.sign(_png(), "png", "gen_test")
    untrusted = read_manifest(signed, "png")
    assert untrusted.valid and not untrusted.trusted
    reading = read_manifest(signed, "png", chain.root_pem.read_text())
    assert reading.valid and reading.trusted and reading.state == "Trusted"
    assert reading.generation_ref == "gen_test"
    assert reading.source_type == TRAINED_ALGORITHMIC_MEDIA
    assert reading.generator is not None and reading.generator.startswith("Tutela ")
    assert "acct" not in json.dumps(signer.manifest("gen_test"))


def test_manifest_of_changed_pixels_is_invalid_and_plain_images_have_none(
    chain: DevChain,
) -> None:
    signer = ManifestSigner.from_files(chain.chain_pem, chain.key_pem)
    jpeg = encode(sample("coffee"), "JPEG", quality=90)
    signed = bytearray(signer.sign(jpeg, "jpeg", "gen_x"))
    signed[-200] ^= 0xFF  # inside the entropy-coded picture data
    broken = read_manifest(bytes(signed), "jpeg", chain.root_pem.read_text())
    assert broken.present and not broken.valid and broken.errors
    assert not read_manifest(jpeg, "jpeg").present


def test_manifest_signed_through_a_callback(chain: DevChain) -> None:
    """The KMS/HSM path: c2pa hands the bytes to a callback that returns the signature."""
    key = serialization.load_pem_private_key(chain.key_pem.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)

    def sign(data: bytes) -> bytes:
        return key.sign(data, ec.ECDSA(hashes.SHA256()))

    signer = ManifestSigner.from_callback(sign, chain.chain_pem.read_text())
    signed = signer.sign(_png(), "png", "gen_cb")
    reading = read_manifest(signed, "png", chain.root_pem.read_text())
    assert reading.trusted and reading.generation_ref == "gen_cb"


# --- the Guard: marking in check_output, tracing --------------------------------------------
def test_allowed_output_is_marked_and_traced_by_each_channel(tmp_path: Path) -> None:
    guard = _guard(tmp_path)
    result = guard.check_output(_png(), "acct-7", prompt="a lighthouse", generation="plat-1")
    assert result.allowed and result.image_bytes and result.media_type == "image/png"
    gen_id = result.provenance_id
    assert gen_id and result.to_dict()["generation_id"] == gen_id

    by_manifest = guard.trace(result.image_bytes)
    assert (by_manifest.ours, by_manifest.channel) == (True, "c2pa")
    assert by_manifest.generation is not None and by_manifest.generation.id == gen_id
    assert by_manifest.generation.decision_id == result.decision.id
    assert by_manifest.generation.external_ref == "plat-1"
    assert "account" not in by_manifest.to_dict()

    reencoded = _reencode(result.image_bytes)  # strips the manifest
    by_mark = guard.trace(reencoded)
    assert (by_mark.channel, by_mark.generation.id) == ("watermark", gen_id)  # type: ignore[union-attr]

    # A tracer that cannot read this deployment's watermark still finds it by PDQ hash.
    other = build_provenance(guard.settings, guard.store)
    other.engine = TiledEngine(seed=b"not this deployment")
    by_hash = other.trace(reencoded)
    assert (by_hash.channel, by_hash.generation.id) == ("registry", gen_id)  # type: ignore[union-attr]
    assert 0.5 <= by_hash.confidence <= 1.0


def test_unknown_images_are_not_ours_and_blocked_outputs_are_not_registered(
    tmp_path: Path,
) -> None:
    guard = _guard(tmp_path, WEAK_NUDITY)
    blocked = guard.check_output(_png("coffee"), "acct-1", prompt="a child at the beach")
    assert blocked.decision.blocked and blocked.image_bytes is None
    assert blocked.provenance_id is None
    for data in (_png("coffee"), _png("rocket"), encode(sample("camera"), "JPEG")):
        result = guard.trace(data)
        assert not result.ours and result.to_dict()["verdict"] == "not ours"


def test_reveal_needs_review_scope_and_is_logged(tmp_path: Path) -> None:
    guard = _guard(tmp_path)
    result = guard.check_output(_png("chelsea"), "acct-42")
    trace = guard.trace(result.image_bytes or b"")
    with pytest.raises(PermissionError):
        guard.provenance.reveal(trace, actor="someone", scope="check")
    assert guard.provenance.records.lookups(trace.generation.id) == []  # type: ignore[union-attr]
    shown = guard.provenance.reveal(trace, actor="reviewer-1", scope="review")
    assert shown["account"] == "acct-42"
    (entry,) = guard.provenance.records.lookups(trace.generation.id)  # type: ignore[union-attr]
    assert entry["actor"] == "reviewer-1" and entry["channel"] == "c2pa"


def test_without_a_signing_key_outputs_are_still_watermarked_and_registered(
    tmp_path: Path,
) -> None:
    guard = _guard(tmp_path, dev_chain=False)
    result = guard.check_output(encode(sample("rocket").resize((640, 427)), "JPEG"), "a")
    assert result.media_type == "image/jpeg"
    assert not read_manifest(result.image_bytes or b"", "jpeg").present
    assert guard.trace(result.image_bytes or b"").channel == "watermark"


def test_trace_refuses_undecodable_input(tmp_path: Path) -> None:
    guard = _guard(tmp_path)
    with pytest.raises(ImageError):
        guard.trace(b"GIF89a not an image we take")


def test_migration_creates_the_provenance_tables(tmp_path: Path) -> None:
    guard = Guard.open(data_dir=tmp_path / "data")
    heads = guard.store.upgrade()
    assert "0005_provenance" in heads or "0005_provenance" in migrate.script_heads()
    from sqlalchemy import inspect

    tables = set(inspect(guard.store.engine).get_table_names())
    assert {"provenance_generations", "provenance_lookups"} <= tables


# --- command line and HTTP ----------------------------------------------------------------
def test_cli_makes_a_dev_chain_and_traces_files(tmp_path: Path) -> None:
    runner = CliRunner()
    data_dir = tmp_path / "data"
    made = runner.invoke(cli, ["--data-dir", str(data_dir), "keys", "c2pa-dev"])
    assert made.exit_code == 0, made.output
    assert (data_dir / "c2pa" / "c2pa-root.pem").exists()

    guard = _guard(tmp_path, dev_chain=False)  # same data dir: picks up the CLI's chain
    result = guard.check_output(_png("astronaut"), "acct-cli")
    ours = tmp_path / "ours.jpg"
    ours.write_bytes(_reencode(result.image_bytes or b""))
    other = tmp_path / "other.png"
    other.write_bytes(_png("coffee"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")

    out = runner.invoke(cli, ["--data-dir", str(data_dir), "trace", "--json", str(ours),
                              str(other)])
    assert out.exit_code == 1, out.output  # one file is not ours
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["generation_id"] == result.provenance_id and "account" not in lines[0]
    assert lines[1]["verdict"] == "not ours"

    shown = runner.invoke(cli, ["--data-dir", str(data_dir), "trace", "--show-account",
                                str(ours)])
    assert shown.exit_code == 0 and "account acct-cli" in shown.stdout
    assert runner.invoke(cli, ["--data-dir", str(data_dir), "trace", str(bad)]).exit_code == 2


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    guard = _guard(tmp_path)
    guard.store.upgrade()
    service = Service(guard)
    with service.client:
        yield service


def test_http_trace_holds_the_account_back_from_the_check_scope(svc: Service) -> None:
    result = svc.guard.check_output(_png("astronaut"), "acct-http")
    data = _reencode(result.image_bytes or b"")

    def post(scope: str, body: bytes = data):  # type: ignore[no-untyped-def]
        return svc.client.post("/v1/trace", files={"image": ("f.jpg", body, "image/jpeg")},
                               headers=svc.headers(scope))

    plain = post("check")
    assert plain.status_code == 200, plain.text
    assert plain.json()["generation_id"] == result.provenance_id
    assert "account" not in plain.json() or plain.json()["account"] is None
    review = post("review").json()
    assert review["account"] == "acct-http" and review["channel"] == "watermark"
    assert len(svc.guard.provenance.records.lookups(result.provenance_id or "")) == 1
    assert post("check", b"not an image").status_code == 422
    checked = svc.client.post(
        "/v1/outputs/check", files={"image": ("o.png", _png("rocket"), "image/png")},
        data={"account": "acct-http"}, headers=svc.headers("check"),
    ).json()
    assert checked["verdict"] == "allow" and checked["generation_id"].startswith("gen_")
    marked = base64.b64decode(checked["marked_image"])
    assert post("check", marked).json()["generation_id"] == checked["generation_id"]
    assert post("check", _png("coffee")).json()["verdict"] == "not ours"
    assert svc.client.post("/v1/trace", files={"image": ("f", data, "image/jpeg")}
                           ).status_code == 401


# --- both databases -----------------------------------------------------------------------
def test_records_and_lookups_on_each_database(store: Store, tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path / "settings")
    prov = build_provenance(settings, store)
    marked = prov.mark(_png("camera", 384), account="acct-db", prompt="p")
    gen = marked.generation
    assert prov.records.get(gen.id) == gen and prov.records.by_key(gen.watermark_key) == gen
    assert gen.created_at.tzinfo is not None and gen.prompt_sha256 is not None
    with pytest.raises(IntegrityError):  # watermark keys are unique
        prov.records.add(account=None, prompt_sha256=None, pdq=[], pdq_quality=None,
                         watermark_key=gen.watermark_key)
    result = prov.trace(_reencode(marked.data))
    assert result.generation == gen and result.channel == "watermark"
    assert prov.reveal(result, actor="admin-1", scope="admin")["account"] == "acct-db"
    assert [e["actor"] for e in prov.records.lookups(gen.id)] == ["admin-1"]
