"""A development certificate chain for C2PA signing: root → intermediate → leaf.

Why a chain and not one self-signed certificate: C2PA validators (c2pa-rs, the reference
implementation under ``c2pa-python``) refuse a self-signed signing certificate and require the
leaf to be an end-entity certificate with a digitalSignature key usage and an extended key
usage from the C2PA list (we use emailProtection and documentSigning). Making the same shape
as a production chain locally means the code path that signs and validates is the production
one; only the trust anchor differs. Never use these keys in production: they are written to
disk unencrypted, and the root is trusted by nobody but the deployment that made it.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


@dataclass(frozen=True, slots=True)
class DevChain:
    """Where ``tutela keys c2pa-dev`` wrote the chain."""

    chain_pem: Path  # leaf then intermediate (what the signer sends)
    key_pem: Path  # the leaf's private key (PKCS#8, unencrypted: development only)
    root_pem: Path  # the trust anchor validators must be given


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "FOR DEVELOPMENT ONLY"),
    ])


def _cert(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    path_length: int | None,
    days: int,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        ).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_dev_chain(
    out_dir: Path, *, organisation: str = "Tutela development", days: int = 365
) -> DevChain:
    """Write a fresh ES256 chain into ``out_dir`` (created; existing files are replaced)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("Tutela Dev Root CA", organisation)
    inter_name = _name("Tutela Dev Intermediate CA", organisation)
    leaf_name = _name("Tutela Dev C2PA Signer", organisation)
    root = _cert(root_name, root_name, root_key.public_key(), root_key,
                 ca=True, path_length=1, days=days * 5)
    inter = _cert(inter_name, root_name, inter_key.public_key(), root_key,
                  ca=True, path_length=0, days=days * 2)
    leaf = _cert(leaf_name, inter_name, leaf_key.public_key(), inter_key,
                 ca=False, path_length=None, days=days)
    pem = serialization.Encoding.PEM
    chain = DevChain(out_dir / "c2pa-chain.pem", out_dir / "c2pa-key.pem",
                     out_dir / "c2pa-root.pem")
    chain.chain_pem.write_bytes(leaf.public_bytes(pem) + inter.public_bytes(pem))
    chain.root_pem.write_bytes(root.public_bytes(pem))
    key_bytes = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    # The key file is readable by its owner only, even though it is a development key.
    fd = os.open(chain.key_pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    return chain
