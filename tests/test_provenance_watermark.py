"""The watermark payload and the tiled engine, on benign sample images (scikit-image)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from imagesamples import drawn, sample
from PIL import Image

from tutela.provenance.payload import (
    KEY_BITS,
    PAYLOAD_BITS,
    crc24,
    decode_bits,
    encode_key,
    new_key,
)
from tutela.provenance.tiled import TiledEngine


def test_crc24_matches_the_openpgp_check_value() -> None:
    assert crc24(b"123456789") == 0x21CF02  # RFC 4880's published check value


def test_key_round_trip_and_every_single_bit_error_is_detected() -> None:
    key = 0x12_3456_789A
    bits = encode_key(key)
    assert len(bits) == PAYLOAD_BITS and decode_bits(bits) == key
    for i in range(PAYLOAD_BITS):
        flipped = bits.copy()
        flipped[i] ^= 1
        assert decode_bits(flipped) is None


def test_random_words_do_not_pass_as_keys() -> None:
    rng = np.random.default_rng(7)
    words = rng.integers(0, 2, size=(20_000, PAYLOAD_BITS), dtype=np.uint8)
    assert sum(decode_bits(w) is not None for w in words) == 0
    assert decode_bits(np.zeros(PAYLOAD_BITS, np.uint8)) is None  # key 0 is never valid


def test_keys_are_random_and_in_range() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100 and all(0 < k < 2**KEY_BITS for k in keys)
    with pytest.raises(ValueError):
        encode_key(0)


def _rgb(name: str, size: int) -> np.ndarray:
    return np.asarray(sample(name).resize((size, size), Image.Resampling.LANCZOS))


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=2)
    return np.asarray(Image.open(buf).convert("RGB"))


@pytest.fixture(scope="module")
def engine() -> TiledEngine:
    return TiledEngine()


@pytest.fixture(scope="module")
def marked(engine: TiledEngine) -> tuple[np.ndarray, np.ndarray, int]:
    rgb = _rgb("astronaut", 512)
    return rgb, engine.embed(rgb, 0xABCDE12345), 0xABCDE12345


def test_mark_is_faint(marked: tuple[np.ndarray, np.ndarray, int]) -> None:
    rgb, out, _ = marked
    assert out.shape == rgb.shape and out.dtype == np.uint8
    mse = np.mean((out.astype(float) - rgb.astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 32  # PSNR in dB (texture carries most of it)


@pytest.mark.parametrize(
    "transform",
    [
        "none",
        "jpeg50",
        "resize_half_then_jpeg75",
        "crop_80_percent",
        "cut_10_percent_left",
        "screenshot_with_border",
    ],
)
def test_mark_survives(
    engine: TiledEngine, marked: tuple[np.ndarray, np.ndarray, int], transform: str
) -> None:
    _, out, key = marked
    img = Image.fromarray(out)
    if transform == "jpeg50":
        found = _jpeg(out, 50)
    elif transform == "resize_half_then_jpeg75":
        found = _jpeg(np.asarray(img.resize((256, 256), Image.Resampling.BICUBIC)), 75)
    elif transform == "crop_80_percent":
        found = out[27:485, 27:485]
    elif transform == "cut_10_percent_left":
        found = out[:, 51:]
    elif transform == "screenshot_with_border":
        small = img.resize((445, 445), Image.Resampling.BILINEAR)
        canvas = Image.new("RGB", (560, 530), (240, 240, 240))
        canvas.paste(small, (70, 55))
        found = np.asarray(canvas)
    else:
        found = out
    assert engine.read(np.ascontiguousarray(found)).key == key


@pytest.mark.parametrize("name", ["camera", "coffee", "chelsea", "rocket"])
def test_unmarked_pictures_read_as_no_key(engine: TiledEngine, name: str) -> None:
    assert engine.read(_rgb(name, 512)).key is None


def test_another_seed_cannot_read_the_mark(marked: tuple[np.ndarray, np.ndarray, int]) -> None:
    _, out, _ = marked
    assert TiledEngine(seed=b"another deployment").read(out).key is None


def test_tiny_and_flat_pictures() -> None:
    engine = TiledEngine()
    with pytest.raises(ValueError, match="too small"):
        engine.embed(np.zeros((64, 64, 3), np.uint8), 5)
    assert engine.read(np.zeros((40, 40, 3), np.uint8)).key is None
    flat = np.full((300, 300, 3), 128, np.uint8)
    assert engine.read(flat).key is None
    assert engine.read(np.asarray(drawn(3))).key is None


def test_mark_read_from_a_large_upscaled_copy(engine: TiledEngine) -> None:
    """A copy scaled up past the reader's working size is halved before the search."""
    rgb = _rgb("coffee", 1024)
    out = engine.embed(rgb, 77_000_123)
    big = np.asarray(Image.fromarray(out).resize((2300, 2300), Image.Resampling.BICUBIC))
    assert engine.read(big).key == 77_000_123


def test_soft_decoding_repairs_up_to_three_weak_bits_only() -> None:
    from tutela.provenance.tiled import _decode_soft

    key = 0x0F_F00F_F00F
    soft = np.where(encode_key(key) > 0, 10.0, -10.0)
    weak = soft.copy()
    weak[[3, 17, 40]] *= -0.1  # three wrong bits, the least certain ones
    assert _decode_soft(weak) == key
    strong = soft.copy()
    strong[[3, 17, 40]] *= -1.0  # three wrong bits the decoder is sure of: not repaired
    assert _decode_soft(strong) is None
