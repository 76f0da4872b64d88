"""Shared test helpers: the fixture sessions, a copy-on-use temp session, CLI runner."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
sys.path.insert(0, str(FIXTURES))  # make_fixtures' sound models build test signals too


@pytest.fixture()
def qc_session(tmp_path: Path) -> Path:
    """A private copy of fixtures/qc (tests may damage it)."""
    return Path(shutil.copytree(FIXTURES / "qc", tmp_path / "qc"))


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under `folder` with its content hash and mtime (ns): proof that nothing changed."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
