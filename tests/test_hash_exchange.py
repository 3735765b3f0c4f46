"""Hash lists in and out: ThreatExchange CSV, JSON lines, plain text; hostile files refused."""

from __future__ import annotations

import io
import json

import pytest
from threatexchange.signal_type.pdq.signal import PdqSignal

from tutela.errors import InputError
from tutela.hashes.exchange import ListFormat, read_entries, write_entries
from tutela.hashes.models import Entry
from tutela.hashes.signal import SIGNAL_TYPE

# ThreatExchange's own PDQ examples (hashes of benign test images shipped with the package).
EXAMPLES = PdqSignal.get_examples()


def test_signal_type_and_strings_are_threatexchanges() -> None:
    assert PdqSignal.get_name() == SIGNAL_TYPE
    entries = read_entries("\n".join(EXAMPLES).encode(), "txt")
    assert [e.signal for e in entries] == EXAMPLES
    for e in entries:
        assert PdqSignal.validate_signal_str(e.signal) == e.signal


def test_threatexchange_dataset_csv_imports() -> None:
    # The layout of `threatexchange dataset -P --csv` (cli/dataset_cmd.py).
    text = (
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{EXAMPLES[0]},Sample Data,ADVERSARIAL,media_priority_s1 test\n"
        f"pdq,{EXAMPLES[12]},Sample Data,,\n"
    )
    a, b = read_entries(text.encode(), "csv")
    assert a.signal == EXAMPLES[0]
    assert a.metadata == {
        "collab": "Sample Data",
        "category": "ADVERSARIAL",
        "tags": ["media_priority_s1", "test"],
    }
    assert b.metadata == {"collab": "Sample Data"}


def _entry(i: int, signal: str, **kw: object) -> Entry:
    from datetime import UTC, datetime

    return Entry(
        i,
        1,
        signal,
        kw.get("ref"),
        dict(kw.get("metadata") or {}),  # type: ignore[arg-type]
        bool(kw.get("enabled", True)),
        datetime.now(UTC),
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_round_trip(fmt: str) -> None:
    entries = [
        _entry(1, EXAMPLES[0], ref="te-1", metadata={"collab": "c", "tags": ["x", "y"], "n": 2}),
        _entry(2, EXAMPLES[1], enabled=False),
        _entry(3, EXAMPLES[13], metadata={"note": 'ünïcode, "quoted"\nnewline'}),
    ]
    out = io.StringIO(newline="")
    assert write_entries(entries, fmt, out) == 3
    back = read_entries(out.getvalue().encode(), fmt)
    assert [(e.signal, e.ref, e.metadata, e.enabled) for e in back] == [
        (e.signal, e.ref, e.metadata, e.enabled) for e in entries
    ]


def test_txt_export_leaves_disabled_out() -> None:
    out = io.StringIO()
    write_entries([_entry(1, EXAMPLES[0]), _entry(2, EXAMPLES[1], enabled=False)], "txt", out)
    assert out.getvalue() == f"pdq {EXAMPLES[0]}\n"


@pytest.mark.parametrize(
    ("fmt", "data", "message"),
    [
        ("txt", f"{EXAMPLES[0]}\nnot-a-hash\n", "line 2: invalid PDQ hash"),
        ("txt", f"md5 {EXAMPLES[0]}\n", "line 1: signal_type 'md5'"),
        ("jsonl", '{"signal_str": "' + EXAMPLES[0] + '"}\n[1]\n', "line 2: each line must be"),
        ("jsonl", "{not json\n", "line 1: not valid JSON"),
        ("jsonl", '{"signal_type": "pdq"}\n', "missing 'signal_str'"),
        ("jsonl", json.dumps({"signal_str": EXAMPLES[0], "metadata": [1]}), "metadata must be"),
        ("jsonl", json.dumps({"signal_str": EXAMPLES[0], "enabled": "yes"}), "enabled must"),
        ("csv", "hash\n" + EXAMPLES[0] + "\n", "signal_str"),
        ("csv", f"signal_str,metadata\n{EXAMPLES[0]},{{bad\n", "line 2: metadata is not valid"),
        ("csv", f"signal_str\n{EXAMPLES[0]},extra\n", "more fields"),
        ("csv", f"signal_str,enabled\n{EXAMPLES[0]},maybe\n", "enabled must be"),
        ("txt", "x" * 70_000, "longer than"),
    ],
)
def test_bad_lists_refused_with_line_numbers(fmt: str, data: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_entries(data.encode(), fmt)


def test_not_utf8_and_bom() -> None:
    with pytest.raises(InputError, match="not UTF-8"):
        read_entries(b"\xff\xfe" + EXAMPLES[0].encode("utf-16-le"), "txt")
    assert read_entries(b"\xef\xbb\xbf" + EXAMPLES[0].encode(), "txt")[0].signal == EXAMPLES[0]


def test_format_from_filename() -> None:
    assert ListFormat.from_filename("a.CSV") is ListFormat.CSV
    assert ListFormat.from_filename("x.ndjson") is ListFormat.JSONL
    with pytest.raises(InputError, match="cannot tell the format"):
        ListFormat.from_filename("list.xlsx")
