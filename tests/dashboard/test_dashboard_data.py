"""The consolidated sample the dashboard tests read, built once per session, and what they rely
on in it. Other dashboard test files import ``consolidated_sample`` and ``copy_store``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from medsleep.consolidate.job import consolidate
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.store.models import Episode, Retention
from medsleep.timefmt import parse_iso_ms
from tests.conftest import SAMPLE

UNTIL = parse_iso_ms("2026-02-01T00:00:00+00:00")
PATIENTS = ["icu-0001", "icu-0002", "icu-0003"]
_built: dict[str, Path] = {}


def build_sample(url: str, archive: Path) -> None:
    """Ingest the 3-patient ICU sample into ``url`` and consolidate it all."""
    engine = open_store(url)
    try:
        ingest_paths(engine, [str(SAMPLE)])
    finally:
        engine.dispose()
    report = consolidate(Store.open(url, archive), load_policy(), until_ms=UNTIL)
    assert report.status == "committed"


def consolidated_sample(factory: pytest.TempPathFactory) -> Path:
    """Folder with ``medsleep.db`` (the consolidated sample, SQLite) and ``archive/``; built
    once per session: copy it (``copy_store``) before writing to it."""
    if "sqlite" not in _built:
        folder = factory.mktemp("dashboard-sample")
        build_sample(f"sqlite:///{folder / 'medsleep.db'}", folder / "archive")
        _built["sqlite"] = folder
    return _built["sqlite"]


def copy_store(source: Path, target: Path) -> str:
    """Copy a built store folder to ``target``; returns the copy's database URL."""
    shutil.copytree(source, target)
    return f"sqlite:///{target / 'medsleep.db'}"


@pytest.fixture(scope="module")
def sample_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    folder = consolidated_sample(tmp_path_factory)
    engine = open_store(f"sqlite:///{folder / 'medsleep.db'}")
    yield engine
    engine.dispose()


def test_sample_has_episodes_for_every_patient(sample_engine: Engine) -> None:
    with sample_engine.connect() as conn:
        patients = conn.execute(select(Episode.__table__.c.patient).distinct()).scalars().all()  # type: ignore[attr-defined]
    assert sorted(patients) == PATIENTS


def test_sample_retains_readings_for_every_kind_of_reason(sample_engine: Engine) -> None:
    table = Retention.__table__  # type: ignore[attr-defined]
    with sample_engine.connect() as conn:
        kinds = dict(conn.execute(select(table.c.kind, func.count()).group_by(table.c.kind)).all())
    assert set(kinds) == {"rule", "detector", "context", "artifact", "sparse"}
