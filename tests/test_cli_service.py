"""The service's commands: ``keys``, ``db`` and ``serve`` (first start, several workers)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tutela.cli.main import app
from tutela.store.database import Store

runner = CliRunner()


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out, err = _cli("--data-dir", data, "keys", "create", "--scope", "review", "-n", "rv")
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("tut_") and "shown only once" in err
    code, out, _ = _cli("--data-dir", data, "keys", "create", "--scope", "check", "--json")
    created = json.loads(out)
    assert created["scope"] == "check" and created["key"].startswith("tut_")
    code, out, _ = _cli("--data-dir", data, "keys", "list", "--json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert [k["scope"] for k in listed] == ["review", "check"]
    assert secret not in out and created["key"] not in out
    code, out, _ = _cli("--data-dir", data, "keys", "revoke", created["id"])
    assert code == 0
    code, _, err = _cli("--data-dir", data, "keys", "revoke", created["id"])
    assert code == 2 and "no active key" in err
    code, out, _ = _cli("--data-dir", data, "keys", "list")
    assert code == 0 and "revoked" in out and "active" in out
    code, _, _ = _cli("--data-dir", data, "keys", "create", "--scope", "root")
    assert code == 2


@pytest.mark.postgres
def test_db_upgrade_on_postgres(pg_url: str) -> None:
    env = {"TUTELA_DATABASE_URL": pg_url}
    code, _, err = _cli("keys", "list", env=env)
    assert code == 2 and "tutela db upgrade" in err  # never migrates PostgreSQL implicitly
    code, out, err = _cli("db", "upgrade", env=env)
    assert code == 0, err
    assert "***" in out or "@" in out  # the URL is printed with any password masked
    code, out, _ = _cli("db", "upgrade", env=env)
    assert code == 0
    code, _, _ = _cli("keys", "list", env=env)
    assert code == 0


# --- tutela serve, for real ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    tutela = str(Path(sys.executable).with_name("tutela"))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [tutela, *args, "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text(errors="replace"))
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    _stop(proc)
    raise RuntimeError("server did not become ready: " + log.read_text(errors="replace"))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group (uvicorn's supervisor and its workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.mark.slow
def test_first_start_prints_an_admin_key_once(tmp_path: Path) -> None:
    env = {**os.environ, "TUTELA_LOG_LEVEL": "WARNING"}
    data = str(tmp_path / "data")
    proc, base = _start(["--data-dir", data], env, tmp_path / "first.log")
    try:
        lines = (tmp_path / "first.log").read_text().splitlines()
        key = lines[lines.index(next(x for x in lines if x.startswith("First start"))) + 1]
        r = httpx.post(
            base + "/v1/prompts/check",
            json={"text": "a child at a birthday party", "account": "acct-1"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200 and r.json()["verdict"] == "allow"
        # admin includes review
        got = httpx.get(base + f"/v1/decisions/{r.json()['id']}",
                        headers={"Authorization": f"Bearer {key}"})
        assert got.status_code == 200
    finally:
        _stop(proc)
    proc, _ = _start(["--data-dir", data], env, tmp_path / "second.log")
    _stop(proc)
    assert "tut_" not in (tmp_path / "second.log").read_text()


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_share_postgres(tmp_path: Path, pg_url: str) -> None:
    env = {**os.environ, "TUTELA_LOG_LEVEL": "WARNING", "TUTELA_DATABASE_URL": pg_url}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    store = Store.open(pg_url)
    store.upgrade()
    _, key = store.api_keys.create("review", "workers")
    port = _free_port()
    tutela = str(Path(sys.executable).with_name("tutela"))
    log = tmp_path / "workers.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [tutela, "serve", "--port", str(port), "--workers", "2"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        ready = False
        while time.monotonic() < deadline and not ready:
            try:
                ready = httpx.get(base + "/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.2)
        assert ready, log.read_text(errors="replace")
        headers = {"Authorization": f"Bearer {key}"}
        ids = []
        for i in range(40):  # new connections: the kernel spreads them over both workers
            r = httpx.post(base + "/v1/prompts/check", headers=headers,
                           json={"text": "a lighthouse at dawn", "account": f"acct-{i % 3}"})
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
        assert store.decisions.exists(ids) == set(ids)
        history = httpx.get(base + "/v1/accounts/acct-0/decisions", headers=headers).json()
        assert len(history["decisions"]) == 14
        metrics = httpx.get(base + "/metrics").text
        line = next(x for x in metrics.splitlines() if x.startswith(
            'tutela_http_requests_total{method="POST",route="/v1/prompts/check",status="200"}'))
        assert float(line.rsplit(" ", 1)[1]) == 40.0  # summed over both workers
    finally:
        _stop(proc)
        store.close()
