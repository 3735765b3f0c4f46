"""The evidence endpoints over HTTP: admin scope only, custody recorded per API key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tutela import Guard
from tutela.api.app import create_app


class Api:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.client = TestClient(create_app(guard), raise_server_exceptions=False)
        self.keys = {
            s: guard.store.api_keys.create(s, f"{s} key")[1] for s in ("check", "review", "admin")
        }

    def h(self, scope: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    guard = Guard.open(data_dir=tmp_path / "data")
    guard.check_prompt("a lighthouse at dusk", account="u1")
    guard.check_prompt("nude child", account="u2")
    a = Api(guard)
    with a.client:
        yield a


def test_only_admin_keys_get_in(api: Api) -> None:
    for path in ("/v1/audit/verify", "/v1/evidence", "/v1/reports/transparency?period=2026"):
        assert api.client.get(path).status_code == 401
        assert api.client.get(path, headers=api.h("review")).status_code == 403
        assert api.client.get(path, headers=api.h()).status_code == 200, path


def test_verify_proof_and_reviews(api: Api) -> None:
    assert api.client.get("/v1/audit/verify", headers=api.h()).json()["ok"] is True
    decision = api.guard.audit.evidence.log.find  # the decisions, through the log
    entries = list(api.guard.audit.evidence.log.entries(kinds=["decision"]))
    proof = api.client.get(f"/v1/audit/proof/{entries[1].subject}", headers=api.h()).json()
    assert proof["leaf_index"] == entries[1].seq
    assert api.client.get("/v1/audit/proof/nope", headers=api.h()).status_code == 404
    body = {"decision_id": entries[1].subject, "reviewer": "r1", "outcome": "overturn"}
    assert api.client.post("/v1/audit/reviews", json=body, headers=api.h()).status_code == 201
    for bad in (
        {**body, "outcome": "maybe"},
        {**body, "decision_id": "dec_missing"},
        {**body, "reviewer": " "},
        {**body, "extra": 1},
    ):
        r = api.client.post("/v1/audit/reviews", json=bad, headers=api.h())
        assert r.status_code in (404, 422), bad
    assert decision(entries[1].subject, "review")[0].data["outcome"] == "overturn"
    r = api.client.get("/v1/audit/consistency?old=1", headers=api.h())
    assert r.status_code == 200 and r.json()["old_size"] == 1


def test_evidence_access_is_recorded_with_the_key_and_the_reason(api: Api) -> None:
    (item,) = api.client.get("/v1/evidence", headers=api.h()).json()["items"]
    base = f"/v1/evidence/{item['id']}"
    assert api.client.get(base, headers=api.h()).status_code == 422  # no reason
    assert api.client.get(f"{base}/content?reason=%20", headers=api.h()).status_code == 422
    r = api.client.get(f"{base}/content?reason=case%2042", headers=api.h())
    assert r.status_code == 200 and r.content == b"nude child"
    assert r.headers["x-content-sha256"] == item["sha256"]
    shown = api.client.get(f"{base}?reason=audit", headers=api.h()).json()
    accesses = [c for c in shown["custody"] if c["kind"] == "evidence.access"]
    assert [a["data"]["reason"] for a in accesses] == ["case 42", "audit"]
    assert all(a["actor"].startswith("apikey:") for a in accesses)
    assert (
        api.client.get("/v1/evidence/ev_00", headers=api.h(), params={"reason": "x"}).status_code
        == 404
    )
    r = api.client.post(f"{base}/hold", json={"reason": "preservation request"}, headers=api.h())
    assert r.status_code == 200 and r.json()["legal_hold"] is True
    assert api.client.post("/v1/evidence/purge", headers=api.h()).json()["count"] == 0


def test_reports_over_http(api: Api) -> None:
    r = api.client.get("/v1/reports/dsa?since=2020-01-01T00:00:00Z", headers=api.h())
    assert r.status_code == 200 and r.json()["count"] == 1 and "u2" not in r.text
    assert api.client.get("/v1/reports/dsa?since=2020-01-01", headers=api.h()).status_code == 422
    html = api.client.get("/v1/reports/transparency?period=2026&format=html", headers=api.h())
    assert html.status_code == 200 and "<svg" in html.text
    bad = api.client.get("/v1/reports/transparency?period=someday", headers=api.h())
    assert bad.status_code == 422
    puid = r.json()["statements"][0]["puid"]
    # no reporting person configured: building is refused with a clear conflict
    assert api.client.get(f"/v1/reports/ncmec/{puid}", headers=api.h()).status_code == 409
    r = api.client.post(f"/v1/reports/ncmec/{puid}", json={}, headers=api.h())
    assert r.status_code == 409 and "off" in r.text
