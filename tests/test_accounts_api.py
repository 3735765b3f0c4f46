"""Accounts over HTTP and on the command line: scopes, validation (4xx, nothing changed),
verification lifting a step-up, admin lift and suspend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tutela import Guard
from tutela.api.app import create_app
from tutela.cli.main import app as cli

BLOCKED = "naked child on a beach at sunset"
BENIGN = "a watercolour of a lighthouse at dawn"


class Api:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.client = TestClient(create_app(guard), raise_server_exceptions=False)
        self.keys = {
            s: guard.store.api_keys.create(s, f"{s} key")[1] for s in ("check", "review", "admin")
        }

    def h(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    guard = Guard.open(data_dir=tmp_path / "data")
    guard.store.upgrade()
    a = Api(guard)
    with a.client:
        yield a


def test_get_account_needs_review_scope_and_answers_unknown_accounts(api: Api) -> None:
    assert api.client.get("/v1/accounts/nobody").status_code == 401
    assert api.client.get("/v1/accounts/nobody", headers=api.h("check")).status_code == 403
    r = api.client.get("/v1/accounts/nobody", headers=api.h("review"))
    assert r.status_code == 200 and r.json()["known"] is False
    assert r.json()["action"]["current"] == "none"


def test_strikes_and_action_are_visible_after_a_block(api: Api) -> None:
    r = api.client.post("/v1/prompts/check", json={"text": BLOCKED, "account": "u1"},
                        headers=api.h("check"))  # fmt: skip
    assert r.status_code == 200 and r.json()["account_action"] == "warn"
    body = api.client.get("/v1/accounts/u1", headers=api.h("review")).json()
    assert body["strikes"] == {"sexual_minors": 1} and body["action"]["current"] == "warn"
    assert body["risk_band"] == "elevated"


def test_verification_and_actions_need_admin_and_validate(api: Api) -> None:
    v = {"level": "verified_adult", "method": "id_document", "provider": "acme"}
    path = "/v1/accounts/u2/verification"
    assert api.client.post(path, json=v, headers=api.h("review")).status_code == 403
    for bad in (
        {**v, "level": "unknown"},
        {**v, "level": "verified_adult", "age_years": 15},
        {**v, "jurisdiction": "Spain"},
        {**v, "verified_at": "2026-01-01T00:00:00"},  # no zone
        {**v, "verified_at": "2999-01-01T00:00:00+00:00"},  # future
        {**v, "extra": 1},
        {"level": "minor"},
    ):
        r = api.client.post(path, json=bad, headers=api.h("admin"))
        assert r.status_code == 422, (bad, r.text)
    assert api.guard.accounts.describe("u2", _now())["known"] is False  # nothing was stored
    bad_action = api.client.post(
        "/v1/accounts/u2/actions", json={"action": "ban", "reason": "x"}, headers=api.h("admin")
    )
    assert bad_action.status_code == 422
    no_reason = api.client.post(
        "/v1/accounts/u2/actions", json={"action": "suspend", "reason": ""}, headers=api.h("admin")
    )
    assert no_reason.status_code == 422


def test_suspend_lift_and_verification_over_http(api: Api) -> None:
    r = api.client.post(
        "/v1/accounts/u3/actions",
        json={"action": "suspend", "reason": "confirmed abuse", "report": True},
        headers=api.h("admin"),
    )
    assert r.status_code == 200 and r.json()["action"]["current"] == "suspend"
    assert r.json()["report"] is True and r.json()["actions"][0]["actor"].startswith("apikey:")
    check = api.client.post("/v1/prompts/check", json={"text": BENIGN, "account": "u3"},
                            headers=api.h("check"))  # fmt: skip
    assert check.json()["verdict"] == "block" and check.json()["account_action"] == "suspend"
    api.client.post("/v1/accounts/u3/actions", json={"action": "lift", "reason": "appeal"},
                    headers=api.h("admin"))  # fmt: skip
    check = api.client.post("/v1/prompts/check", json={"text": BENIGN, "account": "u3"},
                            headers=api.h("check"))  # fmt: skip
    assert check.json()["verdict"] == "allow"
    r = api.client.post(
        "/v1/accounts/u3/verification",
        json={"level": "minor", "method": "facial_estimation", "age_years": 13,
              "jurisdiction": "es"},
        headers=api.h("admin"),
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["age"]["tier"] == "minor"
    assert r.json()["verifications"][0]["jurisdiction"] == "ES"
    check = api.client.post("/v1/prompts/check", json={"text": BENIGN, "account": "u3"},
                            headers=api.h("check"))  # fmt: skip
    assert check.json()["verdict"] == "block"


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_cli_show_verify_suspend_lift(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path / "d")]

    def run(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        res = runner.invoke(cli, [*base, *args])
        return res.exit_code, (json.loads(res.stdout) if res.exit_code == 0 else {})

    code, body = run("accounts", "show", "acct-9")
    assert code == 0 and body["known"] is False
    code, body = run("accounts", "suspend", "acct-9", "--reason", "test", "--report")
    assert code == 0 and body["action"]["current"] == "suspend" and body["report"]
    code, body = run("accounts", "lift", "acct-9", "--reason", "appeal upheld")
    assert code == 0 and body["action"]["current"] == "none"
    code, body = run("accounts", "verify", "acct-9", "--level", "verified_adult",
                     "--method", "eid", "--provider", "acme", "--jurisdiction", "ES")  # fmt: skip
    assert code == 0 and body["age"]["tier"] == "verified_adult"
    assert body["age"]["jurisdiction"] == "ES"
    bad = runner.invoke(cli, [*base, "accounts", "verify", "acct-9", "--level", "adult",
                              "--method", "eid"])  # fmt: skip
    assert bad.exit_code == 2 and "level must be one of" in bad.stderr
    naive = runner.invoke(cli, [*base, "accounts", "verify", "acct-9", "--level", "estimated",
                                "--method", "x", "--at", "2026-01-01T00:00:00"])  # fmt: skip
    assert naive.exit_code == 2
    empty = runner.invoke(cli, [*base, "accounts", "suspend", "acct-9", "--reason", " "])
    assert empty.exit_code == 2
