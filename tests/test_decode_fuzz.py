"""Bad-input corpus: >= 1,000 mutated image files never crash or hang decode_image.

Each mutant is made from a benign image (scikit-image samples, pictures drawn by code) by
truncation, bit flips, overwritten headers, huge declared sizes, corrupted chunk lengths or
swapped magic bytes. Every mutant must either decode to a sane RGB image (a flipped bit in
JPEG entropy data can leave a valid, slightly different picture) or raise ImageError with a
clear message; the mutation families that cannot yield a valid image must raise. No other
exception may escape and no file may take long (an alarm turns a hang into a failure).
"""

from __future__ import annotations

import signal
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest
from imagesamples import SAMPLE_NAMES, drawn, encode, sample
from PIL import Image

from tutela.errors import ImageError
from tutela.image.decode import DecodedImage, decode_image

MAX_SECONDS_PER_FILE = 5
_PREFIXES = ("unsupported image type", "jpeg image", "png image", "webp image", "image is")


def _bases() -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for name in SAMPLE_NAMES[:4]:
        img = sample(name)
        img.thumbnail((96, 96))
        for fmt in ("JPEG", "PNG", "WEBP"):
            out.append((fmt, encode(img, fmt)))
    rgba = drawn(1, (80, 60)).convert("RGBA")
    out.append(("PNG", encode(rgba, "PNG")))
    out.append(("JPEG", encode(drawn(2, (70, 50)), "JPEG", progressive=True)))
    frames = [drawn(s, (48, 48)) for s in range(3)]
    out.append(("WEBP", encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])))
    out.append(("PNG", encode(frames[0], "PNG", save_all=True, append_images=frames[1:])))
    exif = Image.Exif()
    exif[0x0112] = 6
    out.append(("JPEG", encode(drawn(3, (64, 40)), "JPEG", exif=exif.tobytes())))
    return out


def _declare_huge(fmt: str, data: bytes, rng: np.random.Generator) -> bytes | None:
    """Patch the header's width/height to a huge canvas (a decompression-bomb header)."""
    buf = bytearray(data)
    w, h = (int(x) for x in rng.integers(7_000, 65_000, 2))
    if fmt == "PNG":
        buf[16:24] = struct.pack(">II", w, h)
        buf[29:33] = struct.pack(">I", zlib.crc32(bytes(buf[12:29])) & 0xFFFFFFFF)
        return bytes(buf)
    if fmt == "JPEG":
        for marker in (b"\xff\xc0", b"\xff\xc2"):
            at = buf.find(marker)
            if at > 0:
                buf[at + 5 : at + 9] = struct.pack(">HH", h, w)
                return bytes(buf)
        return None
    at = buf.find(b"VP8X")
    if at > 0:  # VP8X canvas: 24-bit (width-1), (height-1)
        buf[at + 12 : at + 15] = (w - 1).to_bytes(3, "little")
        buf[at + 15 : at + 18] = (h - 1).to_bytes(3, "little")
        return bytes(buf)
    at = buf.find(b"VP8 ")
    if at > 0:  # lossy key frame: 14-bit width and height after the start code
        buf[at + 14 : at + 16] = struct.pack("<H", min(w, 16_383))
        buf[at + 16 : at + 18] = struct.pack("<H", min(h, 16_383))
        return bytes(buf)
    return None


Mutant = tuple[str, str, bytes]  # (family, base format, bytes)


def _mutants() -> Iterator[Mutant]:
    rng = np.random.default_rng(20261123)
    magics = [
        b"\xff\xd8\xff\xe0",
        b"\x89PNG\r\n\x1a\n",
        b"RIFF\x00\x00\x00\x00WEBP",
        b"GIF89a",
        b"BM",
        b"%PDF-1.7",
        b"\x00\x00\x00\x0cjP  ",
    ]
    for fmt, data in _bases():
        n = len(data)
        for _ in range(20):  # truncations anywhere
            yield "truncated", fmt, data[: int(rng.integers(0, n - 1))]
        for _ in range(25):  # random bit flips
            buf = bytearray(data)
            for pos in rng.integers(0, n, int(rng.integers(1, 40))):
                buf[pos] ^= 1 << int(rng.integers(0, 8))
            yield "bitflip", fmt, bytes(buf)
        for _ in range(10):  # header bytes overwritten (magic kept or not)
            buf = bytearray(data)
            start = int(rng.integers(0, min(64, n)))
            length = int(rng.integers(1, 24))
            buf[start : start + length] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
            yield "header", fmt, bytes(buf)
        for magic in magics:  # wrong magic on a real body, or a real magic on another body
            yield "wrong_magic", fmt, magic + data[len(magic) :]
        for _ in range(5):
            huge = _declare_huge(fmt, data, rng)
            if huge is not None:
                yield "huge", fmt, huge
        for _ in range(8):  # garbage after a valid magic
            head = data[:12] if fmt == "WEBP" else data[:8]
            yield (
                "garbage",
                fmt,
                head + rng.integers(0, 256, int(rng.integers(0, 4_000)), dtype=np.uint8).tobytes(),
            )
        yield "appended", fmt, data + rng.integers(0, 256, 512, dtype=np.uint8).tobytes()
        yield "empty_tail", fmt, data[:2]


def _alarm(_signum: int, _frame: object) -> None:
    raise TimeoutError("decode_image hung")


def _check_valid(out: DecodedImage) -> None:
    assert out.image.mode == "RGB"
    assert out.image.size == (out.width, out.height)
    assert out.width * out.height <= 40_000_000
    out.image.getpixel((0, 0))


# Families where a valid image is impossible: each such mutant must raise ImageError.
MUST_FAIL = {"huge", "garbage", "empty_tail"}
_OWN_MAGIC = {"JPEG": b"\xff\xd8\xff", "PNG": b"\x89PNG", "WEBP": b"RIFF"}


def _must_fail(family: str, fmt: str, data: bytes) -> bool:
    if family == "wrong_magic":  # unless the magic written happens to be the format's own
        return not data.startswith(_OWN_MAGIC[fmt])
    return family in MUST_FAIL


def test_mutated_corpus_never_crashes_or_hangs() -> None:
    mutants = list(_mutants())
    assert len(mutants) >= 1_000
    outcomes: Counter[tuple[str, str]] = Counter()
    slowest = 0.0
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for family, fmt, data in mutants:
            signal.alarm(MAX_SECONDS_PER_FILE)
            start = time.perf_counter()
            try:
                out = decode_image(data)
            except ImageError as exc:
                message = str(exc)
                assert message.startswith(_PREFIXES), message
                assert len(message) < 400 and "<_io." not in message
                outcomes[(family, "error")] += 1
            else:
                _check_valid(out)
                if _must_fail(family, fmt, data):
                    pytest.fail(f"{family} mutant of {fmt} decoded without error")
                outcomes[(family, "decoded")] += 1
            finally:
                signal.alarm(0)
            slowest = max(slowest, time.perf_counter() - start)
    finally:
        signal.signal(signal.SIGALRM, previous)
    errors = sum(v for (_, kind), v in outcomes.items() if kind == "error")
    assert errors >= 800, outcomes  # most mutants are unusable and were refused
    assert outcomes[("truncated", "error")] >= 300, outcomes
    assert slowest < MAX_SECONDS_PER_FILE
