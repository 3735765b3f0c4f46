"""C2PA content credentials: sign a manifest into an output, read and validate one back.

The manifest says what the image is in the vocabulary the ecosystem reads (Content
Credentials viewers, platforms applying the EU AI Act's marking duty): one ``c2pa.created``
action with the IPTC digital source type ``trainedAlgorithmicMedia``, the generator's name
and version, and an opaque generation reference. Never the account: a manifest travels with
the image to anyone who sees it.

Signing uses ``c2pa-python`` (the reference c2pa-rs library). Keys come from a certificate
chain and key on disk (``tutela keys c2pa-dev`` writes a development chain) or from a signing
callback, so production keys can stay in a KMS or HSM.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import c2pa

from tutela.errors import ConfigError

TRAINED_ALGORITHMIC_MEDIA = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
)
GENERATION_PARAM = "org.tutela.generation"
MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True, slots=True)
class ManifestReading:
    """What a found image's manifest says, and whether its signature holds."""

    present: bool
    valid: bool = False
    trusted: bool = False
    state: str | None = None
    generation_ref: str | None = None
    generator: str | None = None
    source_type: str | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "valid": self.valid,
            "trusted": self.trusted,
            "state": self.state,
            "generation_ref": self.generation_ref,
            "generator": self.generator,
            "digital_source_type": self.source_type,
            "errors": list(self.errors),
        }


class ManifestSigner:
    """Signs generated images. Build from files (:meth:`from_files`) or a callback."""

    def __init__(
        self,
        make_signer: Callable[[], c2pa.Signer],
        *,
        generator: str = "Tutela",
        generator_version: str | None = None,
    ) -> None:
        from tutela import __version__

        self._make_signer = make_signer
        self.generator = generator
        self.generator_version = generator_version or __version__
        self._context = c2pa.Context.from_dict(
            # A thumbnail would copy the picture into the manifest a second time; the
            # manifest is about origin, not a preview, and leaving it out halves signing time.
            {"builder": {"thumbnail": {"enabled": False}}}
        )

    @classmethod
    def from_files(cls, chain_pem: Path, key_pem: Path, **kwargs: Any) -> ManifestSigner:
        """A signer from a PEM certificate chain (leaf first) and its ES256 private key."""
        try:
            chain = chain_pem.read_bytes()
            key = key_pem.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the C2PA certificate or key: {exc}") from exc

        def make() -> c2pa.Signer:
            return c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain, key, None))

        try:
            make().close()
        except c2pa.C2paError as exc:
            raise ConfigError(f"the C2PA certificate or key is unusable: {exc}") from exc
        return cls(make, **kwargs)

    @classmethod
    def from_callback(
        cls, sign: Callable[[bytes], bytes], chain_pem: str, **kwargs: Any
    ) -> ManifestSigner:
        """A signer whose ES256 signatures come from ``sign(data) -> signature`` (KMS/HSM)."""

        def make() -> c2pa.Signer:
            return c2pa.Signer.from_callback(sign, c2pa.C2paSigningAlg.ES256, chain_pem)

        return cls(make, **kwargs)

    def manifest(self, generation_ref: str) -> dict[str, Any]:
        """The manifest definition for one generation."""
        agent = {"name": self.generator, "version": self.generator_version}
        return {
            "claim_generator_info": [agent],
            "title": "AI-generated image",
            "assertions": [{
                "label": "c2pa.actions",
                "data": {"actions": [{
                    "action": "c2pa.created",
                    "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                    "softwareAgent": agent,
                    "parameters": {GENERATION_PARAM: generation_ref},
                }]},
            }],
        }

    def sign(self, data: bytes, image_format: str, generation_ref: str) -> bytes:
        """``data`` (an encoded image) with the signed manifest embedded."""
        mime = MIME_TYPES[image_format]
        signer = self._make_signer()
        try:
            with c2pa.Builder(json.dumps(self.manifest(generation_ref)),
                              context=self._context) as builder:
                out = io.BytesIO()
                builder.sign(signer, mime, io.BytesIO(data), out)
                return out.getvalue()
        finally:
            signer.close()


def read_manifest(
    data: bytes, image_format: str, trust_anchors_pem: str | None = None
) -> ManifestReading:
    """Read and validate the C2PA manifest in ``data``, if any. Never raises on bad input.

    ``valid`` means the signature and the hash binding to these very bytes hold; ``trusted``
    additionally that the signing chain leads to one of ``trust_anchors_pem``. A manifest
    that is present but broken (the pixels were changed after signing) is reported with
    its errors, and its generation reference is not to be relied on.
    """
    mime = MIME_TYPES.get(image_format)
    if mime is None:
        return ManifestReading(present=False)
    settings: dict[str, Any] = {"verify": {"verify_trust": bool(trust_anchors_pem)}}
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem}
    try:
        context = c2pa.Context.from_dict(settings)
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=context)
    except c2pa.C2paError as exc:
        return ManifestReading(present=True, errors=[f"unreadable manifest: {exc}"])
    if reader is None:
        return ManifestReading(present=False)
    with reader:
        state = reader.get_validation_state()
        active = reader.get_active_manifest() or {}
        results = reader.get_validation_results() or {}
    failures = (results.get("activeManifest") or {}).get("failure") or []
    errors = [f"{f.get('code')}: {f.get('explanation', '')}" for f in failures]
    ref = generator = source = None
    for assertion in active.get("assertions", []):
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions", []):
            if action.get("action") == "c2pa.created":
                ref = (action.get("parameters") or {}).get(GENERATION_PARAM)
                source = action.get("digitalSourceType")
    info = active.get("claim_generator_info") or []
    if info:
        generator = f"{info[0].get('name')} {info[0].get('version')}"
    trusted = state == "Trusted"
    return ManifestReading(
        present=True,
        valid=state in ("Valid", "Trusted") and not errors,
        trusted=trusted,
        state=state,
        generation_ref=ref if isinstance(ref, str) else None,
        generator=generator,
        source_type=source,
        errors=errors,
    )
