"""Build the provenance service from the settings (keys, trust anchors, watermark seed).

Where the C2PA key comes from: ``c2pa_cert``/``c2pa_key`` when configured (production), else
the development chain that ``tutela keys c2pa-dev`` wrote into ``data_dir/c2pa``, else none
(outputs are still watermarked and registered; the manifest is left out and the marking
result says so). Trust anchors: ``c2pa_trust_anchors``, else the development root.
"""

from __future__ import annotations

from pathlib import Path

from tutela.config import Settings
from tutela.hashes.matcher import BankMatcher
from tutela.hashes.registry import OutputRegistry
from tutela.hashes.repository import BankRepository
from tutela.provenance.manifest import ManifestSigner
from tutela.provenance.records import GenerationRepository
from tutela.provenance.service import Provenance, load_trust_anchors
from tutela.provenance.tiled import DEFAULT_SEED, TiledEngine
from tutela.store.database import Store

DEV_DIR = "c2pa"


def dev_chain_dir(settings: Settings) -> Path:
    return settings.data_dir / DEV_DIR


def build_provenance(
    settings: Settings, store: Store, matcher: BankMatcher | None = None
) -> Provenance:
    dev = dev_chain_dir(settings)
    cert, key = settings.c2pa_cert, settings.c2pa_key
    if cert is None and (dev / "c2pa-chain.pem").exists():
        cert, key = dev / "c2pa-chain.pem", dev / "c2pa-key.pem"
    signer = ManifestSigner.from_files(cert, key) if cert and key else None
    anchors = settings.c2pa_trust_anchors or dev / "c2pa-root.pem"
    seed = (settings.watermark_seed.get_secret_value().encode()
            if settings.watermark_seed else DEFAULT_SEED)
    repo = BankRepository(store)
    return Provenance(
        GenerationRepository(store),
        OutputRegistry(repo, matcher or BankMatcher(repo)),
        engine=TiledEngine(seed=seed),
        signer=signer,
        trust_anchors_pem=load_trust_anchors(anchors),
    )
