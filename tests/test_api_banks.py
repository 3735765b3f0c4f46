"""``/v1/banks...`` over HTTP: admin scope, create/list/patch, entries, import/export, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from imagesamples import drawn, sample
from threatexchange.signal_type.pdq.signal import PdqSignal

from tutela import Guard
from tutela.api.app import create_app
from tutela.hashes.matcher import BankMatcher
from tutela.hashes.repository import BankRepository
from tutela.image.pdq import hash_image

EXAMPLES = PdqSignal.get_examples()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Guard]]:
    guard = Guard.open(data_dir=tmp_path / "data", rate_limit_per_minute=0)
    guard.store.upgrade()
    keys = {s: guard.store.api_keys.create(s, f"{s} key")[1] for s in ("check", "admin")}
    with TestClient(create_app(guard), raise_server_exceptions=False) as client:
        yield client, {s: f"Bearer {k}" for s, k in keys.items()}, guard
    guard.store.close()


def test_admin_scope_required(api: tuple[TestClient, dict[str, str], Guard]) -> None:
    client, keys, _ = api
    assert client.get("/v1/banks").status_code == 401
    r = client.get("/v1/banks", headers={"Authorization": keys["check"]})
    assert r.status_code == 403


def test_bank_lifecycle_and_matching(api: tuple[TestClient, dict[str, str], Guard]) -> None:
    client, keys, guard = api
    h = {"Authorization": keys["admin"]}
    r = client.post("/v1/banks", json={"name": "partner", "kind": "block"}, headers=h)
    assert r.status_code == 201 and r.json()["threshold"] == 31
    assert client.post("/v1/banks", json={"name": "partner"}, headers=h).status_code == 409
    astro = hash_image(sample("astronaut"))
    r = client.post(
        "/v1/banks/partner/entries",
        headers=h,
        json={
            "entries": [
                {
                    "signal_str": astro.hash,
                    "ref": "case-1",
                    "metadata": {"note": "benign stand-in"},
                },
                {"signal_str": hash_image(drawn(5)).hash},
                {"signal_str": astro.hash},
            ]
        },
    )
    assert r.status_code == 200 and r.json()["added"] == 2 and r.json()["skipped_duplicates"] == 1
    first_id = r.json()["ids"][0]
    matcher = BankMatcher(BankRepository(guard.store), refresh_seconds=0)
    assert matcher.match(astro).blocked
    # switch the entry off over HTTP: the matcher stops matching it
    r = client.patch(f"/v1/banks/partner/entries/{first_id}", json={"enabled": False}, headers=h)
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert not matcher.match(astro).blocked
    assert (
        client.patch(
            "/v1/banks/partner/entries/999999", json={"enabled": False}, headers=h
        ).status_code
        == 404
    )
    r = client.patch("/v1/banks/partner", json={"enabled": False, "threshold": 20}, headers=h)
    assert r.json()["enabled"] is False and r.json()["threshold"] == 20
    banks = client.get("/v1/banks", headers=h).json()["banks"]
    assert [(b["name"], b["entries"]) for b in banks] == [("partner", 1)]
    page = client.get("/v1/banks/partner/entries", params={"limit": 1}, headers=h).json()
    assert len(page["entries"]) == 1 and page["next_after_id"] == first_id
    page2 = client.get(
        "/v1/banks/partner/entries", params={"after_id": page["next_after_id"]}, headers=h
    ).json()
    assert len(page2["entries"]) == 1 and page2["next_after_id"] is None


def test_import_and_export(api: tuple[TestClient, dict[str, str], Guard]) -> None:
    client, keys, _ = api
    h = {"Authorization": keys["admin"]}
    client.post("/v1/banks", json={"name": "te"}, headers=h)
    csv_text = "signal_type,signal_str,collab,category,tags\n" + "".join(
        f"pdq,{e},Sample Data,ADVERSARIAL,t1 t2\n" for e in EXAMPLES
    )
    r = client.post(
        "/v1/banks/te/import",
        headers=h,
        data={"format": "csv"},
        files={"file": ("list.csv", csv_text.encode(), "text/csv")},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "bank": "te",
        "read": len(EXAMPLES),
        "added": len(EXAMPLES),
        "skipped_duplicates": 0,
    }
    bad = f"{EXAMPLES[0]}\nnope\n"
    r = client.post(
        "/v1/banks/te/import",
        headers=h,
        data={"format": "txt"},
        files={"file": ("l.txt", bad.encode(), "text/plain")},
    )
    assert r.status_code == 422 and "line 2" in r.json()["error"]["message"]
    r = client.get("/v1/banks/te/export", params={"format": "jsonl"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(x) for x in r.text.splitlines()]
    assert [x["signal_str"] for x in rows] == EXAMPLES
    assert rows[0]["metadata"] == {
        "collab": "Sample Data",
        "category": "ADVERSARIAL",
        "tags": ["t1", "t2"],
    }
    r = client.get("/v1/banks/te/export", params={"format": "csv"}, headers=h)
    lines = r.text.splitlines()
    assert lines[0].startswith("signal_type,signal_str,collab,category,tags")
    assert len(lines) == len(EXAMPLES) + 1


def test_bad_requests_are_4xx(api: tuple[TestClient, dict[str, str], Guard]) -> None:
    client, keys, _ = api
    h = {"Authorization": keys["admin"]}
    assert client.get("/v1/banks/missing", headers=h).status_code == 404
    assert client.get("/v1/banks/..%2Fx", headers=h).status_code in (404, 422)
    assert (
        client.post("/v1/banks", json={"name": "x", "kind": "allow"}, headers=h).status_code == 422
    )
    assert (
        client.post("/v1/banks", json={"name": "x", "threshold": 99}, headers=h).status_code == 422
    )
    client.post("/v1/banks", json={"name": "x"}, headers=h)
    r = client.post("/v1/banks/x/entries", json={"entries": [{"signal_str": "ab" * 31}]}, headers=h)
    assert r.status_code == 422
    assert (
        client.post(
            "/v1/banks/missing/entries", json={"entries": [{"signal_str": EXAMPLES[0]}]}, headers=h
        ).status_code
        == 404
    )
    r = client.post(
        "/v1/banks/x/import",
        headers=h,
        data={"format": "jsonl"},
        files={"file": ("l.jsonl", b"\xff\xfe\x00", "application/octet-stream")},
    )
    assert r.status_code == 422 and "UTF-8" in r.json()["error"]["message"]
