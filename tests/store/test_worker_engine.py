"""A worker process keeps one engine per store for its shards; a forked child makes its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medsleep.store.engine import worker_engine


def test_a_worker_keeps_one_engine_per_store_and_a_forked_child_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = worker_engine(url)
    assert worker_engine(url) is engine
    assert worker_engine(f"sqlite:///{tmp_path / 'other.db'}") is not engine
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)
    assert worker_engine(url) is not engine
