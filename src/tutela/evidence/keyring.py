"""Key-encryption keys for the evidence vault: a local keyring, or any KMS behind two calls.

Why envelope encryption: each item is sealed with its own random data key, and only that
32-byte data key is wrapped with a key-encryption key (KEK). Rotating the KEK then means
re-wrapping small keys, never re-encrypting images, and a KMS never sees evidence content.
Every wrapped key records the id of the KEK that wrapped it, so old keys keep working until
``tutela evidence rewrap`` moves everything to the current one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tutela.errors import ConfigError, TutelaError
from tutela.evidence import secretfile

log = logging.getLogger(__name__)

KEYRING_FILE_NAME = "evidence-keys.json"


class KeyUnavailable(TutelaError):
    """The key an item was wrapped with is not in the keyring (or the wrapped key is corrupt)."""


class KeyWrapper(Protocol):
    """What the vault needs from a key store. A KMS adapter implements these three calls."""

    def current_key_id(self) -> str: ...

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[str, bytes]:
        """Wrap ``data_key`` under the current KEK; returns (key id, wrapped bytes)."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        """Recover a data key; raises :class:`KeyUnavailable` if it cannot."""
        ...


def config_key_id(key: bytes) -> str:
    """The id of a configured key: derived from the key so the same key always has one id."""
    return "cfg-" + hashlib.sha256(b"tutela-kek-id" + key).hexdigest()[:16]


def decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where}: not valid base64") from exc
    if len(key) != 32:
        raise ConfigError(f"{where}: an AES-256 key is 32 bytes, this one is {len(key)}")
    return key


@dataclass(slots=True)
class LocalKeyring:
    """AES-256-GCM KEKs held in this process: the configured key plus a key file.

    The file (``<data_dir>/evidence-keys.json``, mode 0600) keeps every key ever generated,
    so items wrapped before a rotation can still be opened. When ``evidence_key`` is set in
    the configuration it is the current key; otherwise the file's newest key is.
    """

    keys: dict[str, bytes]
    current: str
    path: Path | None = None
    config_managed: bool = False

    def current_key_id(self) -> str:
        return self.current

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        return self.current, nonce + AESGCM(self.keys[self.current]).encrypt(nonce, data_key, aad)

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        if key_id not in self.keys and self.path is not None and self.path.exists():
            self.keys.update(_read_file(self.path)[0])  # rotated by another process since
        kek = self.keys.get(key_id)
        if kek is None:
            raise KeyUnavailable(f"key {key_id} is not in the keyring")
        try:
            return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], aad)
        except InvalidTag:
            raise KeyUnavailable(f"wrapped data key does not open with key {key_id}") from None

    @classmethod
    def load(cls, data_dir: Path, configured: str | None = None) -> LocalKeyring:
        """Keys from the configuration and the key file; generate a key file if neither exists."""
        path = data_dir / KEYRING_FILE_NAME
        keys: dict[str, bytes] = {}
        current = ""
        if path.exists():
            keys, current = _read_file(path)
        if configured:
            key = decode_key(configured, "evidence_key")
            kid = config_key_id(key)
            keys[kid] = key
            return cls(keys, kid, path, config_managed=True)
        if keys:
            return cls(keys, current, path)
        kid, key = _new_key()
        if not secretfile.create_once(path, _encode({kid: key}, kid)):
            return cls(*_read_file(path), path)  # another process generated it first
        log.warning(
            "no evidence_key configured: generated an evidence key in %s. Back it up "
            "and keep it away from database backups; without it the vault cannot be read",
            path,
        )
        return cls({kid: key}, kid, path)

    def rotate(self) -> str:
        """Generate a new current KEK in the key file; returns its id. Old keys are kept."""
        if self.config_managed:
            raise ConfigError(
                "the current evidence key comes from the configuration (evidence_key): rotate "
                "it there, and keep the old key in the key file until 'evidence rewrap' is done"
            )
        if self.path is None:
            raise ConfigError("this keyring has no key file to rotate into")
        with secretfile.locked(self.path):
            if self.path.exists():  # keys another process added since we loaded
                self.keys.update(_read_file(self.path)[0])
            kid, key = _new_key()
            self.keys[kid] = key
            self.current = kid
            file_keys = {k: v for k, v in self.keys.items() if not k.startswith("cfg-")}
            secretfile.replace(self.path, _encode(file_keys, kid))
        return kid


def _new_key() -> tuple[str, bytes]:
    kid = "k-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    return kid, AESGCM.generate_key(bit_length=256)


def _encode(keys: dict[str, bytes], current: str) -> bytes:
    doc = {"current": current, "keys": {k: base64.b64encode(v).decode() for k, v in keys.items()}}
    return json.dumps(doc, indent=1).encode()


def _read_file(path: Path) -> tuple[dict[str, bytes], str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        keys = {kid: decode_key(text, f"{path} key {kid}") for kid, text in doc["keys"].items()}
        current = doc["current"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"cannot read evidence keyring {path}: {exc}") from exc
    if current not in keys:
        raise ConfigError(f"evidence keyring {path}: current key {current} is missing")
    return keys, current


@dataclass(frozen=True, slots=True)
class CallbackKeyring:
    """A KMS (or HSM) behind callables: the vault never holds the KEK itself.

    ``wrap(data_key, aad) -> (key_id, wrapped)`` and ``unwrap(key_id, wrapped, aad) ->
    data_key`` are the KMS's encrypt/decrypt; ``current`` names the key new items use.
    """

    current: Callable[[], str]
    wrap_fn: Callable[[bytes, bytes], tuple[str, bytes]]
    unwrap_fn: Callable[[str, bytes, bytes], bytes]

    def current_key_id(self) -> str:
        return self.current()

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[str, bytes]:
        return self.wrap_fn(data_key, aad)

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        try:
            return self.unwrap_fn(key_id, wrapped, aad)
        except KeyUnavailable:
            raise
        except Exception as exc:  # any KMS failure means: this item cannot be opened now
            raise KeyUnavailable(f"KMS could not unwrap with key {key_id}: {exc}") from exc
