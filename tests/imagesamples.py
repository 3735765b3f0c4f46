"""Benign test images: scikit-image's bundled samples and pictures drawn by code.

Test-data rule (DESIGN.md): benign images only. Nothing here downloads anything; the
scikit-image samples used are the ones shipped inside its wheel.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw
from skimage import data as skdata

# Samples bundled in scikit-image's wheel (no download needed).
SAMPLE_NAMES = ("astronaut", "camera", "coffee", "chelsea", "rocket", "hubble_deep_field")


def sample(name: str) -> Image.Image:
    """One scikit-image sample as an RGB PIL image."""
    arr = getattr(skdata, name)()
    img = Image.fromarray(arr)
    return img.convert("RGB")


def drawn(seed: int, size: tuple[int, int] = (256, 256)) -> Image.Image:
    """A picture of random coloured shapes, different for each seed, always the same per seed."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, x1 = sorted(int(v) for v in rng.integers(0, size[0], 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, size[1], 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1 + 1, y1 + 1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1 + 1, y1 + 1), fill=colour)
    return img


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    """``img`` encoded as ``fmt`` ("JPEG", "PNG", "WEBP", ...)."""
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()
