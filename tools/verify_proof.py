#!/usr/bin/env python3
"""Check a Tutela audit-log inclusion proof with nothing but the Python standard library.

Usage:
    python3 verify_proof.py proof.json [--public-key BASE64] [--root HEX]
    tutela audit proof 42 | python3 verify_proof.py - --public-key "$(cat audit.pub)"

What it checks, from the proof alone (``tutela audit proof ID`` prints one):
  1. the leaf hash is SHA-256(0x00 || entry), for the entry bytes carried in the proof;
  2. the audit path leads from that leaf to the stated root, by the algorithm of
     RFC 9162 section 2.1.3.2 (interior nodes: SHA-256(0x01 || left || right));
  3. the checkpoint note names the same tree size and root;
  4. the note's Ed25519 signature is valid for the public key (RFC 8032, done here in
     pure Python so this file needs no packages).
Pass --public-key with the key you obtained from the platform out of band (``tutela audit
public-key``); without it the key inside the proof is used, which shows the proof is
self-consistent but not who signed it. --root pins a root you already hold.

Exit status: 0 valid, 1 invalid (the reason is printed), 2 unreadable input.
This file is deliberately standalone: copy it anywhere; it imports nothing from Tutela.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from pathlib import Path

# ---- Ed25519 verification (RFC 8032 section 5.1.7; reference arithmetic) ---------------------
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_Q = 2**252 + 27742317777372353535851937790883648493
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _add(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    e_a = (y1 - x1) * (y2 - x2) % _P
    e_b = (y1 + x1) * (y2 + x2) % _P
    e_c = 2 * t1 * t2 * _D % _P
    e_d = 2 * z1 * z2 % _P
    e, f, g, h = e_b - e_a, e_d - e_c, e_d + e_c, e_b + e_a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, pt: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    acc = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        s >>= 1
    return acc


def _equal(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    if x2 % _P == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _decompress(s: bytes) -> tuple[int, int, int, int] | None:
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
assert _GX is not None
_G = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` by ``public``."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decompress(public)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _Q:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _Q
    return _equal(_mul(s, _G), _add(r, _mul(h, a)))


# ---- Merkle inclusion (RFC 9162 section 2.1.3.2) ----------------------------------------------


def _leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """The root the audit path leads to, or None when the path has the wrong length."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while (fn & 1) == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify(proof: dict, public_key: bytes | None = None, pinned_root: bytes | None = None) -> str:
    """Return "" when the proof holds, else the reason it does not. Raises on malformed JSON."""
    if proof.get("format") != "tutela-inclusion-proof/1":
        return f"unknown proof format {proof.get('format')!r}"
    index, size = int(proof["leaf_index"]), int(proof["tree_size"])
    entry = base64.b64decode(proof["entry"], validate=True)
    leaf = _leaf(entry)
    if leaf.hex() != proof["leaf_hash"]:
        return "the entry does not hash to the stated leaf hash"
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    root = bytes.fromhex(proof["root_hash"])
    if root_from_path(index, size, leaf, path) != root:
        return "the audit path does not lead to the stated root"
    if pinned_root is not None and pinned_root != root:
        return "the proof's root is not the root you pinned"
    cp = proof["checkpoint"]
    note = base64.b64decode(cp["note"], validate=True)
    lines = note.decode("utf-8").split("\n")
    if len(lines) < 3 or lines[1] != str(size) or base64.b64decode(lines[2]) != root:
        return "the checkpoint note names another tree size or root"
    key = public_key if public_key is not None else base64.b64decode(cp["public_key"])
    if not ed25519_verify(key, note, base64.b64decode(cp["signature"], validate=True)):
        return "the checkpoint signature is not valid for this public key"
    try:
        doc = json.loads(entry)
    except ValueError:
        return "the entry is not JSON"
    if doc.get("seq") != index:
        return "the entry's own index differs from the proof's leaf index"
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Verify a Tutela audit-log inclusion proof.")
    ap.add_argument("proof", help="proof JSON file, or - for standard input")
    ap.add_argument("--public-key", help="the log's Ed25519 public key (base64, 32 bytes)")
    ap.add_argument("--root", help="a root hash (hex) you already trust")
    args = ap.parse_args(argv)
    try:
        text = (
            sys.stdin.read() if args.proof == "-" else Path(args.proof).read_text(encoding="utf-8")
        )
        proof = json.loads(text)
        key = base64.b64decode(args.public_key, validate=True) if args.public_key else None
        pinned = bytes.fromhex(args.root) if args.root else None
        reason = verify(proof, key, pinned)
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        print(f"unreadable proof: {exc}", file=sys.stderr)
        return 2
    if reason:
        print(f"INVALID: {reason}")
        return 1
    print(
        f"VALID: entry {proof['leaf_index']} is in the log of {proof['tree_size']} entries "
        f"with root {proof['root_hash']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
