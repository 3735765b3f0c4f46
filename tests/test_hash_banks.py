"""Hash banks on both databases: storage, matching benign images, suppression, the registry.

The "known" lists here are PDQ hashes of benign images (scikit-image samples and pictures
drawn by code) standing in for shared lists, as DESIGN.md's test-data rules require.
"""

from __future__ import annotations

import pytest
from imagesamples import drawn, sample
from PIL import Image, ImageEnhance
from sqlalchemy import inspect

from tutela.errors import InputError
from tutela.hashes.index import LinearScanIndex
from tutela.hashes.matcher import BankMatcher
from tutela.hashes.models import BankKind
from tutela.hashes.registry import OutputRegistry
from tutela.hashes.repository import BankRepository, NewEntry
from tutela.image.pdq import hash_image
from tutela.store.database import Store


@pytest.fixture
def repo(store: Store) -> BankRepository:
    return BankRepository(store)


@pytest.fixture(scope="module")
def astronaut_hashes() -> tuple[str, ...]:
    return hash_image(sample("astronaut")).hashes


def test_migration_creates_tables(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {"hash_banks", "hash_entries"} <= tables


def test_create_list_update_banks(repo: BankRepository) -> None:
    repo.create_bank("partner-a", "block", description="benign stand-in list")
    repo.create_bank("overturned", BankKind.FALSE_POSITIVE, threshold=20)
    with pytest.raises(InputError, match="already exists"):
        repo.create_bank("partner-a")
    with pytest.raises(InputError, match="bank kind"):
        repo.create_bank("x", "allowlist")
    with pytest.raises(InputError, match="threshold"):
        repo.create_bank("y", threshold=300)
    with pytest.raises(InputError, match="bank name"):
        repo.create_bank("../etc")
    banks = {b.name: b for b in repo.list_banks()}
    assert banks["partner-a"].threshold == 31 and banks["partner-a"].enabled
    assert banks["overturned"].kind is BankKind.FALSE_POSITIVE
    updated = repo.update_bank("partner-a", enabled=False, threshold=25)
    assert (updated.enabled, updated.threshold) == (False, 25)
    with pytest.raises(InputError, match="no bank named"):
        repo.update_bank("missing", enabled=True)


def test_add_entries_dedupes_validates_and_is_all_or_nothing(repo: BankRepository) -> None:
    repo.create_bank("known")
    h1, h2 = hash_image(drawn(1)).hash, hash_image(drawn(2)).hash
    result = repo.add_entries(
        "known", [NewEntry(h1, "te-1", {"tags": ["a"]}), NewEntry(h1), NewEntry(h2.upper())]
    )
    assert len(result.added) == 2 and result.skipped_duplicates == 1
    assert repo.add_entries("known", [NewEntry(h1)]).skipped_duplicates == 1
    with pytest.raises(InputError, match="invalid PDQ hash"):
        repo.add_entries("known", [NewEntry(hash_image(drawn(3)).hash), NewEntry("zz" * 32)])
    with pytest.raises(InputError, match="metadata"):
        repo.add_entries("known", [NewEntry(hash_image(drawn(4)).hash, None, {"x": object()})])
    assert repo.get_bank("known").entries == 2  # nothing from the failed adds landed
    entries = list(repo.entries("known"))
    assert [e.signal for e in entries] == [h1, h2]  # stored normalised (lower case)
    assert entries[0].ref == "te-1" and entries[0].metadata == {"tags": ["a"]}
    disabled = repo.set_entry_enabled(entries[0].id, False)
    assert not disabled.enabled
    assert repo.get_bank("known").entries == 1
    assert len(list(repo.entries("known", include_disabled=False))) == 1


def test_matcher_finds_benign_known_image_and_its_variants(
    repo: BankRepository, astronaut_hashes: tuple[str, ...]
) -> None:
    repo.create_bank("known")
    repo.add_entry("known", astronaut_hashes[0], ref="stand-in-1", metadata={"source": "test"})
    for seed in range(20):  # unrelated entries
        repo.add_entry("known", hash_image(drawn(seed)).hash)
    matcher = BankMatcher(repo)
    img = sample("astronaut")
    # re-encoded, brightened, resized, mirrored: still within 31
    variants = [
        img.resize((300, 300)),
        ImageEnhance.Brightness(img).enhance(1.2),
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        img.transpose(Image.Transpose.ROTATE_90),
    ]
    for variant in variants:
        result = matcher.match(hash_image(variant))
        assert result.blocked, "variant not matched"
        (m,) = result.matches
        assert (m.bank, m.kind, m.ref, m.metadata) == (
            "known",
            BankKind.BLOCK,
            "stand-in-1",
            {"source": "test"},
        )
        assert m.distance <= 31
        (signal,) = result.signals()
        assert signal.kind == "hash_match"
        assert signal.evidence["bank_kind"] == "block"
        assert signal.evidence["entry_id"] == m.entry_id
    unrelated = matcher.match(hash_image(sample("coffee")))
    assert not unrelated.matches and not unrelated.blocked and unrelated.signals() == []


def test_matcher_agrees_with_linear_scan(repo: BankRepository) -> None:
    repo.create_bank("known", threshold=40)
    repo.add_entries("known", [NewEntry(hash_image(drawn(s)).hash) for s in range(60)])
    fast = BankMatcher(repo)
    slow = BankMatcher(repo, index_factory=LinearScanIndex)
    for s in range(0, 80, 3):
        img = drawn(s).resize((200, 180))
        assert fast.match(hash_image(img)).to_dict() == slow.match(hash_image(img)).to_dict()


def test_false_positive_bank_suppresses_block_match(
    repo: BankRepository, astronaut_hashes: tuple[str, ...]
) -> None:
    repo.create_bank("known")
    repo.create_bank("reviewed-innocent", BankKind.FALSE_POSITIVE)
    repo.add_entry("known", astronaut_hashes[0])
    matcher = BankMatcher(repo, refresh_seconds=0)
    assert matcher.match(astronaut_hashes).blocked
    repo.add_entry("reviewed-innocent", astronaut_hashes[0], metadata={"review": "r1"})
    result = matcher.match(astronaut_hashes)
    assert not result.blocked
    assert [m.bank for m in result.suppressed] == ["known"]
    assert [s.kind for s in result.signals()] == ["hash_match_suppressed"]
    # other images of the block bank are not suppressed
    repo.add_entry("known", hash_image(sample("camera")).hash)
    assert matcher.match(hash_image(sample("camera"))).blocked


def test_bank_switches_threshold_and_entry_disable(
    repo: BankRepository, astronaut_hashes: tuple[str, ...]
) -> None:
    repo.create_bank("known")
    entry = repo.add_entry("known", astronaut_hashes[0])
    assert entry is not None
    matcher = BankMatcher(repo, refresh_seconds=0)
    query = hash_image(sample("astronaut").resize((256, 256)))
    first = matcher.match(query).matches[0]
    assert 0 < first.distance <= 31
    repo.update_bank("known", enabled=False)
    assert not matcher.match(query).matches
    repo.update_bank("known", enabled=True, threshold=first.distance - 1)
    assert not matcher.match(query).matches
    repo.update_bank("known", threshold=first.distance)
    assert matcher.match(query).blocked
    repo.update_bank("known", threshold=31)
    assert matcher.match(query).blocked
    repo.set_entry_enabled(entry.id, False)
    assert not matcher.match(query).blocked
    assert entry.id not in matcher._index  # removed from the index, not only filtered
    repo.set_entry_enabled(entry.id, True)
    assert matcher.match(query).blocked


def test_changes_by_another_worker_are_picked_up(
    store: Store, astronaut_hashes: tuple[str, ...]
) -> None:
    worker = BankMatcher(BankRepository(store), refresh_seconds=0)
    assert worker.size == 0
    other = BankRepository(store)  # e.g. the CLI adding a list while the service runs
    other.create_bank("known")
    other.add_entries("known", [NewEntry(h) for h in astronaut_hashes[:1]])
    assert worker.match(astronaut_hashes).blocked
    assert worker.size == 1


def test_low_quality_reported_not_matched(repo: BankRepository) -> None:
    flat = hash_image(Image.new("RGB", (200, 200), (90, 90, 90)))
    repo.create_bank("known")
    repo.add_entry("known", flat.hash)
    result = BankMatcher(repo).match(flat)
    assert not result.matched and not result.matches
    (signal,) = result.signals()
    assert signal.kind == "hash_quality_low" and signal.evidence["quality"] == flat.quality


def test_output_registry(repo: BankRepository) -> None:
    registry = OutputRegistry(repo)
    out = hash_image(drawn(42, (400, 300)))
    entry = registry.register(out, generation_id="gen_001", metadata={"account": "acct-9"})
    registry.register(out, generation_id="gen_002")  # the same picture generated twice
    assert [e.id for e in registry.by_generation("gen_001")] == [entry.id]
    assert entry.metadata == {"account": "acct-9", "quality": out.quality}
    found = registry.lookup(
        hash_image(drawn(42, (400, 300)).transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )
    assert sorted(m.ref for m in found) == ["gen_001", "gen_002"]
    assert all(m.kind is BankKind.REGISTRY for m in found)
    # registry matches are not blocks
    assert not BankMatcher(repo).match(out).blocked
    repo.create_bank("plain")
    with pytest.raises(InputError, match="not a registry"):
        OutputRegistry(repo, bank="plain").ensure_bank()
