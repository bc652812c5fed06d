"""The Compliance page's export form through AppTest: a compliance user exports the consolidated
sample; the folder holds a manifest whose counts match the files (and a library export of the
same request), the audit chain names the user, and failures are messages, not tracebacks."""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from medsleep.auth.users import add_user
from medsleep.export.job import ExportRequest, export
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.timefmt import parse_iso_ms
from tests.dashboard.test_dashboard_app import (
    FAST,
    PAGE_FILES,
    PASSWORDS,
    _settings,
    app,
    events,
    login,
)
from tests.dashboard.test_dashboard_data import consolidated_sample, copy_store


@pytest.fixture
def store(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """A copy of the consolidated sample with its archive, a compliance user and a clinician,
    and exports going to ``tmp_path / "exports"``."""
    url = copy_store(consolidated_sample(tmp_path_factory), tmp_path / "store")
    users = tmp_path / "users.json"
    add_user(users, "cleo", "compliance", PASSWORDS["cleo"], hasher=FAST)
    add_user(users, "root", "admin", PASSWORDS["root"], hasher=FAST)
    _settings(monkeypatch, url, users)
    monkeypatch.setenv("MEDSLEEP_ARCHIVE", str(tmp_path / "store" / "archive"))
    monkeypatch.setenv("MEDSLEEP_EXPORT_DIR", str(tmp_path / "exports"))
    engine = open_store(url)
    yield engine
    engine.dispose()


def compliance_page(user: str = "cleo") -> AppTest:
    at = login(app(), user, PASSWORDS[user])
    return at.switch_page(PAGE_FILES["compliance"]).run()


def submit(at: AppTest, fmt: str = "fhir", *, archived: bool = False, **fields: Any) -> AppTest:
    at.radio(key="export_format").set_value(fmt)
    at.checkbox(key="export_archived").set_value(archived)
    for key, value in fields.items():
        if key == "patient":
            at.selectbox(key="export_patient").set_value(value)
        else:
            at.date_input(key=f"export_{key}").set_value(value)
    at.button(key="FormSubmitter:export-Export").click()
    return at.run()


def only_folder(root: Path) -> Path:
    folders = list(root.iterdir())
    assert len(folders) == 1
    return folders[0]


def downloads(at: AppTest) -> list[str]:
    return [b.proto.label for b in at.get("download_button")]


def test_export_form_writes_a_checked_manifest_and_audits_the_user(
    store: Engine, tmp_path: Path
) -> None:
    at = submit(compliance_page(), "fhir", archived=True)
    assert not at.exception
    assert not at.error
    out = only_folder(tmp_path / "exports")
    assert "Z-fhir-" in out.name  # e.g. 20260301T101500Z-fhir-k2j4x8qd
    assert out.stat().st_mode & 0o077 == 0  # owner-only: exports hold PHI
    manifest = json.loads((out / "manifest.json").read_text())
    counts = {entry["url"].rsplit("/", 1)[1]: entry["count"] for entry in manifest["output"]}
    assert set(counts) == {"Observation.ndjson", "Provenance.ndjson", "AuditEvent.ndjson"}
    for entry in manifest["output"]:
        data = (out / entry["url"].rsplit("/", 1)[1]).read_bytes()
        assert data.count(b"\n") == entry["count"]
        assert hashlib.sha256(data).hexdigest() == entry["extension"]["sha256"]
    assert manifest["extension"]["medsleep"]["includeArchived"] is True
    assert manifest["extension"]["medsleep"]["archivedReadingsExported"] > 0

    # The page shows the same files, counts and checksums, and the manifest's own.
    shown = at.dataframe[-1].value.set_index("file")
    for name, count in counts.items():
        assert shown.loc[name, "count"] == count
    manifest_sha = hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    assert shown.loc["manifest.json", "sha256"] == manifest_sha
    assert sorted(downloads(at)) == sorted(f"Download {n}" for n in [*counts, "manifest.json"])

    actor, action, details = events(store)[-1]
    assert (actor, action) == ("cleo", "export")
    assert details["out"] == str(out)
    assert details["include_archived"] is True
    assert details["manifest_sha256"] == manifest_sha
    assert {n: f["count"] for n, f in details["files"].items()} == counts
    assert at.success[-1].value.startswith(f"Exported {details['resources']:,} resources")
    # The audit tables above the form were refreshed after the export.
    assert "export" in list(at.dataframe[1].value["action"])

    # The library, asked the same, writes the same counts (its own audit event comes after
    # the page's, so AuditEvent.ndjson has one more line).
    reference = export(
        Store(store, tmp_path / "store" / "archive", clock=lambda: parse_iso_ms("2026-03-01")),
        tmp_path / "reference",
        ExportRequest(include_archived=True),
    )
    expected = {f.name: f.count for f in reference.files if f.name != "manifest.json"}
    expected["AuditEvent.ndjson"] -= 1
    assert counts == expected


def test_export_form_one_patient_whole_local_days_as_csv(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEDSLEEP_EXPORT_DIR")  # default: medsleep-exports/ in the working dir
    monkeypatch.chdir(tmp_path)
    at = compliance_page("root")
    at = submit(at, "csv", patient="icu-0002", first=date(2026, 1, 5), last=date(2026, 1, 5))
    assert not at.exception
    out = only_folder(tmp_path / "medsleep-exports")
    medsleep = json.loads((out / "manifest.json").read_text())["extension"]["medsleep"]
    # Days are local (Europe/Zurich, UTC+1 in January); the last day is included whole.
    since, until = parse_iso_ms("2026-01-04T23:00:00Z"), parse_iso_ms("2026-01-05T23:00:00Z")
    assert medsleep["patient"] == "icu-0002"
    assert (parse_iso_ms(medsleep["since"]), parse_iso_ms(medsleep["until"])) == (since, until)
    with (out / "readings.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    assert {r["patient"] for r in rows} == {"icu-0002"}
    effective = [int(r["effective_ms"]) for r in rows]
    assert since <= min(effective)
    assert max(effective) < until
    assert events(store)[-1][:2] == ("root", "export")

    # A file over the download limit is not offered for download: its path on the server is.
    monkeypatch.setattr(sys.modules["ui_export"], "DOWNLOAD_LIMIT", 1)
    at.run()
    assert not downloads(at)
    assert any(str(out / "readings.csv") in c.value for c in at.caption)


def test_export_failures_are_messages_and_leave_nothing_behind(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-archive"
    empty.mkdir()
    monkeypatch.setenv("MEDSLEEP_ARCHIVE", str(empty))
    at = submit(compliance_page(), "fhir", archived=True)  # the archived originals are gone
    assert not at.exception
    assert at.error[0].value.startswith("Export failed: ")
    assert list((tmp_path / "exports").iterdir()) == []
    assert "export" not in [action for _, action, _ in events(store)]

    at = submit(at, "fhir", first=date(2026, 1, 6), last=date(2026, 1, 5))
    assert [e.value for e in at.error] == ["The first day is after the last day."]
    assert list((tmp_path / "exports").iterdir()) == []


def test_logging_out_forgets_the_last_export(store: Engine) -> None:
    at = submit(compliance_page(), "fhir")
    assert downloads(at)
    at.sidebar.button(key="logout").click().run()
    at = login(at, "root", PASSWORDS["root"])
    at.switch_page(PAGE_FILES["compliance"]).run()
    assert not downloads(at)
