"""Hash lists in and out: JSON lines, CSV and plain text, with ThreatExchange signal strings.

Why these formats: hash lists move between platforms and child-protection organisations as
files. ThreatExchange's own tooling (``threatexchange dataset -P --csv``) writes CSV with
the columns ``signal_type, signal_str, collab, category, tags``, and its signal strings for
PDQ are 64 lower-case hex characters under the signal type ``pdq``. Tutela reads and writes
those columns (plus ``ref``, ``enabled`` and a ``metadata`` JSON column of its own), so a
ThreatExchange CSV imports as it is, and Tutela's export imports back into Tutela unchanged.

Every input file is hostile: a bad line is refused with its line number and the reason, and
nothing from the file is stored (the repository adds all rows in one transaction).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Any, TextIO

from tutela.errors import InputError
from tutela.hashes.models import Entry
from tutela.hashes.repository import NewEntry, check_entry
from tutela.hashes.signal import SIGNAL_TYPE

MAX_LINE_CHARS = 65_536
CSV_COLUMNS = (
    "signal_type",
    "signal_str",
    "collab",
    "category",
    "tags",
    "ref",
    "enabled",
    "metadata",
)
_TE_META = ("collab", "category", "tags")  # ThreatExchange columns kept in metadata


class ListFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    TXT = "txt"

    @classmethod
    def from_filename(cls, name: str) -> ListFormat:
        lower = name.lower()
        for suffix, fmt in (
            (".jsonl", cls.JSONL),
            (".ndjson", cls.JSONL),
            (".csv", cls.CSV),
            (".txt", cls.TXT),
        ):
            if lower.endswith(suffix):
                return fmt
        raise InputError(
            f"cannot tell the format of {name!r}: use .jsonl, .csv or .txt, "
            "or give the format explicitly"
        )


def _bad(line: int, why: str) -> InputError:
    return InputError(f"line {line}: {why}")


def _check_signal_type(line: int, value: object) -> None:
    if value not in (None, "", SIGNAL_TYPE):
        raise _bad(line, f"signal_type {value!r} is not supported (only {SIGNAL_TYPE!r})")


def _entry(line: int, signal: object, ref: object, metadata: object, enabled: object) -> NewEntry:
    if ref is not None and not isinstance(ref, str):
        raise _bad(line, "ref must be a string")
    if not isinstance(metadata, dict):
        raise _bad(line, "metadata must be a JSON object")
    if not isinstance(enabled, bool):
        raise _bad(line, "enabled must be true or false")
    try:
        return check_entry(NewEntry(signal, ref or None, metadata, enabled))  # type: ignore[arg-type]
    except InputError as exc:
        raise _bad(line, str(exc)) from None


def _lines(stream: TextIO) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(stream, start=1):
        if len(line) > MAX_LINE_CHARS:
            raise _bad(number, f"longer than {MAX_LINE_CHARS} characters")
        yield number, line


def read_jsonl(stream: TextIO) -> Iterator[NewEntry]:
    for number, line in _lines(stream):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad(number, f"not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise _bad(number, "each line must be a JSON object")
        _check_signal_type(number, obj.get("signal_type"))
        if "signal_str" not in obj:
            raise _bad(number, "missing 'signal_str'")
        yield _entry(
            number,
            obj["signal_str"],
            obj.get("ref"),
            obj.get("metadata", {}),
            obj.get("enabled", True),
        )


def _parse_bool(line: int, text: str) -> bool:
    value = text.strip().lower()
    if value in ("", "true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise _bad(line, f"enabled must be true or false, not {text!r}")


def read_csv(stream: TextIO) -> Iterator[NewEntry]:
    reader = csv.DictReader(line for _number, line in _lines(stream))
    fields = reader.fieldnames or []
    if "signal_str" not in fields:
        raise InputError(
            "line 1: CSV header must name a 'signal_str' column "
            "(ThreatExchange layout: signal_type,signal_str,collab,category,tags)"
        )
    try:
        for row in reader:
            number = reader.line_num
            if None in row:
                raise _bad(number, "more fields than the header names")
            _check_signal_type(number, (row.get("signal_type") or "").strip() or None)
            metadata: dict[str, Any] = {}
            raw_meta = (row.get("metadata") or "").strip()
            if raw_meta:
                try:
                    metadata = json.loads(raw_meta)
                except json.JSONDecodeError as exc:
                    raise _bad(number, f"metadata is not valid JSON ({exc.msg})") from None
                if not isinstance(metadata, dict):
                    raise _bad(number, "metadata must be a JSON object")
            for key in _TE_META:
                value = (row.get(key) or "").strip()
                if value:
                    metadata[key] = value.split() if key == "tags" else value
            yield _entry(
                number,
                row.get("signal_str") or "",
                (row.get("ref") or "").strip() or None,
                metadata,
                _parse_bool(number, row.get("enabled") or ""),
            )
    except csv.Error as exc:
        raise _bad(reader.line_num, f"malformed CSV ({exc})") from None


def read_txt(stream: TextIO) -> Iterator[NewEntry]:
    """One hash a line, optionally prefixed with its type (``pdq <hash>``); ``#`` comments."""
    for number, line in _lines(stream):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) == 2:
            _check_signal_type(number, parts[0])
            text = parts[1]
        elif len(parts) > 2:
            raise _bad(number, "expected a hash, or 'pdq <hash>'")
        yield _entry(number, text, None, {}, True)


