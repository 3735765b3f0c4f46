"""The Merkle tree of RFC 6962 / RFC 9162 (Certificate Transparency), written out in full.

Why this shape: it is the one auditors, CT tooling and transparency logs already know, so a
third party can check our proofs with their own code. Leaves are hashed with a 0x00 prefix
and interior nodes with 0x01, which stops a leaf from ever being passed off as a node (the
second-preimage attack on naive Merkle trees). For a tree of ``n`` leaves that is not a power
of two, the left subtree holds the largest power of two smaller than ``n`` (RFC 9162 §2.1.1).

Everything here is a pure function over lists of leaf hashes: no storage, no I/O. The
recursive definitions follow the RFC text line by line (they are the oracle); the proof
verifiers use the iterative algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, which is what an
outside verifier (``tools/verify_proof.py``) implements too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``: the hash of one log entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def empty_root() -> bytes:
    """The root of the empty tree: the hash of the empty string (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over already-hashed leaves, computed bottom-up in O(n) time.

    Bottom-up pairing gives the same tree as the RFC's recursive split: at each level, pair
    neighbours left to right and carry a lone last node up unchanged.
    """
    if not leaves:
        return empty_root()
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class Frontier:
    """The right edge of a growing tree: one root per perfect subtree, O(log n) memory.

    Why: verifying a log of millions of entries and comparing its root with every signed
    checkpoint on the way must not rebuild the tree from scratch at each checkpoint. The
    RFC's tree over ``n`` leaves is exactly the right fold of the perfect subtrees given by
    the binary digits of ``n``, so appending one leaf costs O(log n) and so does a root.
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (subtree size, subtree root), left to right
        self.size = 0

    def append(self, leaf: bytes) -> None:
        size, h = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, h = left_size + size, node_hash(left, h)
        self._stack.append((size, h))
        self.size += 1

    def to_bytes(self) -> bytes:
        """Compact form: 8-byte big-endian size, then 8-byte size + 32-byte hash per subtree."""
        out = [self.size.to_bytes(8, "big")]
        out += [n.to_bytes(8, "big") + h for n, h in self._stack]
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        """Inverse of :meth:`to_bytes`; raises ValueError when the data is not consistent."""
        if len(data) < 8 or (len(data) - 8) % 40:
            raise ValueError("not a frontier")
        f = cls()
        f.size = int.from_bytes(data[:8], "big")
        for i in range(8, len(data), 40):
            f._stack.append((int.from_bytes(data[i : i + 8], "big"), data[i + 8 : i + 40]))
        sizes = [n for n, _ in f._stack]
        if (
            sum(sizes) != f.size
            or any(n & (n - 1) for n in sizes)
            or sizes != sorted(sizes, reverse=True)
            or len(set(sizes)) != len(sizes)
        ):
            raise ValueError("frontier sizes do not add up")
        return f

    def root(self) -> bytes:
        if not self._stack:
            return empty_root()
        r = self._stack[-1][1]
        for _, h in reversed(self._stack[:-1]):
            r = node_hash(h, r)
        return r


def root_recursive(leaves: Sequence[bytes]) -> bytes:
    """MTH exactly as RFC 9162 §2.1.1 writes it: the reference the tests compare against."""
    n = len(leaves)
    if n == 0:
        return empty_root()
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root_recursive(leaves[:k]), root_recursive(leaves[k:]))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1: the audit path for leaf ``index``."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} outside a tree of size {n}")
    return _path(index, list(leaves))


def _path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, d[:k]), root(d[k:])]
    return [*_path(m - k, d[k:]), root(d[:k])]


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1: shows the first ``old_size`` leaves are unchanged."""
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError(f"old size {old_size} must be in 1..{n}")
    if old_size == n:
        return []
    return _subproof(old_size, list(leaves), True)


def _subproof(m: int, d: list[bytes], whole: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if whole else [root(d)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, d[:k], whole), root(d[k:])]
    return [*_subproof(m - k, d[k:], False), root(d[:k])]


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root implied by an audit path (RFC 9162 §2.1.3.2); raises ValueError if malformed."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("audit path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while (fn & 1) == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("audit path is shorter than the tree is deep")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], expected_root: bytes
) -> bool:
    """True when ``path`` proves leaf ``index`` is in the tree of ``size`` with that root."""
    try:
        return root_from_inclusion(index, size, leaf, path) == expected_root
    except ValueError:
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show the old tree is a prefix of the new one?"""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while (fn & 1) == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
