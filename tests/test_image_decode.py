"""decode_image: accepted formats, limits checked before decoding, normalisation, clear errors."""

from __future__ import annotations

import struct
import zlib

import pytest
from imagesamples import drawn, encode, sample
from PIL import Image

from tutela.errors import ImageError
from tutela.image.decode import decode_image, sniff_format


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp")])
def test_decodes_accepted_formats(fmt: str, name: str) -> None:
    img = drawn(1, (200, 120))
    out = decode_image(encode(img, fmt))
    assert out.format == name
    assert (out.width, out.height) == (200, 120)
    assert out.image.mode == "RGB"
    assert out.image.size == (200, 120)
    assert not out.animated
    assert out.notes == []


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "ICO"])
def test_refuses_other_image_types(fmt: str) -> None:
    with pytest.raises(ImageError, match="unsupported image type"):
        decode_image(encode(drawn(2, (32, 32)), fmt))


def test_refuses_non_images_and_empty() -> None:
    with pytest.raises(ImageError, match="unsupported image type"):
        decode_image(b"<html><body>not an image</body></html>")
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")
    with pytest.raises(ImageError, match="must be bytes"):
        decode_image("a string")  # type: ignore[arg-type]


def test_type_comes_from_magic_bytes() -> None:
    png = encode(drawn(3), "PNG")
    assert sniff_format(png) == "png"
    assert sniff_format(encode(drawn(3), "JPEG")) == "jpeg"
    assert sniff_format(encode(drawn(3), "WEBP")) == "webp"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None


def test_byte_limit_checked_first() -> None:
    data = encode(drawn(4), "PNG")
    with pytest.raises(ImageError, match="bytes; the limit is"):
        decode_image(data, max_bytes=len(data) - 1)
    assert decode_image(data, max_bytes=len(data)).width == 256


def test_pixel_limit() -> None:
    data = encode(drawn(5, (100, 100)), "PNG")
    with pytest.raises(ImageError, match="10,000 pixels; the limit is 9,999"):
        decode_image(data, max_pixels=9_999)
    assert decode_image(data, max_pixels=10_000).height == 100


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def _png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header declaring a huge canvas whose pixels are all zero (compresses ~1000:1)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    body = b"".join(compressor.compress(row) for _ in range(min(height, 64)))
    body += compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


def test_png_bomb_refused_from_header() -> None:
    bomb = _png_bomb(60_000, 60_000)  # 3.6 gigapixels declared, a few kB on disk
    assert len(bomb) < 200_000
    # Either our limit or Pillow's own bomb guard (hit first at this size) must answer.
    with pytest.raises(ImageError, match=r"decompression bomb.*3600000000 pixels"):
        decode_image(bomb)


def test_our_pixel_limit_answers_below_pillows() -> None:
    bomb = _png_bomb(7_000, 7_000)  # 49 MP: under Pillow's guard, over our default 40 MP
    with pytest.raises(ImageError, match="7000x7000 = 49,000,000 pixels; the limit"):
        decode_image(bomb)


def test_jpeg_declaring_huge_size_refused() -> None:
    data = bytearray(encode(drawn(6, (64, 48)), "JPEG"))
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65_000, 65_000)  # height, width
    with pytest.raises(ImageError, match="4225000000 pixels"):
        decode_image(bytes(data))
    data[sof + 5 : sof + 9] = struct.pack(">HH", 8_000, 6_000)  # under Pillow's, over ours
    with pytest.raises(ImageError, match="48,000,000 pixels; the limit is 40,000,000"):
        decode_image(bytes(data))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_clear_errors(fmt: str) -> None:
    data = encode(sample("astronaut"), fmt)
    for cut in (len(data) // 2, len(data) - 100, 20):
        with pytest.raises(ImageError, match=r"corrupt or truncated|unsupported"):
            decode_image(data[:cut])


def test_exif_orientation_applied() -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = decode_image(encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert (out.width, out.height) == (20, 40)
    r, _g, b = out.image.getpixel((10, 5))  # blue half is now on top
    assert b > 200 and r < 60


def test_alpha_flattened_onto_white() -> None:
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    img.putpixel((5, 5), (0, 128, 0, 255))
    for fmt in ("PNG", "WEBP"):
        out = decode_image(encode(img, fmt, lossless=True) if fmt == "WEBP" else encode(img, fmt))
        assert out.image.mode == "RGB"
        assert out.image.getpixel((0, 0)) == (255, 255, 255)
        assert out.image.getpixel((5, 5)) == (0, 128, 0)


def test_palette_transparency_and_greyscale_alpha() -> None:
    p = Image.new("P", (8, 8), 0)
    p.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    p.putpixel((1, 1), 1)
    out = decode_image(encode(p, "PNG", transparency=0))
    assert out.image.getpixel((0, 0)) == (255, 255, 255)
    assert out.image.getpixel((1, 1)) == (200, 10, 10)
    la = Image.new("LA", (4, 4), (0, 0))
    assert decode_image(encode(la, "PNG")).image.getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_png_scaled_not_clipped() -> None:
    img = Image.new("I;16", (4, 4), 32768)
    out = decode_image(encode(img, "PNG"))
    value = out.image.getpixel((0, 0))[0]
    assert 120 <= value <= 135


@pytest.mark.parametrize(("fmt", "name"), [("WEBP", "webp"), ("PNG", "png")])
def test_animation_first_frame_and_noted(fmt: str, name: str) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(
        frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, lossless=True
    )
    out = decode_image(data)
    assert out.animated
    assert out.notes == [f"animated {name}: first frame of 3 checked"]
    assert out.image.getpixel((8, 8)) == (255, 0, 0)


def test_cmyk_jpeg_becomes_rgb() -> None:
    out = decode_image(encode(drawn(7).convert("CMYK"), "JPEG"))
    assert out.image.mode == "RGB"