_READERS = {ListFormat.JSONL: read_jsonl, ListFormat.CSV: read_csv, ListFormat.TXT: read_txt}


def read_entries(data: bytes | TextIO, fmt: ListFormat | str) -> list[NewEntry]:
    """Parse a whole hash list (bytes must be UTF-8; a BOM is tolerated)."""
    fmt = ListFormat(fmt)
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"hash list is not UTF-8 text (byte {exc.start})") from None
        stream: TextIO = io.StringIO(text, newline="")
    else:
        stream = data
    try:
        return list(_READERS[fmt](stream))
    except UnicodeDecodeError as exc:
        raise InputError(f"hash list is not UTF-8 text (byte {exc.start})") from None


def _csv_row(entry: Entry) -> dict[str, str]:
    meta = dict(entry.metadata)
    tags = meta.pop("tags", [])
    return {
        "signal_type": SIGNAL_TYPE,
        "signal_str": entry.signal,
        "collab": str(meta.pop("collab", "")),
        "category": str(meta.pop("category", "")),
        "tags": " ".join(tags) if isinstance(tags, list) else str(tags),
        "ref": entry.ref or "",
        "enabled": "true" if entry.enabled else "false",
        "metadata": json.dumps(meta, ensure_ascii=False, sort_keys=True) if meta else "",
    }


def write_entries(
    entries: Iterable[Entry], fmt: ListFormat | str, out: TextIO, *, header: bool = True
) -> int:
    """Write ``entries``; returns how many were written. ``header=False`` continues a CSV
    written in several calls (streamed exports)."""
    fmt = ListFormat(fmt)
    count = 0
    if fmt is ListFormat.CSV:
        writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
        if header:
            writer.writeheader()
        for entry in entries:
            writer.writerow(_csv_row(entry))
            count += 1
    elif fmt is ListFormat.JSONL:
        for entry in entries:
            out.write(
                json.dumps(
                    {
                        "signal_type": SIGNAL_TYPE,
                        "signal_str": entry.signal,
                        "ref": entry.ref,
                        "metadata": entry.metadata,
                        "enabled": entry.enabled,
                    },
                    ensure_ascii=False,
                    sort_keys=True,
                )
                + "\n"
            )
            count += 1
    else:
        for entry in entries:
            if entry.enabled:  # a plain list has no way to say "disabled": leave those out
                out.write(f"{SIGNAL_TYPE} {entry.signal}\n")
                count += 1
    return count
