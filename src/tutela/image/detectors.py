"""The one interface every image detector implements, and the runner that fails closed.

Why an interface: NudeNet, the face-age estimator and any commercial classifier behind HTTP
must be interchangeable and testable the same way. A detector looks at an image and returns
:class:`~tutela.decision.Signal` objects — it never decides. The policy decides, so a
recorded detector output (hand-written JSON in the tests) exercises exactly the code path a
real model does.

Why a runner: a detector that raises or takes too long must not turn into an ``allow``. The
runner turns every failure into a ``detector_error`` signal naming the detector, and the
policy turns that into ``block`` (or ``review``, where the policy says so).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from PIL import Image

from tutela.decision import Signal

DETECTOR_ERROR = "detector_error"
"""Signal kind for a detector that raised or timed out (evidence: ``error``, ``timeout``)."""


class ImageDetector(ABC):
    """Looks at one RGB image and reports what it saw as signals.

    Implementations load their model lazily, once per process (see :meth:`warm_up`), and
    must be safe to call from one worker thread at a time. ``needed_for_minors`` says
    whether the ``sexual_minors`` judgement depends on this detector: a failure of such a
    detector fails closed.
    """

    name: str = "detector"
    needed_for_minors: bool = True

    @abstractmethod
    def detect(self, image: Image.Image, prior: Sequence[Signal] = ()) -> list[Signal]:
        """Signals for ``image`` (an RGB PIL image). Raise on failure; never guess.

        ``prior`` holds the signals of the detectors that ran before this one on the same
        image, so a detector can reuse their work (the age estimator takes NudeNet's face
        boxes instead of searching the whole image again).
        """

    def warm_up(self) -> None:  # noqa: B027 - optional hook, most detectors load lazily
        """Load the model now (e.g. at service start) instead of on the first request."""


@dataclass(slots=True)
class DetectorRun:
    """What running all detectors on one image produced, with per-detector latency."""

    signals: list[Signal] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


def error_signal(detector: ImageDetector, error: str, *, timeout: bool = False) -> Signal:
    """The signal that stands for a failed detector; the policy fails closed on it."""
    return Signal(
        detector=detector.name,
        kind=DETECTOR_ERROR,
        score=1.0,
        evidence={
            "error": error,
            "timeout": timeout,
            "needed_for_minors": detector.needed_for_minors,
        },
    )


class DetectorRunner:
    """Runs detectors with a time limit each and turns failures into error signals.

    Detectors run one after another, in the order given, each seeing the signals of those
    before it (the latency budget is one core, so running them side by side would buy
    nothing). Each runs on a worker thread so that the caller can stop waiting: a detector
    that overruns the time left of ``timeout_s`` (one budget for the whole image) is
    reported as failed, and so is every detector after it. Its thread cannot be killed and
    finishes in the background, which is why each detector keeps its own lock and the pool
    has spare threads.
    """

    def __init__(self, detectors: Sequence[ImageDetector], timeout_s: float = 10.0) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.detectors = list(detectors)
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(
            max_workers=max(2, 2 * len(self.detectors)), thread_name_prefix="tutela-detector"
        )

    def run(self, image: Image.Image) -> DetectorRun:
        """Every detector's signals for ``image``; failures become ``detector_error``."""
        out = DetectorRun()
        started = time.perf_counter()
        for detector in self.detectors:
            remaining = self.timeout_s - (time.perf_counter() - started)
            if remaining <= 0:
                spent = f"not run: the {self.timeout_s:g} s budget was spent"
                out.signals.append(error_signal(detector, spent, timeout=True))
                out.failed.append(detector.name)
                continue
            future: Future[tuple[list[Signal], float]] = self._pool.submit(
                _timed, detector, image, tuple(out.signals)
            )
            try:
                signals, seconds = future.result(timeout=remaining)
            except FutureTimeout:
                out.signals.append(
                    error_signal(detector, f"timed out after {self.timeout_s:g} s", timeout=True)
                )
                out.failed.append(detector.name)
                continue
            except Exception as exc:  # any failure of any detector must fail closed
                out.signals.append(error_signal(detector, f"{type(exc).__name__}: {exc}"))
                out.failed.append(detector.name)
                continue
            out.signals.extend(signals)
            out.seconds[detector.name] = seconds
        return out

    def warm_up(self) -> None:
        for d in self.detectors:
            d.warm_up()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _timed(
    detector: ImageDetector, image: Image.Image, prior: tuple[Signal, ...]
) -> tuple[list[Signal], float]:
    t0 = time.perf_counter()
    signals = detector.detect(image, prior)
    return list(signals), time.perf_counter() - t0
