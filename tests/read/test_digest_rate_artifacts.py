"""The generator's labelled heart-rate spikes end up as artifacts by rate of change and add
neither an episode nor NEWS2 points to the morning digest."""

from __future__ import annotations

import csv
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from medsleep.consolidate.job import consolidate
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.read.digest import night_digest
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.store.tables import READING, RETENTION
from medsleep.synth import generate
from medsleep.timefmt import parse_iso_ms

HR = "8867-4"
FAR_FUTURE = parse_iso_ms("2100-01-01T00:00:00Z")
HR_EVENTS = {"tachycardia", "desaturation"}  # the only events that raise heart rate


def test_generated_heart_rate_spikes_are_artifacts_outside_episodes_and_news2(
    tmp_path: Path,
) -> None:
    out = tmp_path / "synth"
    generate(out, patients=8, days=1, seed=5)
    with (out / "artifacts.csv").open() as f:
        spikes = [r for r in csv.DictReader(f) if r["event"] == "artifact-spike"]
    with (out / "labels.csv").open() as f:
        labels = list(csv.DictReader(f))
    assert len(spikes) >= 5  # the seed gives enough of them to mean something
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = open_store(url)
    ingest_paths(engine, [str(out / "observations.ndjson")])
    consolidate(Store.open(url, tmp_path / "archive"), load_policy(), until_ms=FAR_FUTURE)

    with engine.connect() as conn:
        t_all = conn.execute(
            select(READING.c.effective_ms).order_by(READING.c.effective_ms)
        ).scalars()
        times = list(t_all)
        for spike in spikes:
            at = parse_iso_ms(spike["start"])
            reading = conn.execute(
                select(READING.c.id, READING.c.value, READING.c.state).where(
                    READING.c.patient == spike["patient"],
                    READING.c.code == HR,
                    READING.c.effective_ms == at,
                )
            ).one()
            assert reading.value >= 250
            assert reading.state == "retained"
            reasons = conn.execute(
                select(RETENTION.c.kind, RETENTION.c.rule).where(
                    RETENTION.c.reading_id == reading.id
                )
            ).all()
            assert {tuple(r) for r in reasons} == {("artifact", "rate-of-change")}

        kept = conn.execute(
            select(READING.c.patient, READING.c.effective_ms)
            .join(RETENTION, RETENTION.c.reading_id == READING.c.id)
            .where(RETENTION.c.kind != "artifact")
        ).all()
    clinical: dict[str, set[int]] = {}
    for patient, t in kept:
        clinical.setdefault(patient, set()).add(t)

    digest = night_digest(engine, load_policy(), ZoneInfo("UTC"), times[0], times[-1] + 1)
    rows = {row.patient: row for row in digest.rows}
    for spike in spikes:
        at = parse_iso_ms(spike["start"])
        row = rows[spike["patient"]]
        # The spike neither makes an episode nor stretches one: an episode around it (a sparse
        # series, a detector run nearby) starts and ends at readings kept for other reasons.
        for episode in row.episodes:
            if episode.start_ms <= at <= episode.end_ms:
                assert {episode.start_ms, episode.end_ms} <= clinical[spike["patient"]]
        raises_hr = any(
            r["patient"] == spike["patient"] and r["event"] in HR_EVENTS for r in labels
        )
        if not raises_hr:
            assert row.parameter_peaks.get("pulse", 0) < 3  # a spike of >= 250 would score 3
    engine.dispose()
