"""The Merkle tree against RFC 6962's published test vectors and against its own oracle."""

from __future__ import annotations

import hashlib

import pytest

from tutela.evidence import merkle

# The leaf inputs and roots used by the Certificate Transparency reference implementations.
CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_hash_prefixes_follow_the_rfc() -> None:
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert merkle.node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert merkle.root([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", range(1, 9))
def test_roots_match_the_ct_test_vectors(n: int) -> None:
    leaves = [merkle.leaf_hash(x) for x in CT_INPUTS[:n]]
    assert merkle.root(leaves).hex() == CT_ROOTS[n - 1]


def test_bottom_up_root_and_frontier_agree_with_the_recursive_definition() -> None:
    frontier = merkle.Frontier()
    leaves = _leaves(130)
    for n in range(1, 131):
        frontier.append(leaves[n - 1])
        expected = merkle.root_recursive(leaves[:n])
        assert merkle.root(leaves[:n]) == expected
        assert frontier.root() == expected


def test_every_inclusion_proof_verifies_and_a_wrong_leaf_does_not() -> None:
    for n in range(1, 34):
        leaves = _leaves(n)
        r = merkle.root(leaves)
        for i in range(n):
            path = merkle.inclusion_proof(i, leaves)
            assert merkle.verify_inclusion(i, n, leaves[i], path, r)
            assert not merkle.verify_inclusion(i, n, merkle.leaf_hash(b"other"), path, r)
            if n > 1:
                assert not merkle.verify_inclusion((i + 1) % n, n, leaves[i], path, r)
                assert not merkle.verify_inclusion(i, n, leaves[i], path[:-1], r)


def test_every_consistency_proof_verifies_and_a_changed_history_does_not() -> None:
    for n in range(1, 34):
        leaves = _leaves(n)
        new_root = merkle.root(leaves)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, leaves)
            old_root = merkle.root(leaves[:m])
            assert merkle.verify_consistency(m, n, old_root, new_root, proof)
            if m < n:
                forged = merkle.root([merkle.leaf_hash(b"forged"), *leaves[1:m]])
                assert not merkle.verify_consistency(m, n, forged, new_root, proof)
                assert not merkle.verify_consistency(m, n, old_root, new_root, proof[:-1])


def test_out_of_range_indices_are_refused() -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_proof(3, _leaves(3))
    with pytest.raises(ValueError):
        merkle.consistency_proof(0, _leaves(3))


def test_a_frontier_survives_serialisation_and_refuses_nonsense() -> None:
    f = merkle.Frontier()
    for leaf in _leaves(77):
        f.append(leaf)
    g = merkle.Frontier.from_bytes(f.to_bytes())
    assert (g.size, g.root()) == (77, f.root())
    for leaf in _leaves(5):
        f.append(leaf)
        g.append(leaf)
    assert g.root() == f.root()
    for bad in (b"", b"\x00" * 7, f.to_bytes()[:-1], (5).to_bytes(8, "big") + bytes(40)):
        with pytest.raises(ValueError):
            merkle.Frontier.from_bytes(bad)
