"""Safe decoding of untrusted image bytes into one RGB picture that every detector can read.

Why a module of its own: every image Tutela sees comes from outside (a user's upload, a
generator's output, a file on disk) and image decoders are a classic attack surface. So:

- the type is decided by the file's magic bytes, never by its name or a client's header,
  and only JPEG, PNG and WebP are accepted (what image generators emit and users upload);
- the byte limit is checked before anything is parsed, and the pixel limit is checked after
  reading only the header (Pillow's ``open`` is lazy), so a small file that declares a huge
  canvas (a decompression bomb) is refused before a single pixel buffer is allocated;
- every failure of the decoder (truncated, corrupt, bomb) becomes :class:`ImageError` with a
  message a caller can act on; nothing else escapes;
- the result is normalised once (EXIF orientation applied, alpha flattened onto white, first
  frame of an animation, mode RGB) so hashing, nudity and age detectors all see the same
  picture a viewer would see.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image, ImageOps

from tutela.errors import ImageError

ImageFormat = Literal["jpeg", "png", "webp"]

DEFAULT_MAX_BYTES = 20_000_000
DEFAULT_MAX_PIXELS = 40_000_000

# Pillow format names for the formats we accept; passed to Image.open so that Pillow's own
# sniffing can never pick another (less hardened) plugin for the same bytes.
_PIL_FORMATS: dict[ImageFormat, str] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}

# Errors decoders raise on bad data. MemoryError is included on purpose: a crafted file that
# exhausts memory in a decoder must still come back as "this image cannot be decoded".
_DECODER_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    EOFError,
    IndexError,
    KeyError,
    ZeroDivisionError,
    OverflowError,
    MemoryError,
    struct.error,
    Image.DecompressionBombError,
)


@dataclass(slots=True)
class DecodedImage:
    """An image safe to hand to detectors: RGB, upright, opaque, one frame.

    ``width``/``height`` are those of :attr:`image` (after EXIF rotation). ``notes`` tell a
    reviewer what was done to the picture that they might not expect (only the first frame
    of an animation was checked, EXIF orientation could not be read ...).
    """

    image: Image.Image
    format: ImageFormat
    width: int
    height: int
    animated: bool = False
    notes: list[str] = field(default_factory=list)


def sniff_format(data: bytes) -> ImageFormat | None:
    """The format announced by the first bytes of ``data``, or None if it is not one we take."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode_image(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodedImage:
    """Decode untrusted ``data`` (JPEG, PNG or WebP) into a :class:`DecodedImage`.

    Raises :class:`ImageError` for anything that is not a complete, sane image within the
    limits; the message names the reason (type, size, pixel count, truncation, corruption).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageError(f"image data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ImageError("image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageError(f"image is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(
            "unsupported image type: only JPEG, PNG and WebP are accepted "
            f"(first bytes: {data[:8].hex()})"
        )

    with warnings.catch_warnings():
        # Pillow warns (DecompressionBombWarning) between its own limit and twice it; our
        # explicit pixel limit below is the one that decides, so the warning is noise here.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return _decode(data, fmt, max_pixels)
        except ImageError:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{fmt} image refused as a decompression bomb: {exc}") from None
        except _DECODER_ERRORS as exc:
            raise ImageError(f"{fmt} image is corrupt or truncated: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "the decoder ran out of memory"
    text = str(exc).strip()
    if text.startswith("cannot identify image file"):
        # Pillow appends the repr of our in-memory buffer: useless to a caller.
        return "not a readable file of this type"
    return text[:200] or type(exc).__name__


def _decode(data: bytes, fmt: ImageFormat, max_pixels: int) -> DecodedImage:
    img = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]])
    # Only the header has been read so far: refuse oversized canvases before decoding.
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(f"{fmt} image declares an empty canvas ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(
            f"{fmt} image declares {width}x{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,} pixels"
        )

    notes: list[str] = []
    frames = int(getattr(img, "n_frames", 1) or 1)
    animated = bool(getattr(img, "is_animated", False)) or frames > 1
    if animated:
        img.seek(0)
        notes.append(f"animated {fmt}: first frame of {frames} checked")

    img.load()  # full decode of (the first frame of) the image; raises on truncation
    upright = _apply_orientation(img, notes)
    rgb = _to_rgb(upright)
    return DecodedImage(
        image=rgb,
        format=fmt,
        width=rgb.width,
        height=rgb.height,
        animated=animated,
        notes=notes,
    )


def _apply_orientation(img: Image.Image, notes: list[str]) -> Image.Image:
    """Rotate/flip as the EXIF Orientation tag says, so detectors see what a viewer sees.

    A damaged EXIF block does not make the picture unreadable, so it is noted, not refused.
    """
    try:
        upright = ImageOps.exif_transpose(img)
    except _DECODER_ERRORS as exc:
        notes.append(f"EXIF orientation unreadable ({_reason(exc)}); image used as stored")
        return img
    return upright if upright is not None else img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, compositing transparency onto white.

    White rather than black because that is how browsers and galleries show transparent
    images, and a detector should judge what a person would see.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and integer greyscale: scale to 8 bits ourselves; Pillow's direct
        # conversion to RGB clips instead of scaling.
        img = img.convert("I").point(lambda v: v / 256).convert("L")
    has_alpha = (
        img.mode in ("RGBA", "LA", "PA", "RGBa", "La")
        or (img.mode == "P" and "transparency" in img.info)
        or (img.mode in ("RGB", "L") and "transparency" in img.info)
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode != "RGB":
        return img.convert("RGB")
    return img
