"""The printable night report: a real PDF (fpdf2) with the night's summary, NEWS2 bars,
episodes, retained readings with reasons and reviews, audited; also from the dashboard."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

import tests.dashboard.test_dashboard_app as dashboard_app
from medsleep.audit import iter_events
from medsleep.export.night_report import night_report_pdf
from medsleep.policy import load_policy
from medsleep.read.digest import night_ending
from medsleep.read.reviews import add_review
from tests.dashboard.test_dashboard_app import app, events

dash, users_template = dashboard_app.dash, dashboard_app.users_template  # the same fixtures
ZURICH = ZoneInfo("Europe/Zurich")
NIGHT = night_ending(date(2026, 1, 6), ZURICH)


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode()


def test_the_report_holds_the_night_and_is_audited(dash: Engine, tmp_path: Path) -> None:
    add_review(dash, patient="icu-0002", night=NIGHT, by="ana", now_ms=NIGHT[1], comment="ok")
    pdf = night_report_pdf(
        dash, load_policy(), ZURICH, "icu-0002", NIGHT, by="ana", now_ms=NIGHT[1] + 5
    )
    assert pdf.startswith(b"%PDF-")
    text = _text(pdf, tmp_path)
    for words in ("Night report - icu-0002", "Summary", "NEWS2 aggregate", "Episodes",
                  "Retained readings and why", "Reviewed by", 'ana', '"ok"'):  # fmt: skip
        assert words in text, words
    with dash.connect() as conn:
        last = list(iter_events(conn))[-1]
    assert (last.actor, last.action) == ("ana", "export.night_report")
    assert json.loads(last.details_json)["patient"] == "icu-0002"


def test_the_digest_offers_the_report_for_download(dash: Engine) -> None:
    at = app("ana")
    key = f"report-icu-0001-{NIGHT[0]}"
    at.selectbox(key="digest_patient").select("icu-0001").run()
    at.button(key=f"make-{key}").click().run()
    assert not at.exception
    assert at.session_state[key].startswith(b"%PDF-")
    assert events(dash)[-1][:2] == ("ana", "export.night_report")
