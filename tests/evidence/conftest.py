"""Fixtures for the evidence tests: an Evidence area on its own temporary SQLite store."""

from __future__ import annotations

import base64
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

from tutela.config import Settings
from tutela.evidence.service import Evidence

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(
        None,
        data_dir=tmp_path / "data",
        audit_checkpoint_every=4,
        evidence_key=base64.b64encode(os.urandom(32)).decode(),
    )


@pytest.fixture
def evidence(settings: Settings) -> Evidence:
    return Evidence.open(settings)


@pytest.fixture(scope="session")
def proof_verifier() -> ModuleType:
    """tools/verify_proof.py loaded by path, exactly the file an auditor would copy."""
    spec = importlib.util.spec_from_file_location("verify_proof", REPO / "tools/verify_proof.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
