"""Nudity detection with NudeNet: body-part labels, boxes and scores, as signals.

Why NudeNet: its detector (a small YOLO model, ``320n.onnx``) ships inside the PyPI wheel,
runs offline on ONNX Runtime and names *which* body part it saw and whether it was exposed
or covered, with a box — evidence a reviewer can check, not a bare "NSFW" score.

The detector reports three kinds of signal, and never decides:

- ``nudity`` — exposed intimate parts (breasts, genitalia, buttocks, anus); score = the
  strongest detection;
- ``intimate_covered`` — the same parts, covered (swimwear, underwear);
- ``body_exposed`` — other exposed skin NudeNet labels (belly, armpits, feet, male chest),
  which on their own mean nothing sexual (a child at the beach) and are kept as evidence.

- ``face`` — one per face NudeNet found, with its box: the age estimator
  (:mod:`tutela.image.age`) takes these instead of searching the image again.

Boxes are ``[left, top, right, bottom]`` in pixels of the original image everywhere in
Tutela.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from tutela.decision import Signal
from tutela.image.detectors import ImageDetector

EXPOSED_INTIMATE = frozenset(
    {
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)
COVERED_INTIMATE = frozenset(
    {"FEMALE_BREAST_COVERED", "FEMALE_GENITALIA_COVERED", "BUTTOCKS_COVERED", "ANUS_COVERED"}
)
EXPOSED_OTHER = frozenset(
    {"MALE_BREAST_EXPOSED", "BELLY_EXPOSED", "ARMPITS_EXPOSED", "FEET_EXPOSED"}
)
FACES = frozenset({"FACE_FEMALE", "FACE_MALE"})
IGNORED = frozenset({"BELLY_COVERED", "FEET_COVERED", "ARMPITS_COVERED"})
KNOWN_LABELS = EXPOSED_INTIMATE | COVERED_INTIMATE | EXPOSED_OTHER | FACES | IGNORED

_KIND_OF = (
    ("nudity", EXPOSED_INTIMATE),
    ("intimate_covered", COVERED_INTIMATE),
    ("body_exposed", EXPOSED_OTHER),
)


class NudeNetModel(Protocol):
    """What :class:`NudityDetector` needs from a model: NudeNet's ``detect`` on a BGR array.

    Each detection is ``{"class": LABEL, "score": float, "box": [x, y, w, h]}`` in pixels of
    the array given. Tests pass recorded outputs through this same protocol.
    """

    def detect(self, image_path: np.ndarray) -> list[dict[str, Any]]: ...


def signals_from_detections(
    detections: Iterable[Mapping[str, Any]],
    *,
    scale: float = 1.0,
    detector: str = "nudenet",
) -> list[Signal]:
    """Group NudeNet detections into ``nudity`` / ``intimate_covered`` / ``body_exposed``
    signals (one each, listing the parts) and one ``face`` signal per face.

    ``scale`` maps boxes from the array the model saw back to the original image; NudeNet's
    ``[x, y, w, h]`` becomes ``[left, top, right, bottom]``. Unknown labels raise
    :class:`ValueError`: a model update that renames labels must not silently turn exposed
    nudity into "nothing found".
    """
    grouped: dict[str, list[dict[str, Any]]] = {}
    faces: list[Signal] = []
    for det in detections:
        label = str(det["class"])
        if label not in KNOWN_LABELS:
            raise ValueError(f"unknown NudeNet label {label!r}")
        score = float(det["score"])
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"NudeNet score out of range: {score!r}")
        x, y, w, h = (float(v) * scale for v in det["box"])
        if w < 0 or h < 0:
            raise ValueError(f"NudeNet box with negative size: {det['box']!r}")
        box = [round(x), round(y), round(x + w), round(y + h)]
        if label in FACES:
            faces.append(Signal(detector, "face", score, {"box": box, "label": label}))
            continue
        for kind, labels in _KIND_OF:
            if label in labels:
                grouped.setdefault(kind, []).append(
                    {"label": label, "score": round(score, 4), "box": box}
                )
    signals = []
    for kind, _labels in _KIND_OF:
        parts = sorted(grouped.get(kind, ()), key=lambda p: -p["score"])
        if parts:
            signals.append(Signal(detector, kind, parts[0]["score"], {"parts": parts}))
    return signals + faces


class NudityDetector(ImageDetector):
    """NudeNet behind the :class:`ImageDetector` interface.

    The model is built on first use (or :meth:`warm_up`) and shared by every call in the
    process. Images are scaled so the longest side is at most ``max_side`` before NudeNet
    sees them: the network works at 320x320 anyway, and shrinking a 1024² image with a
    proper filter first is both faster and gives the network a cleaner input than its own
    nearest-neighbour-like resize.
    """

    name = "nudenet"
    needed_for_minors = True

    def __init__(
        self,
        model: NudeNetModel | None = None,
        *,
        threads: int = 1,
        max_side: int = 320,
    ) -> None:
        self._model = model
        self._threads = threads
        self.max_side = max_side
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._ensure_model()

    def _ensure_model(self) -> NudeNetModel:
        with self._lock:
            if self._model is None:
                self._model = _load_nudenet(self._threads)
            return self._model

    def detect(self, image: Image.Image, prior: Sequence[Signal] = ()) -> list[Signal]:
        model = self._ensure_model()
        if image.mode != "RGB":  # the inspector hands RGB; others may not
            image = image.convert("RGB")
        scale = 1.0
        longest = max(image.size)
        if longest > self.max_side:
            scale = longest / self.max_side
            size = (max(1, round(image.width / scale)), max(1, round(image.height / scale)))
            image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=1.0)
        # NudeNet follows OpenCV: a BGR array.
        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
        with self._lock:
            detections = model.detect(bgr)
        return signals_from_detections(detections, scale=scale, detector=self.name)


def _load_nudenet(threads: int) -> NudeNetModel:
    """NudeNet's detector on a session tuned by :func:`tutela.image.onnx.session_options`.

    ``NudeDetector.__init__`` builds its session with ONNX Runtime's defaults (all cores), so
    we build the same object around our own session; the model file is the one in the wheel.
    """
    from nudenet import NudeDetector

    from tutela.image.onnx import cpu_session

    model_path = Path(str(resources.files("nudenet").joinpath("320n.onnx")))
    if not model_path.is_file():
        raise FileNotFoundError(f"NudeNet model missing from the installed wheel: {model_path}")
    detector = NudeDetector.__new__(NudeDetector)
    detector.onnx_session = cpu_session(model_path, threads)
    detector.input_width = detector.input_height = 320
    detector.input_name = detector.onnx_session.get_inputs()[0].name
    return detector

