"""Everything Tutela looks at in one image, as signals: decoding, PDQ, bank matches, detectors.

Why a module between the Guard and the detectors: the three image flows (outputs, uploads,
sources of edits) look at an image the same way, and the benchmark must time the same
stages the service runs. The inspector only gathers signals; the policy judges them and the
Guard records the decision.

Every stage that the ``sexual_minors`` judgement depends on fails closed: a hash matcher or
detector that raises becomes a ``detector_error`` signal, never a silent "nothing found".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from tutela.decision import Signal
from tutela.errors import ImageError
from tutela.image.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, DecodedImage, decode_image
from tutela.image.detectors import DETECTOR_ERROR, DetectorRunner, ImageDetector
from tutela.image.pdq import PdqResult, hash_image

ImageInput = bytes | bytearray | memoryview | Image.Image
"""An image as the flows accept it: encoded bytes (decoded safely) or a PIL image."""



class _MatchResult(Protocol):
    def signals(self) -> list[Signal]: ...


class HashMatcher(Protocol):
    """Matches an image's PDQ hashes against the banks (:class:`tutela.hashes.matcher.
    BankMatcher`); the result's ``signals()`` are ``hash_match`` & co. for the policy."""

    def match(self, image_hashes: PdqResult) -> _MatchResult: ...


@dataclass(slots=True)
class Inspection:
    """What was seen in one image, with the time each stage took (seconds)."""

    image: Image.Image
    width: int
    height: int
    format: str | None
    notes: list[str]
    pdq: PdqResult | None
    signals: list[Signal]
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """Facts about the image for the decision's evidence (no pixels, no hashes of faces)."""
        return {
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "notes": list(self.notes),
        }


class ImageInspector:
    """Decodes, hashes, matches and runs the detectors on images, with fixed limits."""

    def __init__(
        self,
        detectors: Sequence[ImageDetector],
        *,
        matcher: HashMatcher | None = None,
        timeout_s: float = 10.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.runner = DetectorRunner(detectors, timeout_s=timeout_s)
        self.matcher = matcher
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    @property
    def detectors(self) -> list[ImageDetector]:
        return self.runner.detectors

    def warm_up(self) -> None:
        """Load every model now, so the first request does not pay for it."""
        self.runner.warm_up()

    def use_detectors(self, detectors: Sequence[ImageDetector]) -> None:
        """Replace the detectors (a platform's own, or recorded ones in tests)."""
        old, self.runner = self.runner, DetectorRunner(detectors, timeout_s=self.runner.timeout_s)
        old.close()

    def load(self, image: ImageInput) -> DecodedImage:
        """``image`` as a :class:`DecodedImage`: bytes are decoded under the limits, a PIL
        image is checked against the pixel limit and flattened to RGB."""
        if isinstance(image, Image.Image):
            return self._from_pil(image)
        if isinstance(image, bytes | bytearray | memoryview):
            return decode_image(bytes(image), max_bytes=self.max_bytes, max_pixels=self.max_pixels)
        raise ImageError(f"an image must be bytes or a PIL image, not {type(image).__name__}")

    def _from_pil(self, image: Image.Image) -> DecodedImage:
        from tutela.image.decode import _to_rgb  # the one place alpha flattening is defined

        w, h = image.size
        if w <= 0 or h <= 0:
            raise ImageError(f"image has an empty canvas ({w}x{h})")
        if w * h > self.max_pixels:
            raise ImageError(
                f"image is {w}x{h} = {w * h:,} pixels; the limit is {self.max_pixels:,}"
            )
        rgb = _to_rgb(image)
        fmt = (image.format or "").lower() or None
        return DecodedImage(rgb, fmt, rgb.width, rgb.height)  # type: ignore[arg-type]

    def inspect(self, image: ImageInput, *, match: bool = True, detect: bool = True) -> Inspection:
        """Every signal for ``image``. Raises :class:`ImageError` for undecodable input.

        ``detect=False`` stops after the hash banks: no model runs (a suspended account's
        image is blocked before any detector, yet known material in it is still matched,
        reported and preserved)."""
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        decoded = self.load(image)
        seconds["decode"] = time.perf_counter() - t0

        signals: list[Signal] = []
        t0 = time.perf_counter()
        pdq = hash_image(decoded.image)
        seconds["pdq"] = time.perf_counter() - t0
        signals.append(pdq_signal(pdq))

        if match and self.matcher is not None:
            t0 = time.perf_counter()
            signals += self._match(pdq)
            seconds["match"] = time.perf_counter() - t0

        if detect:
            run = self.runner.run(decoded.image)
            signals += run.signals
            seconds.update(run.seconds)
        return Inspection(
            image=decoded.image,
            width=decoded.width,
            height=decoded.height,
            format=decoded.format,
            notes=list(decoded.notes),
            pdq=pdq,
            signals=signals,
            seconds=seconds,
        )

    def _match(self, pdq: PdqResult) -> list[Signal]:
        """Bank matches (the matcher reports hashes too weak to match); a matcher failure
        (database down ...) is a failed detector."""
        try:
            return self.matcher.match(pdq).signals() if self.matcher else []
        except Exception as exc:  # a matcher that cannot answer must not mean "no match"
            return [
                Signal(
                    "hash-banks",
                    DETECTOR_ERROR,
                    1.0,
                    {"error": f"{type(exc).__name__}: {exc}", "timeout": False,
                     "needed_for_minors": True},
                )
            ]

    def close(self) -> None:
        self.runner.close()


def pdq_signal(pdq: PdqResult) -> Signal:
    """The image's PDQ hash as a signal: kept with the decision (hashes, not images), and
    the place where a hash too weak to match (quality < 50) is reported."""
    return Signal(
        "pdq",
        "pdq",
        pdq.quality / 100.0,
        {"hash": pdq.hash, "quality": pdq.quality, "matchable": pdq.matchable},
    )
