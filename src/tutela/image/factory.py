"""Builds the image inspector a Guard uses from its settings.

Why here and not in the Guard: which detectors run, in what order and with which options is
image knowledge (NudeNet first, so the age estimator can take its face boxes); the Guard
only asks for "the inspector" and stays orchestration.
"""

from __future__ import annotations

from tutela.config import Settings
from tutela.image.detectors import ImageDetector
from tutela.image.inspect import HashMatcher, ImageInspector


def build_detectors(settings: Settings) -> list[ImageDetector]:
    """The detectors named by ``settings.image_detectors`` (in order), then the external
    classifier when ``image_classifier_url`` is set. Models load on first use."""
    from tutela.image.age import FaceAgeDetector
    from tutela.image.external import HttpClassifierDetector
    from tutela.image.nudity import NudityDetector

    detectors: list[ImageDetector] = []
    names = list(dict.fromkeys(settings.image_detectors))
    for name in names:
        if name == "nudenet":
            detectors.append(NudityDetector(threads=settings.onnx_threads))
        elif name == "age":
            hints = NudityDetector.name if "nudenet" in names else None
            detectors.append(FaceAgeDetector(face_hints_from=hints))
    if settings.image_classifier_url:
        key = settings.image_classifier_key
        detectors.append(
            HttpClassifierDetector(
                settings.image_classifier_url,
                api_key=key.get_secret_value() if key else None,
                timeout_s=settings.image_classifier_timeout_s,
            )
        )
    return detectors


def build_inspector(settings: Settings, matcher: HashMatcher | None) -> ImageInspector:
    return ImageInspector(
        build_detectors(settings),
        matcher=matcher,
        timeout_s=settings.image_detector_timeout_s,
        max_bytes=settings.image_max_bytes,
        max_pixels=settings.image_max_pixels,
    )
