"""The external classifier adapter against a fake classifier served on 127.0.0.1 by the test."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from imagesamples import drawn
from PIL import Image

from tutela.decision import Verdict
from tutela.errors import DetectorError
from tutela.image.detectors import DETECTOR_ERROR, DetectorRunner
from tutela.image.external import CONTRACT, HttpClassifierDetector
from tutela.policy import Policy


class FakeClassifier:
    """A tiny classifier service: answers each POST with the next scripted reply."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, bytes, float]] = []
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                outer.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                status, payload, delay = outer.replies.pop(0)
                if delay:
                    outer.release.wait(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (timeout test)
                    self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/classify"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def reply(self, payload: Any, status: int = 200, delay: float = 0.0) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.replies.append((status, raw, delay))

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeClassifier]:
    server = FakeClassifier()
    yield server
    server.stop()


IMG = drawn(11, (640, 480))


def test_request_follows_the_contract(fake: FakeClassifier) -> None:
    fake.reply({"model": "fake@1", "signals": []})
    det = HttpClassifierDetector(fake.url, api_key="s3cret", max_side=320)
    assert det.detect(IMG) == []
    (req,) = fake.requests
    assert req["auth"] == "Bearer s3cret"
    body = req["body"]
    assert body["contract"] == CONTRACT
    assert body["image"]["media_type"] == "image/jpeg"
    sent = Image.open(io.BytesIO(base64.b64decode(body["image"]["data"])))
    assert sent.format == "JPEG" and sent.size == (320, 240)
    assert (body["image"]["width"], body["image"]["height"]) == (320, 240)
    det.close()


def test_answer_becomes_signals_and_a_csam_score_blocks(fake: FakeClassifier) -> None:
    fake.reply(
        {
            "model": "fake@1",
            "signals": [
                {"kind": "csam", "score": 0.91},
                {"kind": "face_age", "score": 0.7, "evidence": {"age": 30, "box": [1, 2, 3, 4]}},
            ],
        }
    )
    det = HttpClassifierDetector(fake.url, name="vendor")
    signals = det.detect(IMG)
    assert [(s.detector, s.kind, s.score) for s in signals] == [
        ("vendor", "csam", 0.91),
        ("vendor", "face_age", 0.7),
    ]
    assert signals[1].evidence["model"] == "fake@1"
    judgement = Policy.load().judge_image(signals)
    assert judgement.verdict is Verdict.BLOCK
    assert judgement.categories["sexual_minors"] == pytest.approx(0.91)
    det.close()


@pytest.mark.parametrize(
    ("status", "payload", "message"),
    [
        (500, {"error": "overloaded"}, "HTTP 500"),
        (200, b"<html>not json</html>", "contract"),
        (200, {"signals": [{"kind": "weird", "score": 0.5}]}, "unknown signal kind"),
        (200, {"signals": [{"kind": "nudity", "score": 7}]}, "contract"),
        (200, {"signals": [{"kind": "face_age", "score": 0.5}]}, "integer age"),
        (200, {"no_signals": True}, "contract"),
        (200, b"x" * 1_100_000, "larger than"),
    ],
    ids=["5xx", "html", "unknown-kind", "score-range", "age-missing", "no-signals", "huge"],
)
def test_bad_answers_are_detector_errors(
    fake: FakeClassifier, status: int, payload: Any, message: str
) -> None:
    fake.reply(payload, status=status)
    det = HttpClassifierDetector(fake.url)
    with pytest.raises(DetectorError, match=message):
        det.detect(IMG)
    det.close()


def test_timeout_fails_closed_through_the_runner(fake: FakeClassifier) -> None:
    fake.reply({"signals": []}, delay=5.0)
    det = HttpClassifierDetector(fake.url, timeout_s=0.3)
    run = DetectorRunner([det], timeout_s=10).run(IMG)
    (err,) = run.signals
    assert err.kind == DETECTOR_ERROR and "no answer within 0.3 s" in err.evidence["error"]
    assert Policy.load().judge_image(run.signals).verdict is Verdict.BLOCK
    det.close()


def test_unreachable_service_fails_closed() -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    det = HttpClassifierDetector(f"http://127.0.0.1:{port}/x", timeout_s=1)
    run = DetectorRunner([det]).run(IMG)
    assert run.failed == ["external"]
    assert Policy.load().judge_image(run.signals).verdict is Verdict.BLOCK


def test_only_http_urls() -> None:
    with pytest.raises(ValueError):
        HttpClassifierDetector("file:///etc/passwd")
