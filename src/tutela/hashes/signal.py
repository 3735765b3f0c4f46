"""PDQ signal strings as ThreatExchange writes them, and their packed binary form.

A PDQ "signal string" in the ThreatExchange ecosystem (``threatexchange`` package,
``PdqSignal``, signal type name ``pdq``) is the 256-bit hash as exactly 64 lower-case hex
characters, most significant bit first. Hash lists from partners arrive in that form and
Tutela writes it back out the same way, so lists round-trip between platforms unchanged.
Internally the index works on the packed form: 32 ``uint8`` per hash (one row per hash).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from tutela.errors import InputError

SIGNAL_TYPE = "pdq"
"""ThreatExchange's name for the PDQ signal type (``PdqSignal.get_name()``)."""

HASH_BITS = 256
HASH_BYTES = HASH_BITS // 8
_HEX = re.compile(r"[0-9a-f]{64}")


def normalise_pdq(value: object) -> str:
    """A valid PDQ signal string from ``value`` (surrounding space and upper case tolerated).

    Raises :class:`InputError` naming the problem, so importers can say which line is bad.
    """
    if not isinstance(value, str):
        raise InputError(
            f"PDQ hash must be a string of 64 hex characters, not {type(value).__name__}"
        )
    text = value.strip().lower()
    if not _HEX.fullmatch(text):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InputError(f"invalid PDQ hash {shown!r}: expected 64 hex characters")
    return text


def to_codes(hashes: Iterable[str]) -> np.ndarray:
    """Hex signal strings → an ``(n, 32)`` uint8 array (the layout FAISS binary indexes use)."""
    joined = "".join(hashes)
    if len(joined) % (2 * HASH_BYTES):
        raise InputError("PDQ hashes must be 64 hex characters each")
    return np.frombuffer(bytes.fromhex(joined), dtype=np.uint8).reshape(-1, HASH_BYTES).copy()


def to_hex(codes: np.ndarray) -> list[str]:
    """An ``(n, 32)`` uint8 array → hex signal strings."""
    arr = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, HASH_BYTES)
    return [row.tobytes().hex() for row in arr]


def hamming(a: str, b: str) -> int:
    """Hamming distance between two PDQ signal strings (0..256)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
