"""PDQ perceptual hashes of a decoded image: the 8 dihedral hashes and the quality score.

Why PDQ: it is the hash the child-protection ecosystem shares (Meta's ThreatExchange, NCMEC
hash sharing, StopNCII), so banks received from partners can be matched without images ever
leaving anyone's premises. Why all 8 dihedral hashes: rotating or mirroring an image changes
its PDQ hash completely, and the C++ library computes the 8 variants almost for the price of
one; matching all 8 against the banks catches rotated and flipped copies.

Conventions (those of ThreatExchange, so our hex strings equal theirs for the same image):
the 256 bits as 64 lower-case hex characters, most significant bit first; the quality score
is 0..100 and hashes under quality 50 are too unreliable to match on (flat or near-empty
images): they are reported, never matched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pdqhash
from PIL import Image

# Order of pdqhash.compute_dihedral's results (the PDQ reference implementation's order).
DIHEDRAL_NAMES: tuple[str, ...] = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip_x",
    "flip_y",
    "flip_plus1",
    "flip_minus1",
)

QUALITY_THRESHOLD = 50
"""Hashes of lower quality are not matched (ThreatExchange's PdqSignal.QUALITY_THRESHOLD)."""

HASH_MAX_SIDE = 512
"""PDQ's documentation recommends hashing a downsample of about 512 px: the hash is computed
on a 64x64 box-filtered image anyway, so larger inputs only cost time."""


@dataclass(frozen=True, slots=True)
class PdqResult:
    """The 8 dihedral PDQ hashes (hex, in :data:`DIHEDRAL_NAMES` order) and their quality."""

    hashes: tuple[str, ...]
    quality: int

    @property
    def hash(self) -> str:
        """The hash of the image as it is (not rotated or flipped)."""
        return self.hashes[0]

    @property
    def matchable(self) -> bool:
        """Whether the quality is high enough for the hashes to be matched against banks."""
        return self.quality >= QUALITY_THRESHOLD

    def named(self) -> dict[str, str]:
        """The hashes keyed by transform name (for evidence a person reads)."""
        return dict(zip(DIHEDRAL_NAMES, self.hashes, strict=True))

    def to_dict(self) -> dict[str, object]:
        return {
            "hash": self.hash,
            "quality": self.quality,
            "matchable": self.matchable,
            "dihedral": self.named(),
        }


def bits_to_hex(bits: np.ndarray) -> str:
    """256 bits (MSB first, as pdqhash returns them) → 64 hex characters."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def prepare_for_hashing(image: Image.Image) -> np.ndarray:
    """The RGB uint8 array PDQ hashes: ``image`` downsampled to at most 512 px a side."""
    img = image if image.mode == "RGB" else image.convert("RGB")
    longest = max(img.size)
    if longest > HASH_MAX_SIDE:
        scale = HASH_MAX_SIDE / longest
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def hash_image(image: Image.Image) -> PdqResult:
    """PDQ-hash ``image`` (a PIL image, ideally from :func:`tutela.image.decode.decode_image`)."""
    array = prepare_for_hashing(image)
    vectors, quality = pdqhash.compute_dihedral(array)
    return PdqResult(hashes=tuple(bits_to_hex(v) for v in vectors), quality=int(quality))
