"""``tutela banks ...`` end to end on an embedded store (real SQLite, real files)."""

from __future__ import annotations

import json
from pathlib import Path

from imagesamples import drawn, encode, sample
from PIL import Image
from typer.testing import CliRunner

from tutela.cli.main import app
from tutela.image.pdq import hash_image

runner = CliRunner()


def _run(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--data-dir", str(data_dir), "banks", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_create_add_match_export_import_disable(tmp_path: Path) -> None:
    d = tmp_path / "data"
    img = tmp_path / "known.png"
    img.write_bytes(encode(sample("astronaut"), "PNG"))
    other = tmp_path / "other.jpg"
    other.write_bytes(encode(sample("coffee"), "JPEG"))
    drawn_hash = hash_image(drawn(9)).hash

    assert _run(d, "create", "known", "--kind", "block")[0] == 0
    code, _, err = _run(d, "create", "known")
    assert code == 2 and "already exists" in err
    code, out, _ = _run(
        d,
        "add",
        "known",
        str(img),
        drawn_hash,
        "--ref",
        "case-1",
        "--meta",
        '{"note": "benign stand-in"}',
        "--json",
    )
    assert code == 0 and json.loads(out)["added"] == 2

    code, out, _ = _run(d, "match", str(img), str(other))
    first, second = (json.loads(line) for line in out.splitlines())
    assert code == 0
    assert first["matches"][0]["bank"] == "known" and first["matches"][0]["ref"] == "case-1"
    assert second["matches"] == []

    code, out, _ = _run(d, "list", "--json")
    assert json.loads(out)["entries"] == 2

    export = tmp_path / "known.csv"
    assert _run(d, "export", "known", str(export))[0] == 0
    assert export.read_text().startswith("signal_type,signal_str,collab,category,tags")
    assert _run(d, "create", "copy")[0] == 0
    code, out, _ = _run(d, "import", "copy", str(export))
    assert code == 0 and json.loads(out) == {
        "bank": "copy",
        "read": 2,
        "added": 2,
        "skipped_duplicates": 0,
    }
    code, out, _ = _run(d, "import", "copy", "-", "--format", "txt", stdin=f"pdq {drawn_hash}\n")
    assert json.loads(out)["skipped_duplicates"] == 1

    # a bad list changes nothing and says which line
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{hash_image(drawn(10)).hash}\nnonsense\n")
    code, _, err = _run(d, "import", "copy", str(bad))
    assert code == 2 and "line 2" in err
    code, out, _ = _run(d, "list", "--json")
    assert {json.loads(x)["name"]: json.loads(x)["entries"] for x in out.splitlines()} == {
        "copy": 2,
        "known": 2,
    }

    assert _run(d, "disable", "known")[0] == 0
    assert _run(d, "disable", "copy")[0] == 0
    code, out, _ = _run(d, "match", str(img))
    assert json.loads(out)["matches"] == []
    assert _run(d, "enable", "known")[0] == 0
    code, out, _ = _run(d, "match", str(img))
    entry_id = json.loads(out)["matches"][0]["entry_id"]
    assert _run(d, "disable", "--entry", str(entry_id))[0] == 0
    code, out, _ = _run(d, "match", str(img))
    assert json.loads(out)["matches"] == []


def test_bad_inputs_exit_2(tmp_path: Path) -> None:
    d = tmp_path / "data"
    _run(d, "create", "known")
    flat = tmp_path / "flat.png"
    flat.write_bytes(encode(Image.new("RGB", (64, 64)), "PNG"))
    code, _, err = _run(d, "add", "known", str(flat))
    assert code == 2 and "quality" in err
    code, _, err = _run(d, "add", "known", "not-a-hash-or-file")
    assert code == 2 and "neither" in err
    code, _, err = _run(d, "add", "missing-bank", hash_image(drawn(1)).hash)
    assert code == 2 and "no bank named" in err
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    code, out, _ = _run(d, "match", str(text))
    assert code == 2 and "unsupported image type" in json.loads(out)["error"]
    code, _, err = _run(d, "disable")
    assert code == 2 and "either a bank name" in err
    code, _, err = _run(d, "export", "missing", str(tmp_path / "x.csv"))
    assert code == 2 and not (tmp_path / "x.csv").exists()
