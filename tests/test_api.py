"""The HTTP service in-process (the real app, a real database): auth, scopes, limits, errors.

Each test builds the app around its own Guard on a temporary SQLite store (and, where it
matters, on PostgreSQL), then talks to it through Starlette's test client.
"""

from __future__ import annotations

import importlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tutela import Guard
from tutela.api import auth
from tutela.api.app import ROUTER_MODULES, create_app

BLOCKED = "naked child"  # a short filter test string the default policy blocks
ALLOWED = "a watercolour of a lighthouse at dawn"
JSON_TYPE = {"content-type": "application/json"}


class Service:
    """A running app plus keys of every scope."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.client = TestClient(create_app(guard), raise_server_exceptions=False)
        self.keys = {s: guard.store.api_keys.create(s, f"{s} key")[1] for s in
                     ("check", "review", "admin")}

    def headers(self, scope: str = "check", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}", **extra}

    def check(self, text: str = ALLOWED, account: str = "acct-1", **kw: Any) -> Any:
        return self.client.post(
            "/v1/prompts/check",
            json={"text": text, "account": account},
            headers=kw.pop("headers", None) or self.headers(),
            **kw,
        )


def _service(tmp_path: Path, **settings: Any) -> Iterator[Service]:
    guard = Guard.open(data_dir=tmp_path / "data", **settings)
    guard.store.upgrade()
    svc = Service(guard)
    with svc.client:
        yield svc


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    yield from _service(tmp_path)


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()["error"]
    assert body["status"] == status and body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body


# --- the prompt check ------------------------------------------------------------------------
def test_check_answers_the_stored_decision(svc: Service) -> None:
    r = svc.check(BLOCKED, account="acct-9")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] == "block" and body["account"] == "acct-9"
    assert body["categories"]["sexual_minors"] >= 0.6 and body["reasons"]
    stored = svc.guard.store.decisions.get(body["id"])
    assert stored is not None and stored.decision.to_dict() == body
    assert stored.prompt_text == BLOCKED


def test_requests_do_not_consult_opentelemetry(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI's OpenTelemetry bridge is off (Tutela's metrics are Prometheus): no request
    looks for a configured tracer provider, which costs three environment reads each."""
    trace = pytest.importorskip("opentelemetry.trace")
    looked: list[int] = []
    real = trace.get_tracer_provider
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: looked.append(1) or real())
    assert svc.check().status_code == 200
    assert svc.client.get("/healthz").status_code == 200
    assert looked == []


def test_check_with_locale(svc: Service) -> None:
    r = svc.client.post(
        "/v1/prompts/check",
        json={"text": ALLOWED, "account": "a", "locale": "es-ES"},
        headers=svc.headers(),
    )
    assert r.status_code == 200 and r.json()["verdict"] == "allow"


def test_read_back_decisions_with_review_scope(svc: Service) -> None:
    ids = [svc.check(t, account="acct-r").json()["id"] for t in (ALLOWED, BLOCKED)]
    one = svc.client.get(f"/v1/decisions/{ids[1]}", headers=svc.headers("review"))
    assert one.status_code == 200
    assert one.json()["prompt_text"] == BLOCKED and len(one.json()["prompt_sha256"]) == 64
    history = svc.client.get("/v1/accounts/acct-r/decisions", headers=svc.headers("admin"))
    assert history.status_code == 200
    assert [d["id"] for d in history.json()["decisions"]] == list(reversed(ids))
    assert history.json()["decisions"][1]["prompt_text"] is None  # the allowed one
    since = svc.client.get(
        "/v1/accounts/acct-r/decisions",
        params={"since": "2100-01-01T00:00:00Z"},
        headers=svc.headers("review"),
    )
    assert since.json()["decisions"] == []
    newest = history.json()["decisions"][0]
    page = svc.client.get(
        "/v1/accounts/acct-r/decisions",
        params={"before": newest["created_at"], "limit": 5},
        headers=svc.headers("review"),
    )
    assert [d["id"] for d in page.json()["decisions"]] == [ids[0]]


