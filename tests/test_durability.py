"""Durability: SIGKILL the server in the middle of a burst; no answered decision is lost.

A real ``tutela serve`` process takes concurrent prompt checks; once enough have been
answered it is killed without warning. Afterwards every decision id that came back with a
200 must be in the database, and the database must open and pass its integrity check.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tutela.store.database import Store

PROMPTS = ["a watercolour of a lighthouse at dawn", "naked child", "a child at a birthday party"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tutela() -> list[str]:
    return [str(Path(sys.executable).with_name("tutela"))]


def _run_server(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, str]:
    data = tmp_path / "data"
    subprocess.run(
        [*_tutela(), "--data-dir", str(data), "db", "upgrade"],
        env=env, capture_output=True, check=True, timeout=120,
    )
    created = subprocess.run(
        [*_tutela(), "--data-dir", str(data), "keys", "create", "--scope", "check", "--json"],
        env=env, capture_output=True, check=True, timeout=120,
    )
    key = json.loads(created.stdout)["key"]
    port = _free_port()
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [*_tutela(), "--data-dir", str(data), "serve", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((tmp_path / "server.log").read_text(errors="replace"))
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base, key
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")


def _burst_then_kill(proc: subprocess.Popen[bytes], base: str, key: str) -> list[str]:
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    kill_after = 150

    def client(n: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = http.post(
                        "/v1/prompts/check",
                        json={"text": PROMPTS[(n + i) % len(PROMPTS)], "account": f"acct-{n}"},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                except httpx.HTTPError:
                    continue  # the server is gone (or going): those requests got no answer
                if r.status_code == 200:
                    with lock:
                        answered.append(r.json()["id"])
                else:
                    assert r.status_code in (503,), r.text

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(answered) < kill_after and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-burst: requests are in flight right now
    proc.wait(timeout=30)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(answered) >= kill_after
    return answered


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_sigkill_mid_burst_loses_no_answered_decision(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    env = {**os.environ, "TUTELA_LOG_LEVEL": "WARNING", "TUTELA_RATE_LIMIT_PER_MINUTE": "0"}
    if database == "postgresql":
        env["TUTELA_DATABASE_URL"] = request.getfixturevalue("pg_url")
    proc, base, key = _run_server(tmp_path, env)
    try:
        answered = _burst_then_kill(proc, base, key)
    finally:
        if proc.poll() is None:
            proc.kill()
    url = env.get("TUTELA_DATABASE_URL") or f"sqlite:///{tmp_path / 'data' / 'tutela.db'}"
    store = Store.open(url)
    if database == "sqlite":
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    assert store.decisions.exists(answered) == set(answered)
    store.close()
