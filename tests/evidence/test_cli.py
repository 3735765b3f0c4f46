"""The command line end to end, on a real store: audit, evidence and reports commands."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tutela import Guard
from tutela.cli.main import app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data dir where two prompts were checked: one allowed, one blocked (kept as evidence)."""
    d = tmp_path / "data"
    guard = Guard.open(data_dir=d)
    guard.check_prompt("a lighthouse at dusk", account="u1")
    guard.check_prompt("nude child", account="u2")
    return d


def run(data: Path, *args: str, config: Path | None = None) -> tuple[int, str, str]:
    pre = ["--data-dir", str(data)] + (["--config", str(config)] if config else [])
    r = CliRunner().invoke(app, [*pre, *args])
    return r.exit_code, r.stdout, r.stderr


def test_audit_verify_passes_then_names_the_tampered_entry(data: Path) -> None:
    code, out, _ = run(data, "audit", "verify")
    assert code == 0 and out.startswith("OK: ")
    code, out, _ = run(data, "audit", "checkpoint")
    cp = json.loads(out)
    known = f"{cp['tree_size']}:{cp['root_hash']}"
    assert run(data, "audit", "verify", "--known", known)[0] == 0
    code, _, err = run(data, "audit", "verify", "--known", f"{cp['tree_size']}:{'00' * 32}")
    assert code == 1 and "no longer produces it" in err
    assert run(data, "audit", "verify", "--known", "x:y")[0] == 2
    db = sqlite3.connect(data / "tutela.db")
    entry = db.execute("SELECT entry FROM audit_log WHERE seq = 1").fetchone()[0]
    db.execute("UPDATE audit_log SET entry = ? WHERE seq = 1", (entry.replace(b"u2", b"u3"),))
    db.commit()
    db.close()
    code, _, err = run(data, "audit", "verify")
    assert code == 1 and "first bad entry: 1" in err
    code, out, _ = run(data, "audit", "verify", "--json")
    assert json.loads(out)["first_bad_entry"] == 1


def test_audit_proof_is_accepted_by_the_standalone_verifier(data: Path, tmp_path: Path) -> None:
    code, key, _ = run(data, "audit", "public-key")
    assert code == 0
    decisions = [
        json.loads(line) for line in run(data, "audit", "log", "--kind", "decision")[1].splitlines()
    ]
    proof = tmp_path / "proof.json"
    code, _, _ = run(data, "audit", "proof", decisions[1]["subject"], "--out", str(proof))
    assert code == 0
    verifier = [sys.executable, str(REPO / "tools/verify_proof.py")]
    ok = subprocess.run(
        [*verifier, str(proof), "--public-key", key.strip()], capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.startswith("VALID"), ok.stdout + ok.stderr
    doc = json.loads(proof.read_text())
    doc["leaf_index"] = 0
    bad = subprocess.run([*verifier, "-"], input=json.dumps(doc), capture_output=True, text=True)
    assert bad.returncode == 1 and "INVALID" in bad.stdout
    assert subprocess.run([*verifier, "-"], input=b"{", capture_output=True).returncode == 2


def test_evidence_show_export_and_purge(data: Path, tmp_path: Path) -> None:
    code, out, _ = run(data, "evidence", "list")
    (item,) = [json.loads(line) for line in out.splitlines()]
    code, _, err = run(data, "evidence", "show", item["id"], "--actor", "rev", "--reason", "")
    assert code == 2 and "reason" in err
    code, out, _ = run(data, "evidence", "show", item["id"], "--actor", "rev", "--reason", "qa")
    assert code == 0 and [c["kind"] for c in json.loads(out)["custody"]] == [
        "evidence.store",
        "evidence.access",
    ]
    code, out, _ = run(
        data,
        "evidence",
        "export",
        item["id"],
        "--actor",
        "rev",
        "--reason",
        "case file",
        "--out",
        str(tmp_path / "x"),
    )
    assert code == 0
    content = (tmp_path / "x" / f"{item['id']}.bin").read_bytes()
    meta = json.loads((tmp_path / "x" / f"{item['id']}.json").read_text())
    assert content == b"nude child" and hashlib.sha256(content).hexdigest() == meta["sha256"]
    assert meta["store_proof"]["format"] == "tutela-inclusion-proof/1"
    code, out, _ = run(data, "evidence", "purge", "--actor", "ops")
    assert code == 0 and json.loads(out)["count"] == 0  # nothing expired yet
    code, out, _ = run(data, "evidence", "rotate-key", "--actor", "ops")
    assert code == 0
    code, out, _ = run(data, "evidence", "rewrap", "--actor", "ops")
    assert json.loads(out)["rewrapped"] == 1
    assert run(data, "audit", "verify")[0] == 0


def test_reports_commands(data: Path, tmp_path: Path) -> None:
    html = tmp_path / "t.html"
    code, out, _ = run(data, "reports", "transparency", "--period", "2026", "--html", str(html))
    assert code == 0 and "<svg" in html.read_text()
    code, out, _ = run(data, "reports", "dsa", "export", "--since", "2020-01-01")
    statements = [json.loads(line) for line in out.splitlines()]
    assert len(statements) == 1 and "u2" not in out
    code, _, err = run(data, "reports", "dsa", "submit", "--since", "2020-01-01", "--actor", "a")
    assert code == 2 and "off" in err
    decision = statements[0]["puid"]
    code, _, err = run(data, "reports", "ncmec", "build", decision)
    assert code == 2 and "e-mail" in err  # no reporting person configured
    config = tmp_path / "c.yaml"
    config.write_text("ncmec_reporter: {email: safety@example.org, first_name: T}\n")
    code, out, _ = run(
        data, "reports", "ncmec", "build", decision, "--ip", "198.51.100.4,Login", config=config
    )
    assert code == 0 and "<ipAddress>198.51.100.4</ipAddress>" in out
    code, _, err = run(data, "reports", "ncmec", "submit", decision, "--actor", "a", config=config)
    assert code == 2 and "off" in err
    code, _, err = run(data, "reports", "ncmec", "build", decision, "--ip", "not-an-ip")
    assert code == 2
