"""``tutela image check`` on files: decisions, JSON lines, exit codes, bad files.

The detectors are switched off here (``TUTELA_IMAGE_DETECTORS=[]``: hash banks only) so the
command runs in a blink; the detectors' own paths are tested elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imagesamples import drawn, encode, sample
from typer.testing import CliRunner

from tutela import Guard
from tutela.cli.main import app
from tutela.hashes.repository import BankRepository
from tutela.image.pdq import hash_image


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("TUTELA_IMAGE_DETECTORS", "[]")
    out = {
        "known": tmp_path / "known.jpg",
        "other": tmp_path / "other.png",
        "broken": tmp_path / "broken.png",
    }
    out["known"].write_bytes(encode(sample("camera").convert("RGB"), "JPEG", quality=90))
    out["other"].write_bytes(encode(drawn(7), "PNG"))
    out["broken"].write_bytes(encode(drawn(7), "PNG")[:150])
    guard = Guard.open(data_dir=tmp_path / "data")
    banks = BankRepository(guard.store)
    banks.create_bank("known-list", "block")
    banks.add_entry("known-list", hash_image(sample("camera").convert("RGB")).hash)
    guard.store.close()
    return out


def _run(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "image", "check", *args])


def test_json_lines_one_per_file_and_exit_codes(tmp_path: Path, files: dict[str, Path]) -> None:
    ok = _run(tmp_path, "--json", "--kind", "upload", str(files["other"]))
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["verdict"] == "allow"

    res = _run(tmp_path, "--json", "--kind", "upload", str(files["other"]), str(files["known"]))
    assert res.exit_code == 1
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(Path(d["file"]).name, d["verdict"]) for d in lines] == [
        ("other.png", "allow"),
        ("known.jpg", "block"),
    ]
    assert lines[1]["categories"] == {"sexual_minors": 1.0} and lines[1]["report"] is True


def test_bad_files_exit_2_and_name_the_file(tmp_path: Path, files: dict[str, Path]) -> None:
    res = _run(tmp_path, "--json", str(files["broken"]), str(tmp_path / "missing.png"),
               str(files["other"]))
    assert res.exit_code == 2
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert "truncated" in rows[0]["error"] and rows[0]["file"].endswith("broken.png")
    assert "cannot read" in rows[1]["error"]
    assert rows[2]["verdict"] == "allow"  # the good file is still checked


def test_edit_needs_an_instruction(tmp_path: Path, files: dict[str, Path]) -> None:
    res = _run(tmp_path, "--kind", "edit", str(files["other"]))
    assert res.exit_code == 2
    res = _run(tmp_path, "--kind", "edit", "--prompt", "add a hat", str(files["other"]))
    assert res.exit_code == 0 and "ALLOW" in res.stdout
