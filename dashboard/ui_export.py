"""The Compliance page's export: ``medsleep.export.job.export`` into a new folder under the export
directory, audited as the logged-in user, and what it wrote (files, counts, sha256, downloads)."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
import ui_common as ui
from sqlalchemy.exc import SQLAlchemyError

from medsleep.auth.users import SessionUser
from medsleep.errors import MedsleepError
from medsleep.export.job import ExportReport, ExportRequest, export
from medsleep.store.handle import Store
from medsleep.timefmt import ms_to_datetime, to_ms, wall_clock_ms

# Larger files stay on the server: a download button holds the file in the server's memory.
DOWNLOAD_LIMIT = 50 * 1024 * 1024
REPORT_KEY = "export_report"
MIME = {
    ".ndjson": "application/fhir+ndjson",
    ".json": "application/json",
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
}


def day_window(
    first: date | None, last: date | None, tz: ZoneInfo
) -> tuple[int | None, int | None]:
    """[since, until) in epoch ms covering the local days ``first`` to ``last``, both whole."""

    def midnight(day: date) -> int:
        return to_ms(datetime.combine(day, time.min, tzinfo=tz))

    return (
        None if first is None else midnight(first),
        None if last is None else midnight(last + timedelta(days=1)),
    )


def new_folder(root: Path, fmt: str, now_ms: int) -> Path:
    """A new, empty, owner-only folder under ``root``, named after the time and format."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = ms_to_datetime(now_ms).strftime("%Y%m%dT%H%M%SZ")
    return Path(tempfile.mkdtemp(prefix=f"{stamp}-{fmt}-", dir=root))


def _message(exc: Exception) -> str:
    if isinstance(exc, SQLAlchemyError):
        return f"database: {getattr(exc, 'orig', None) or exc}"
    if isinstance(exc, OSError) and not isinstance(exc, MedsleepError):
        return f"{exc.strerror or exc}: {exc.filename or ''}"
    return str(exc)


def run(
    user: SessionUser,
    fmt: str,
    patient: str | None,
    first: date | None,
    last: date | None,
    include_archived: bool,
) -> ExportReport | None:
    """Export as ``user`` and return the report; on failure show why and return None."""
    if first is not None and last is not None and first > last:
        st.error("The first day is after the last day.")
        return None
    since_ms, until_ms = day_window(first, last, ui.tz())
    request = ExportRequest(
        format=fmt,
        patient=patient or None,
        since_ms=since_ms,
        until_ms=until_ms,
        include_archived=include_archived,
    )
    s, now_ms, out = ui.settings(), wall_clock_ms(), None
    try:
        out = new_folder(s.export_dir.resolve(), fmt, now_ms)
        with st.spinner("Exporting…"):
            store = Store(ui.engine(), s.archive_root, clock=lambda: now_ms, actor=user.name)
            return export(store, out, request)
    except (MedsleepError, SQLAlchemyError, OSError) as exc:
        if out is not None:
            with contextlib.suppress(OSError):
                out.rmdir()  # a failed export leaves its folder empty: no litter
        st.error(f"Export failed: {_message(exc)}")
        return None


def show(report: ExportReport) -> None:
    """The manifest's summary, and a download button for each file small enough."""
    unit = "resources" if report.format == "fhir" else "rows"
    st.success(
        f"Exported {report.resources:,} {unit} in {report.seconds:.1f} s to `{report.out}` "
        f"(audit entry {report.audit_seq})."
    )
    files = report.files + report.errors
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "file": f.name,
                    "type": f.type,
                    "count": f.count,
                    "bytes": f.bytes,
                    "sha256": f.sha256,
                }  # fmt: skip
                for f in files
            ]
        ),
        hide_index=True,
    )
    if report.excluded:
        left_out = ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in report.excluded.items())
        st.caption(f"Left out (not current data): {left_out}.")
    if report.purged_files:
        st.warning(
            f"{len(set(report.purged_files))} archive files behind exported summaries were "
            "purged: their original readings are gone (the summaries remain)."
        )
    for f in files:
        path = report.out / f.name
        if f.bytes >= DOWNLOAD_LIMIT:
            st.caption(
                f"{f.name} ({f.bytes / 1e6:,.0f} MB) is too large to download here: `{path}`"
            )
        elif not path.is_file():
            st.caption(f"{f.name} is no longer at `{path}`.")
        else:
            st.download_button(
                f"Download {f.name}",
                path.read_bytes,  # read on click, not on every rerun
                file_name=f.name,
                mime=MIME.get(path.suffix, "application/octet-stream"),
                key=f"download-{f.name}",
                on_click="ignore",
            )