# --- keys and scopes -------------------------------------------------------------------------
def test_missing_or_wrong_key_is_401(svc: Service) -> None:
    r = svc.client.post("/v1/prompts/check", json={"text": ALLOWED, "account": "a"})
    _error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    for header in ("Bearer tut_wrong", "Basic dXNlcjpwYXNz", "Bearer ", "tut_x"):
        r = svc.check(headers={"Authorization": header})
        _error(r, 401, "unauthorized")


def test_scope_ladder_over_http(svc: Service) -> None:
    decision_id = svc.check().json()["id"]
    r = svc.client.get(f"/v1/decisions/{decision_id}", headers=svc.headers("check"))
    body = _error(r, 403, "forbidden")
    assert "review" in body["message"]
    for scope in ("review", "admin"):
        assert svc.check(headers=svc.headers(scope)).status_code == 200
        assert svc.client.get(
            f"/v1/decisions/{decision_id}", headers=svc.headers(scope)
        ).status_code == 200


def test_revoked_key_stops_working(svc: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "KEY_CACHE_SECONDS", 0.0)  # see revocation at once
    record, secret = svc.guard.store.api_keys.create("check", "temp")
    headers = {"Authorization": f"Bearer {secret}"}
    assert svc.check(headers=headers).status_code == 200
    svc.guard.store.api_keys.revoke(record.id)
    _error(svc.check(headers=headers), 401, "unauthorized")


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    for svc in _service(tmp_path, rate_limit_per_minute=3):
        codes = [svc.check().status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = svc.check()
        _error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # the limit is per key: another key still passes
        assert svc.check(headers=svc.headers("review")).status_code == 200


# --- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": ALLOWED}, "body.account"),
        ({"account": "a"}, "body.text"),
        ({"text": 5, "account": "a"}, "body.text"),
        ({"text": "", "account": "a"}, "body.text"),
        ({"text": "a\x00b", "account": "a"}, "body.text"),
        ({"text": ALLOWED, "account": "a\nb"}, "body.account"),
        ({"text": ALLOWED, "account": "a", "locale": "not a locale"}, "body.locale"),
        ({"text": ALLOWED, "account": "a", "extra": 1}, "body.extra"),
        ({"text": "x" * 4001, "account": "a"}, "body.text"),
        ({"text": "   ", "account": "a"}, "body.text"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    svc: Service, payload: dict[str, Any], field: str
) -> None:
    r = svc.client.post("/v1/prompts/check", json=payload, headers=svc.headers())
    body = _error(r, 422, "invalid_request")
    assert field in [f["field"] for f in body["fields"]], body


def test_lone_surrogate_is_422(svc: Service) -> None:
    raw = b'{"text": "a \\ud800 b", "account": "a"}'
    r = svc.client.post(
        "/v1/prompts/check", content=raw, headers=svc.headers(**JSON_TYPE)
    )
    _error(r, 422, "invalid_request")


@pytest.mark.parametrize(
    "raw", [b'{"text": "a", ', b'{"text": "\xc3\x28", "account": "a"}', b"\xff", b"[]", b"null"]
)
def test_malformed_json_is_422(svc: Service, raw: bytes) -> None:
    r = svc.client.post(
        "/v1/prompts/check", content=raw, headers=svc.headers(**JSON_TYPE)
    )
    _error(r, 422, "invalid_request")


def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    for svc in _service(tmp_path, max_body_bytes=2048):
        big = json.dumps({"text": "x" * 3000, "account": "a"}).encode()
        hdrs = svc.headers(**JSON_TYPE)
        _error(svc.client.post("/v1/prompts/check", content=big, headers=hdrs), 413,
               "payload_too_large")

        def chunks(data: bytes) -> Iterator[bytes]:  # no Content-Length: counted as read
            for i in range(0, len(data), 500):
                yield data[i : i + 500]

        r = svc.client.post("/v1/prompts/check", content=chunks(big), headers=hdrs)
        _error(r, 413, "payload_too_large")
        assert svc.check().status_code == 200  # small requests still pass


def test_unknown_route_and_decision_are_404_json(svc: Service) -> None:
    _error(svc.client.get("/v1/nothing-here"), 404, "not_found")
    r = svc.client.get("/v1/decisions/dec_unknown", headers=svc.headers("review"))
    _error(r, 404, "not_found")
    _error(svc.client.delete("/v1/prompts/check", headers=svc.headers()), 405,
           "method_not_allowed")


# --- request ids, logs, metrics, health ------------------------------------------------------
def test_request_id_is_echoed_or_made(svc: Service) -> None:
    r = svc.check(headers=svc.headers(**{"X-Request-ID": "platform-req-42"}))
    assert r.headers["x-request-id"] == "platform-req-42"
    r = svc.check(headers=svc.headers(**{"X-Request-ID": "bad id with spaces"}))
    assert r.headers["x-request-id"] != "bad id with spaces"
    assert len(r.headers["x-request-id"]) == 32


def test_logs_are_json_with_request_id_and_no_prompt_text(
    svc: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    secret_words = "lighthouse-unique-marker-text"
    r = svc.check(secret_words, headers=svc.headers(**{"X-Request-ID": "rid-logs-1"}))
    assert r.status_code == 200
    err = capsys.readouterr().err
    assert secret_words not in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry.get("request_id") == "rid-logs-1"]
    assert access and access[0]["status"] == 200 and access[0]["route"] == "/v1/prompts/check"


def test_uvicorn_and_standard_library_records_join_the_json_stream(
    svc: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    """uvicorn's supervisor (a worker died and was restarted) and Tutela's modules that log
    through ``logging`` write JSON lines like every other event, INFO included; a logger
    outside the bridged ones is left alone, and configuring again adds no second handler."""
    import logging

    from tutela.api import logs

    logs.configure("INFO")
    logs.configure("INFO")
    capsys.readouterr()
    logging.getLogger("uvicorn.error").info("Child process [%d] died", 4242)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("tutela.store.database").exception("after-commit step failed")
    logging.getLogger("somebody.else").warning("not ours")
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines[0]["event"] == "Child process [4242] died"
    assert lines[0]["logger"] == "uvicorn.error" and lines[0]["level"] == "info"
    assert lines[0]["timestamp"].endswith("Z")
    assert lines[1]["logger"] == "tutela.store.database" and lines[1]["level"] == "error"
    assert "ValueError: boom" in lines[1]["exception"]
    assert len(lines) == 2  # once each (one handler), nothing from the foreign logger


def test_metrics_count_requests_and_decisions(svc: Service) -> None:
    svc.check(BLOCKED)
    text = svc.client.get("/metrics").text
    decisions = 'tutela_decisions_total{category="sexual_minors",kind="prompt",verdict="block"}'
    requests = 'tutela_http_requests_total{method="POST",route="/v1/prompts/check",status="200"}'
    assert decisions in text and requests in text
    assert "tutela_http_request_duration_seconds_bucket" in text


def test_health_and_docs(svc: Service) -> None:
    assert svc.client.get("/healthz").json() == {"status": "ok"}
    ready = svc.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert svc.client.get("/docs").status_code == 200
    spec = svc.client.get("/openapi.json").json()
    assert {"/v1/prompts/check", "/v1/decisions/{decision_id}",
            "/v1/accounts/{account}/decisions"} <= set(spec["paths"])


# --- the database goes away: 503, never an unchecked allow -----------------------------------
def test_routes_are_added_flat_with_the_same_openapi_document(svc: Service) -> None:
    """create_app puts the routers' routes in the app's own list (cheaper to match than
    included routers); the app must be what include_router would have built."""
    included = FastAPI(title="Tutela", version=svc.client.app.version,  # type: ignore[attr-defined]
                       summary="Child-safety guard for AI image generation", redoc_url=None)
    for name in ROUTER_MODULES:
        included.include_router(importlib.import_module(name).router)
    assert svc.client.app.openapi() == included.openapi()  # type: ignore[attr-defined]
    paths = {getattr(r, "path", None) for r in svc.client.app.routes}  # type: ignore[attr-defined]
    assert "/v1/prompts/check" in paths and "/healthz" in paths


def test_unreachable_database_is_503(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://nobody@127.0.0.1:{port}/none?connect_timeout=2"
    guard = Guard.open(data_dir=tmp_path / "g", database_url=url)
    with TestClient(create_app(guard), raise_server_exceptions=False) as client:
        r = client.post(
            "/v1/prompts/check",
            json={"text": ALLOWED, "account": "a"},
            headers={"Authorization": "Bearer tut_" + "x" * 43},
        )
        _error(r, 503, "unavailable")
        assert r.headers["retry-after"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok"


@pytest.mark.postgres
def test_database_stopping_mid_run_gives_503_then_recovers(tmp_path: Path, pg_url: str) -> None:
    """Keys are cached, so this reaches the decision insert itself when the server is gone."""
    import psycopg

    guard = Guard.open(data_dir=tmp_path / "g", database_url=pg_url)
    guard.store.upgrade()
    svc = Service(guard)
    with svc.client:
        assert svc.check().status_code == 200  # the key is now cached
        dbname = pg_url.rsplit("/", 1)[1]
        admin = pg_url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin + "/postgres", autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (dbname,),
            )
        r = svc.check(BLOCKED)
        _error(r, 503, "unavailable")
        with psycopg.connect(admin + "/postgres", autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS true')
        r = svc.check(BLOCKED)
        assert r.status_code == 200
        assert guard.store.decisions.get(r.json()["id"]) is not None


@pytest.mark.postgres
def test_service_on_postgres(tmp_path: Path, pg_url: str) -> None:
    guard = Guard.open(data_dir=tmp_path / "g", database_url=pg_url)
    guard.store.upgrade()
    svc = Service(guard)
    with svc.client:
        ids = [svc.check(t, account="acct-pg").json()["id"] for t in (ALLOWED, BLOCKED)]
        r = svc.client.get("/v1/accounts/acct-pg/decisions", headers=svc.headers("review"))
        assert [d["id"] for d in r.json()["decisions"]] == list(reversed(ids))


def test_expired_allowed_prompt_text_is_purged_at_start(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tutela.decision import Decision, Verdict

    policy = tmp_path / "policy.yaml"
    policy.write_text("retention:\n  allowed_prompt_days: 2\n", encoding="utf-8")
    guard = Guard.open(data_dir=tmp_path / "data", policy_file=policy)
    old = Decision(Verdict.ALLOW, {}, [], [], account="a",
                   created_at=datetime.now(UTC) - timedelta(days=3))
    guard.store.decisions.record(old, prompt="old allowed text", allowed_prompt_days=2)
    fresh = guard.check_prompt(ALLOWED, account="a")
    with TestClient(create_app(guard)):
        pass  # the lifespan's first purge runs at start
    assert guard.store.decisions.get(old.id).prompt_text is None  # type: ignore[union-attr]
    assert guard.store.decisions.get(fresh.id).prompt_text == ALLOWED  # type: ignore[union-attr]


@pytest.mark.slow
def test_readyz_waits_for_the_image_models(tmp_path: Path) -> None:
    import time

    guard = Guard.open(data_dir=tmp_path / "data")
    with TestClient(create_app(guard, warm_models=True)) as client:
        deadline = time.monotonic() + 180
        ready = client.get("/readyz")
        while ready.status_code != 200 and time.monotonic() < deadline:
            assert ready.status_code == 503
            assert ready.json()["checks"]["image_models"] == "loading"
            time.sleep(0.2)
            ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {
            "prompt_reader": "ok", "image_models": "ok", "database": "ok"
        }
