"""The watermark payload: a 40-bit registry key protected by a 24-bit CRC (64 bits in all).

Why a CRC and not just more bits: a decoder run on an image that was never marked still
produces 64 "bits" (noise). The CRC makes such noise a valid payload only once in 2^24
tries, and the trace additionally requires the key to exist in the output registry, so an
unmarked image cannot be attributed to a generation by chance. Why 40 bits for the key:
keys are drawn at random (not sequential), so the key space must be far larger than the
number of images a platform will ever mark for a random 64-bit noise word that passes the
CRC to also name a real generation with negligible probability.
"""

from __future__ import annotations

import secrets

import numpy as np

KEY_BITS = 40
CRC_BITS = 24
PAYLOAD_BITS = KEY_BITS + CRC_BITS

_CRC24_POLY = 0x864CFB  # CRC-24/OpenPGP (RFC 4880), a well-studied 24-bit polynomial
_CRC24_INIT = 0xB704CE


def crc24(data: bytes) -> int:
    """CRC-24/OpenPGP of ``data``."""
    crc = _CRC24_INIT
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= _CRC24_POLY
    return crc & 0xFFFFFF


def new_key() -> int:
    """A fresh random registry key (never 0, so an all-zero read can never be a key)."""
    while True:
        key = secrets.randbits(KEY_BITS)
        if key:
            return key


def encode_key(key: int) -> np.ndarray:
    """``key`` → 64 bits (0/1, MSB first): the key followed by its CRC."""
    if not 0 < key < (1 << KEY_BITS):
        raise ValueError(f"watermark key must be in 1..2^{KEY_BITS}-1, got {key}")
    key_bytes = key.to_bytes(KEY_BITS // 8, "big")
    word = (key << CRC_BITS) | crc24(key_bytes)
    return np.array([(word >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)],
                    dtype=np.uint8)


def decode_bits(bits: np.ndarray) -> int | None:
    """64 bits → the key if the CRC holds (and the key is non-zero), else None."""
    if len(bits) != PAYLOAD_BITS:
        return None
    word = 0
    for bit in bits:
        word = (word << 1) | int(bit)
    key = word >> CRC_BITS
    if key == 0:
        return None
    if crc24(key.to_bytes(KEY_BITS // 8, "big")) != word & 0xFFFFFF:
        return None
    return key
