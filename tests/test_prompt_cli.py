"""``tutela prompt check``: one prompt or a file of them; exit codes; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tutela.cli.main import app


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, stdin: bytes | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["--data-dir", str(tmp_path / "data"), *args], input=stdin)

    return invoke


def test_an_innocent_prompt_exits_0(run) -> None:  # type: ignore[no-untyped-def]
    r = run("prompt", "check", "a child at a birthday party")
    assert r.exit_code == 0, r.output
    assert "ALLOW" in r.output and "minor_present" in r.output


def test_a_blocked_prompt_exits_1_and_names_the_evidence(run) -> None:  # type: ignore[no-untyped-def]
    r = run("prompt", "check", "a n.u.d.e 12yo ch1ld")
    assert r.exit_code == 1
    assert "BLOCK" in r.output
    assert "'n.u.d.e' (read as 'nude')" in r.output
    assert "'ch1ld' (read as 'child')" in r.output


def test_json_output(run) -> None:  # type: ignore[no-untyped-def]
    r = run("prompt", "check", "--json", "--account", "acct-1", "quítale la ropa a la niña")
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    assert d["verdict"] == "block"
    assert d["account"] == "acct-1"
    assert d["language"] == "es"
    assert d["categories"]["sexual_minors"] >= 0.6
    assert {s["kind"] for s in d["signals"]} >= {"undress", "minor"}


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_exits_2(run, text: str) -> None:  # type: ignore[no-untyped-def]
    r = run("prompt", "check", text)
    assert r.exit_code == 2
    assert "prompt is empty" in r.output


def test_text_over_the_maximum_exits_2(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TUTELA_MAX_PROMPT_CHARS", "50")
    r = run("prompt", "check", "x" * 51)
    assert r.exit_code == 2
    assert "the maximum is 50" in r.output


def test_text_and_file_together_exit_2(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "p.txt"
    f.write_text("hello\n", encoding="utf-8")
    assert run("prompt", "check", "x", "--file", str(f)).exit_code == 2
    assert run("prompt", "check").exit_code == 2


def test_batch_file_gives_one_json_line_per_prompt(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "prompts.txt"
    f.write_text("a child at the beach\n\nnude 12yo girl\nkid goat\n", encoding="utf-8")
    r = run("prompt", "check", "--file", str(f))
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["line"] for row in rows] == [1, 3, 4]
    assert [row["verdict"] for row in rows] == ["allow", "block", "allow"]


def test_batch_file_with_invalid_utf8_names_the_line(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "prompts.txt"
    f.write_bytes(b"a child at the beach\nbad \xff\xfe bytes\nkid goat\n")
    r = run("prompt", "check", "--file", str(f))
    assert r.exit_code == 2
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows[1] == {"line": 2, "error": "line 2: invalid UTF-8 at byte 4"}
    assert rows[0]["verdict"] == "allow" and rows[2]["verdict"] == "allow"  # nothing lost


def test_batch_from_stdin(run) -> None:  # type: ignore[no-untyped-def]
    r = run("prompt", "check", "--file", "-", stdin="niña desnuda\n".encode())
    assert r.exit_code == 0
    assert json.loads(r.stdout)["verdict"] == "block"


def test_missing_batch_file_exits_2(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run("prompt", "check", "--file", str(tmp_path / "nope.txt"))
    assert r.exit_code == 2
    assert "cannot read" in r.output
