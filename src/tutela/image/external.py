"""An external image classifier over HTTP, behind the same detector interface.

Why: platforms often already pay for a commercial classifier (or run their own model in
another service). This adapter lets it plug in as one more :class:`ImageDetector`; the
policy judges its signals like any other, and a failure of the service fails closed.

The JSON contract (version 1). Tutela sends::

    POST <url>
    Content-Type: application/json
    Authorization: Bearer <api_key>            (only when a key is configured)

    {"contract": "tutela.classifier.v1",
     "image": {"media_type": "image/jpeg", "data": "<base64>", "width": 1024, "height": 1024}}

The service answers ``200`` with::

    {"model": "vendor-model@1.2",                          (optional, kept as evidence)
     "signals": [
        {"kind": "nudity", "score": 0.93, "evidence": {"parts": [...]}},
        {"kind": "face_age", "score": 0.8, "evidence": {"age": 31, "box": [l, t, r, b]}},
        {"kind": "csam", "score": 0.02}
     ]}

``kind`` is one of :data:`ACCEPTED_KINDS`: ``nudity`` / ``intimate_covered`` /
``body_exposed`` (as NudeNet's), ``face_age`` (``evidence.age`` required, integer years),
``face``, and ``csam`` — a classifier's own probability that the image is sexual abuse
material of a minor. ``score`` is 0..1; ``evidence`` a JSON object (optional). An empty
list means "nothing found". Anything else — another status, a body that is not this JSON,
an unknown kind, a score out of range, a body over 1 MB, no answer within the timeout — is
a failure, which the runner reports as ``detector_error`` and the policy fails closed on.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Sequence
from typing import Any

import httpx
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tutela.decision import Signal
from tutela.errors import DetectorError
from tutela.image.detectors import ImageDetector

CONTRACT = "tutela.classifier.v1"
ACCEPTED_KINDS = frozenset(
    {"nudity", "intimate_covered", "body_exposed", "face", "face_age", "csam"}
)
MAX_RESPONSE_BYTES = 1_000_000


class _ExternalSignal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    evidence: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in ACCEPTED_KINDS:
            raise ValueError(f"unknown signal kind {v!r}; accepted: {sorted(ACCEPTED_KINDS)}")
        return v


class _ExternalAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, max_length=200)
    signals: list[_ExternalSignal] = Field(max_length=1000)


class HttpClassifierDetector(ImageDetector):
    """Calls a classifier service that speaks the contract above.

    One HTTP client (connection pool) per detector, created on first use; the ``timeout_s``
    bounds connect, write, read and pool wait alike. Images go out as JPEG (quality 90, a
    tenth of the size of PNG for photos) unless ``media_type`` says ``image/png``.
    """

    needed_for_minors = True

    def __init__(
        self,
        url: str,
        *,
        name: str = "external",
        api_key: str | None = None,
        timeout_s: float = 5.0,
        media_type: str = "image/jpeg",
        max_side: int | None = 1024,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"classifier URL must be http(s): {url!r}")
        if media_type not in ("image/jpeg", "image/png"):
            raise ValueError("media_type must be image/jpeg or image/png")
        self.name = name
        self.url = url
        self.timeout_s = timeout_s
        self.media_type = media_type
        self.max_side = max_side
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._ensure_client()

    def _ensure_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=httpx.Timeout(self.timeout_s))
            return self._client

    def request_body(self, image: Image.Image) -> dict[str, Any]:
        """The JSON document sent for ``image`` (public so the contract is testable)."""
        if self.max_side and max(image.size) > self.max_side:
            image = image.copy()
            image.thumbnail((self.max_side, self.max_side), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        if self.media_type == "image/png":
            image.save(buf, "PNG")
        else:
            image.convert("RGB").save(buf, "JPEG", quality=90)
        return {
            "contract": CONTRACT,
            "image": {
                "media_type": self.media_type,
                "data": base64.b64encode(buf.getvalue()).decode("ascii"),
                "width": image.width,
                "height": image.height,
            },
        }

    def detect(self, image: Image.Image, prior: Sequence[Signal] = ()) -> list[Signal]:
        client = self._ensure_client()
        body = json.dumps(self.request_body(image)).encode()
        try:
            with client.stream("POST", self.url, content=body, headers=self._headers) as resp:
                raw = _read_capped(resp)
                status = resp.status_code
        except httpx.TimeoutException as exc:
            raise DetectorError(f"{self.name}: no answer within {self.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise DetectorError(f"{self.name}: request failed: {exc}") from exc
        if status != 200:
            raise DetectorError(f"{self.name}: HTTP {status}: {raw[:200]!r}")
        return self.parse_answer(raw)

    def parse_answer(self, raw: bytes) -> list[Signal]:
        """Validate a response body and turn it into signals (raises DetectorError)."""
        try:
            answer = _ExternalAnswer.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise DetectorError(
                f"{self.name}: answer breaks the {CONTRACT} contract at {where}: {first['msg']}"
            ) from None
        signals = []
        for s in answer.signals:
            evidence = dict(s.evidence)
            if s.kind == "face_age" and not _is_age(evidence.get("age")):
                raise DetectorError(f"{self.name}: face_age signal without an integer age")
            if answer.model:
                evidence["model"] = answer.model
            signals.append(Signal(self.name, s.kind, s.score, evidence))
        return signals

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _is_age(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 120


def _read_capped(resp: httpx.Response) -> bytes:
    """The body, refusing more than :data:`MAX_RESPONSE_BYTES` (a hostile server can't OOM us)."""
    chunks, total = [], 0
    for chunk in resp.iter_bytes():
        total += len(chunk)
        if total > MAX_RESPONSE_BYTES:
            raise DetectorError(f"classifier answer larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
