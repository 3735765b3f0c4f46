"""The output registry: PDQ hashes of the images Tutela let out, keyed by generation id.

Why a bank: the provenance flow (``trace(image)``) must find where a found image came from
even when its watermark was stripped. Storing each allowed output's PDQ hash in a bank of
kind ``registry`` reuses the same exact index, the same dihedral matching (a mirrored copy
is still found) and the same storage as the abuse banks, and keeps only a hash, never the
image (privacy by design). The provenance area calls :meth:`OutputRegistry.register` when an
image leaves and :meth:`OutputRegistry.lookup` / :meth:`by_generation` when tracing.
"""

from __future__ import annotations

from typing import Any

from tutela.errors import InputError
from tutela.hashes.matcher import BankMatch, BankMatcher
from tutela.hashes.models import Bank, BankKind, Entry
from tutela.hashes.repository import BankRepository
from tutela.image.pdq import PdqResult

DEFAULT_REGISTRY = "output-registry"


class OutputRegistry:
    """Register generated images by hash and find them again."""

    def __init__(
        self,
        repo: BankRepository,
        matcher: BankMatcher | None = None,
        *,
        bank: str = DEFAULT_REGISTRY,
    ) -> None:
        self.repo = repo
        self.matcher = matcher or BankMatcher(repo)
        self.bank = bank

    def ensure_bank(self) -> Bank:
        """The registry bank, created (kind ``registry``) on first use."""
        for existing in self.repo.list_banks(counts=False):
            if existing.name == self.bank:
                if existing.kind is not BankKind.REGISTRY:
                    raise InputError(f"bank {self.bank!r} exists but is not a registry bank")
                return existing
        try:
            return self.repo.create_bank(
                self.bank, BankKind.REGISTRY, description="hashes of images Tutela let out"
            )
        except InputError:  # created meanwhile by another worker
            return self.repo.get_bank(self.bank)

    def register(
        self,
        image_hash: PdqResult | str,
        *,
        generation_id: str,
        metadata: dict[str, Any] | None = None,
    ) -> Entry:
        """Record an output's hash under ``generation_id`` (plus e.g. account, model, time).

        Only the untransformed hash is stored; lookups match all 8 dihedral variants of the
        found image against it. Low-quality hashes are stored too (they are still evidence)
        but will not be matched.
        """
        self.ensure_bank()
        signal = image_hash.hash if isinstance(image_hash, PdqResult) else image_hash
        meta = dict(metadata or {})
        if isinstance(image_hash, PdqResult):
            meta.setdefault("quality", image_hash.quality)
        entry = self.repo.add_entry(
            self.bank, signal, ref=generation_id, metadata=meta, allow_duplicate=True
        )
        assert entry is not None  # allow_duplicate: always added
        return entry

    def by_generation(self, generation_id: str) -> list[Entry]:
        """Every hash registered under ``generation_id``."""
        self.ensure_bank()
        return self.repo.find_by_ref(self.bank, generation_id)

    def lookup(self, image_hashes: PdqResult | list[str]) -> list[BankMatch]:
        """Registered outputs within the registry's threshold of the image, nearest first."""
        self.ensure_bank()
        self.matcher.refresh()
        return self.matcher.match(image_hashes, banks={self.bank}).matches
