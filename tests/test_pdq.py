"""PDQ hashing: ThreatExchange's conventions, the 8 dihedral hashes, quality, downscaling."""

from __future__ import annotations

import pytest
from imagesamples import SAMPLE_NAMES, drawn, encode, sample
from PIL import Image
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes
from threatexchange.signal_type.pdq.pdq_utils import simple_distance

from tutela.image.decode import decode_image
from tutela.image.pdq import DIHEDRAL_NAMES, QUALITY_THRESHOLD, hash_image

TRANSPOSES = {
    "rotate90": Image.Transpose.ROTATE_90,
    "rotate180": Image.Transpose.ROTATE_180,
    "rotate270": Image.Transpose.ROTATE_270,
    "flip_x": Image.Transpose.FLIP_LEFT_RIGHT,
    "flip_y": Image.Transpose.FLIP_TOP_BOTTOM,
}


@pytest.mark.parametrize("name", ["astronaut", "camera"])
def test_same_hex_as_threatexchange(name: str) -> None:
    # Both are 512 px, so neither side downsamples: the hashes must be bit-identical.
    data = encode(sample(name), "PNG")
    expected_hash, expected_quality = pdq_from_bytes(data)
    result = hash_image(decode_image(data).image)
    assert result.hash == expected_hash
    assert result.quality == expected_quality


def test_eight_hashes_hex_and_distinct() -> None:
    result = hash_image(sample("coffee"))
    assert len(result.hashes) == 8 == len(DIHEDRAL_NAMES)
    for h in result.hashes:
        assert len(h) == 64 and h == h.lower()
        int(h, 16)
    assert len(set(result.hashes)) == 8
    assert result.matchable


@pytest.mark.parametrize("transform", sorted(TRANSPOSES))
def test_dihedral_hash_matches_transformed_image(transform: str) -> None:
    img = sample("chelsea")
    result = hash_image(img)
    other = hash_image(img.transpose(TRANSPOSES[transform])).hash
    distances = {name: simple_distance(other, h) for name, h in result.named().items()}
    # One of the 8 (the matching transform; the names differ only in convention) is near.
    assert min(distances.values()) <= 16
    assert distances["original"] > 31


def test_flat_image_is_low_quality_not_matchable() -> None:
    result = hash_image(Image.new("RGB", (300, 300), (120, 120, 120)))
    assert result.quality < QUALITY_THRESHOLD
    assert not result.matchable
    assert result.to_dict()["matchable"] is False


def test_large_image_downscaled_hash_stays_close() -> None:
    big = sample("hubble_deep_field").resize((2000, 1744))
    full = pdq_from_bytes(encode(big, "PNG"))[0]
    ours = hash_image(big).hash
    assert simple_distance(full, ours) <= 16


def test_benign_images_are_far_apart() -> None:
    hashes = [hash_image(sample(n)).hash for n in SAMPLE_NAMES]
    hashes += [hash_image(drawn(s)).hash for s in range(5)]
    for i, a in enumerate(hashes):
        for b in hashes[i + 1 :]:
            assert simple_distance(a, b) > 31
