"""Ed25519 signatures over log checkpoints.

Why a signed checkpoint: the Merkle root alone shows that entries hang together, but whoever
can write the database could rebuild the whole tree after an edit. A root signed with a key
that the database does not hold, published or handed to an auditor, pins the log: any later
edit of an entry at or below that size changes the root and breaks the signature check.

The signed text follows the shape of a transparency-log checkpoint (origin, size, base64
root, one per line), plus the time, so it reads the same to people and to tools.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tutela.errors import ConfigError
from tutela.evidence import secretfile

log = logging.getLogger(__name__)

KEY_FILE_NAME = "audit-signing-key.pem"


def checkpoint_note(origin: str, tree_size: int, root_hash: bytes, at: datetime) -> bytes:
    """The exact bytes a checkpoint signature covers."""
    return (
        f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n{at.isoformat()}\n"
    ).encode()


def key_id_for(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 8 bytes of its SHA-256, in hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class CheckpointSigner:
    """Signs checkpoints with one Ed25519 key and verifies them with its public half."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def public_key_raw(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> str:
        return key_id_for(self.public_key)

    def sign(self, note: bytes) -> bytes:
        return self.private_key.sign(note)

    def verify(self, note: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, note)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def generate(cls) -> CheckpointSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, path: Path, *, create: bool = True) -> CheckpointSigner:
        """Load the PEM key at ``path``; create it (mode 0600, with a warning) when absent.

        A generated key is only as safe as the data directory it sits in: production should
        keep it elsewhere (a secrets mount) and back it up, or signatures cannot be checked.
        """
        if path.exists():
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (ValueError, TypeError, OSError) as exc:
                raise ConfigError(f"cannot read audit signing key {path}: {exc}") from exc
            if not isinstance(key, Ed25519PrivateKey):
                raise ConfigError(f"audit signing key {path} is not an Ed25519 key")
            return cls(key)
        if not create:
            raise ConfigError(f"audit signing key {path} does not exist")
        signer = cls.generate()
        pem = signer.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if not secretfile.create_once(path, pem):  # another process made it first: use it
            return cls.from_file(path, create=False)
        log.warning(
            "generated a new audit signing key at %s: back it up and keep it outside the "
            "database; checkpoints cannot be verified without its public half",
            path,
        )
        return signer
