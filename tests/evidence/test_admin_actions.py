"""Operators' actions on keys, hash banks and accounts land in the audit log (issue 7).

Each action is performed the way an operator does it (the command line or the HTTP API, on a
real SQLite store), then read back from the log with ``tutela audit log`` and the whole log
checked with ``tutela audit verify``.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tutela import Guard
from tutela.api.app import create_app
from tutela.errors import ConfigError
from tutela.store.database import Store
from tutela.store.keys import hash_key

HASH_A = "f" * 16 + "0" * 48
HASH_B = "0" * 16 + "f" * 48
HASH_C = "a5" * 32
CLI_ACTOR = f"cli:{getpass.getuser()}"
VERIFICATION_FIELDS = (
    "action", "tier", "method", "provider", "jurisdiction", "verified_at", "lifted_step_up",
)  # fmt: skip


def run(data: Path, *args: str) -> tuple[int, str, str]:
    from tutela.cli.main import app

    r = CliRunner().invoke(app, ["--data-dir", str(data), *args])
    return r.exit_code, r.stdout, r.stderr


def admin_log(data: Path) -> list[dict]:
    """The ``admin`` leaves, as ``tutela audit log`` prints them."""
    code, out, err = run(data, "audit", "log", "--kind", "admin")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def verified(data: Path) -> bool:
    code, out, _ = run(data, "audit", "verify")
    return code == 0 and out.startswith("OK: ")


def actions(entries: list[dict]) -> list[str]:
    return [e["data"]["action"] for e in entries]


# --- the command line -------------------------------------------------------------------------


def test_cli_key_create_and_revoke_are_logged_without_the_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out, err = run(data, "keys", "create", "--scope", "review", "--name", "dash", "--json")
    assert code == 0, err
    key = json.loads(out)
    assert run(data, "keys", "revoke", key["id"])[0] == 0
    assert run(data, "keys", "revoke", key["id"])[0] == 2  # nothing revoked: nothing logged
    entries = admin_log(data)
    assert actions(entries) == ["api_key.create", "api_key.revoke"]
    assert {e["subject"] for e in entries} == {key["id"]}
    assert {e["actor"] for e in entries} == {CLI_ACTOR}
    assert entries[0]["data"] == {"action": "api_key.create", "name": "dash", "scope": "review"}
    for e in entries:
        text = json.dumps(e)
        assert key["key"] not in text and hash_key(key["key"]) not in text
        assert key["hint"] not in text
    assert verified(data)


def test_cli_bank_edits_are_logged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(data, "banks", "create", "partner", "--threshold", "20")[0] == 0
    code, out, err = run(data, "banks", "add", "partner", HASH_A, "--json")
    assert code == 0, err
    entry_id = json.loads(out)["ids"][0]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{HASH_B}\n{HASH_C}\n{HASH_A}\n")
    assert run(data, "banks", "import", "partner", str(listing))[0] == 0
    assert run(data, "banks", "disable", "--entry", str(entry_id))[0] == 0
    assert run(data, "banks", "disable", "partner")[0] == 0
    assert run(data, "banks", "enable", "partner")[0] == 0
    assert run(data, "banks", "export", "partner", str(tmp_path / "x.jsonl"))[0] == 0
    entries = admin_log(data)
    assert actions(entries) == [
        "bank.create",
        "bank.add_entries",
        "bank.add_entries",
        "bank.entry_disable",
        "bank.update",
        "bank.update",
    ]  # the export (a read) is not an admin action
    assert {e["subject"] for e in entries} == {"bank:partner"}
    assert {e["actor"] for e in entries} == {CLI_ACTOR}
    assert entries[0]["data"] == {
        "action": "bank.create", "kind": "block", "threshold": 20, "enabled": True,
    }  # fmt: skip
    assert entries[2]["data"]["added"] == 2 and entries[2]["data"]["skipped"] == 1
    assert entries[3]["data"]["entry"] == entry_id
    assert entries[4]["data"]["enabled"] is False and entries[5]["data"]["enabled"] is True
    assert verified(data)


def test_cli_account_verification_suspend_and_lift_are_logged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, _, err = run(
        data, "accounts", "verify", "acct-1", "--level", "verified_adult", "--method",
        "id_document", "--provider", "acme", "--age", "41", "--reference", "REF-99",
    )  # fmt: skip
    assert code == 0, err
    assert run(data, "accounts", "suspend", "acct-1", "--reason", "confirmed abuse")[0] == 0
    code, _, _ = run(data, "accounts", "lift", "acct-1", "--reason", "appeal", "--actor", "r.k")
    assert code == 0
    entries = admin_log(data)
    assert actions(entries) == ["account.verification", "account.suspend", "account.lift"]
    assert {e["subject"] for e in entries} == {"acct-1"}
    assert [e["actor"] for e in entries] == [CLI_ACTOR, CLI_ACTOR, "r.k"]
    verification = entries[0]["data"]
    assert verification["tier"] == "verified_adult" and verification["provider"] == "acme"
    assert set(verification) == set(VERIFICATION_FIELDS)  # the age and the reference stay out
    assert 41 not in verification.values() and "REF-99" not in json.dumps(verification)
    assert entries[1]["data"]["reason"] == "confirmed abuse"
    assert verified(data)


# --- the HTTP API -----------------------------------------------------------------------------


class Api:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.client = TestClient(create_app(guard), raise_server_exceptions=False)
        self.key, secret = guard.store.api_keys.create("admin", "ops console")
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.actor = f"apikey:{self.key.id} (ops console)"

    def admin_entries(self) -> list[dict]:
        log = self.guard.audit.evidence.log
        return [e.to_dict() for e in log.entries(kinds=["admin"])]

    def verify(self) -> bool:
        r = self.client.get("/v1/audit/verify", headers=self.headers)
        return r.status_code == 200 and r.json()["ok"] is True


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = Api(Guard.open(data_dir=tmp_path / "data"))
    with a.client:
        yield a


def test_api_bank_edits_are_logged_with_the_key(api: Api) -> None:
    h = api.headers
    assert api.client.post("/v1/banks", json={"name": "te"}, headers=h).status_code == 201
    r = api.client.post(
        "/v1/banks/te/entries", json={"entries": [{"signal_str": HASH_A}]}, headers=h
    )
    assert r.status_code == 200, r.text
    entry_id = r.json()["ids"][0]
    r = api.client.patch(f"/v1/banks/te/entries/{entry_id}", json={"enabled": False}, headers=h)
    assert r.status_code == 200
    r = api.client.patch("/v1/banks/te", json={"threshold": 10}, headers=h)
    assert r.status_code == 200
    r = api.client.post(
        "/v1/banks/te/import",
        headers=h,
        data={"format": "txt"},
        files={"file": ("l.txt", f"{HASH_B}\n{HASH_C}\n".encode(), "text/plain")},
    )
    assert r.status_code == 200, r.text
    # a rejected edit changes nothing and logs nothing
    assert api.client.patch("/v1/banks/te", json={"threshold": 99}, headers=h).status_code == 422
    entries = api.admin_entries()
    assert actions(entries) == [
        "bank.create",
        "bank.add_entries",
        "bank.entry_disable",
        "bank.update",
        "bank.add_entries",
    ]
    assert {e["actor"] for e in entries} == {api.actor}
    assert entries[3]["data"] == {"action": "bank.update", "threshold": 10}
    assert entries[4]["data"]["added"] == 2
    assert api.verify()


def test_api_account_actions_are_logged_with_the_key(api: Api) -> None:
    h = api.headers
    v = {"level": "estimated", "method": "facial_estimation", "age_years": 30}
    assert api.client.post("/v1/accounts/u9/verification", json=v, headers=h).status_code == 200
    body = {"action": "suspend", "reason": "confirmed abuse", "report": True}
    assert api.client.post("/v1/accounts/u9/actions", json=body, headers=h).status_code == 200
    body = {"action": "lift", "reason": "appeal upheld"}
    assert api.client.post("/v1/accounts/u9/actions", json=body, headers=h).status_code == 200
    entries = api.admin_entries()
    assert actions(entries) == ["account.verification", "account.suspend", "account.lift"]
    assert {e["actor"] for e in entries} == {api.actor}
    assert {e["subject"] for e in entries} == {"u9"}
    assert set(entries[0]["data"]) == set(VERIFICATION_FIELDS)
    assert 30 not in entries[0]["data"].values()
    assert entries[1]["data"]["report"] is True
    history = api.client.get("/v1/accounts/u9", headers=h).json()["actions"]
    assert {a["actor"] for a in history if a["actor"] != "verification"} == {api.actor}
    assert api.verify()


# --- without a log ----------------------------------------------------------------------------


def test_an_operator_action_without_a_log_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    from tutela.hashes.repository import BankRepository

    store = Store.open(f"sqlite:///{tmp_path / 'bare.db'}")
    with pytest.raises(ConfigError, match="no audit log"):
        store.api_keys.create("admin", "x", actor="cli:someone")
    assert store.api_keys.count() == 0
    banks = BankRepository(store)
    with pytest.raises(ConfigError):
        banks.create_bank("b1", actor="cli:someone")
    assert banks.list_banks() == []
    banks.create_bank("b1")  # internal use (no actor) is not an operator's action
    store.close()


# --- tutela serve's first start ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_first_start_key_is_logged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "TUTELA_DATA_DIR": str(data)}
    cmd = [str(Path(sys.executable).parent / "tutela"), "--data-dir", str(data), "serve",
           "--host", "127.0.0.1", "--port", str(_free_port())]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        secret = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not secret:
            line = proc.stdout.readline().decode()
            if not line and proc.poll() is not None:
                break
            if line.startswith("tut_"):
                secret = line.strip()
        assert secret, proc.stderr.read().decode() if proc.poll() is not None else "no key"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    entries = admin_log(data)
    assert actions(entries) == ["api_key.create"]
    assert entries[0]["data"]["scope"] == "admin"
    assert entries[0]["actor"] == CLI_ACTOR
    assert secret not in json.dumps(entries)
    assert verified(data)


def test_an_action_whose_log_entry_cannot_be_written_does_not_happen(tmp_path: Path) -> None:
    """The leaf is written in the action's transaction: an unusable audit signing key (the
    log cannot open) leaves no key, bank or account change behind, on either path."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "audit-signing-key.pem").write_text("not a key\n")
    code, out, err = run(data, "keys", "create", "--scope", "admin", "--name", "k")
    assert code != 0 and "audit signing key" in err and not out
    guard = Guard.open(data_dir=data)
    assert guard.store.api_keys.count() == 0
    # over HTTP the Guard opens its log lazily, inside the action's transaction
    _, secret = guard.store.api_keys.create("admin", "ops")  # a fixture, not an operator
    with TestClient(create_app(guard), raise_server_exceptions=False) as client:
        h = {"Authorization": f"Bearer {secret}"}
        assert client.post("/v1/banks", json={"name": "te"}, headers=h).status_code >= 500
        body = {"action": "suspend", "reason": "abuse"}
        assert client.post("/v1/accounts/u1/actions", json=body, headers=h).status_code >= 500
        assert client.get("/v1/banks", headers=h).json()["banks"] == []
    assert guard.accounts.describe("u1", datetime.now(UTC))["action"]["current"] == "none"
