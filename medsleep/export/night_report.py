"""A printable night report for one patient (PDF, fpdf2): the night's risk and peak NEWS2, the
NEWS2 aggregate per slot as a bar chart, the episodes, the retained readings with why they were
kept, and who reviewed the night. Audited as ``export.night_report``.

Core PDF fonts hold Latin-1 only, so the few typographic characters the read model writes
(dashes, ≥, quotes) are spelled in ASCII; nothing else about the text changes.
"""

from __future__ import annotations

from datetime import tzinfo

from fpdf import FPDF
from sqlalchemy import Engine

from medsleep.audit import append_with_retry
from medsleep.policy import Policy
from medsleep.read.digest import DigestRow, night_digest
from medsleep.read.patient import PatientView, patient_view
from medsleep.read.text import display_unit, local_time, vital_name

REPORT_ACTION = "export.night_report"
_ASCII = str.maketrans(
    {"–": "-", "—": "-", "≥": ">=", "≤": "<=", "·": "-", "“": '"', "”": '"', "’": "'", "✓": "v"}
)
_BAR_COLOURS = {7: (213, 94, 0), 5: (230, 159, 0), 1: (240, 228, 66), 0: (187, 187, 187)}


def _t(text: str) -> str:
    return text.translate(_ASCII).encode("latin-1", "replace").decode("latin-1")


def night_report_pdf(
    engine: Engine,
    policy: Policy,
    tz: tzinfo,
    patient: str,
    night: tuple[int, int],
    *,
    by: str,
    now_ms: int,
) -> bytes:
    """The PDF of ``patient``'s night ``[start, end)``, audited as made by ``by``."""
    since, until = night
    rows = night_digest(engine, policy, tz, since, until, patient=patient).rows
    view = patient_view(engine, policy, patient, since, until, tz)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _t(f"Night report - {patient}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    window = f"{local_time(since, tz)} to {local_time(until, tz)}"
    pdf.cell(0, 6, _t(f"Night: {window}"), new_x="LMARGIN", new_y="NEXT")
    _summary(pdf, rows[0] if rows else None)
    _news2_bars(pdf, view, tz)
    _episodes(pdf, rows[0] if rows else None)
    _retained(pdf, view, policy, tz)
    _reviews(pdf, rows[0] if rows else None, tz)
    pdf.set_font("Helvetica", "I", 8)
    made = f"Made by {by} at {local_time(now_ms, tz)} with medsleep."
    pdf.cell(0, 8, _t(made), new_x="LMARGIN", new_y="NEXT")
    data = bytes(pdf.output())
    append_with_retry(
        engine,
        actor=by,
        action=REPORT_ACTION,
        details={"patient": patient, "night_start_ms": since, "night_end_ms": until,
                 "bytes": len(data)},
        at_ms=now_ms,
    )  # fmt: skip
    return data


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, _t(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)


def _line(pdf: FPDF, text: str) -> None:
    pdf.multi_cell(0, 5, _t(text), new_x="LMARGIN", new_y="NEXT")


def _summary(pdf: FPDF, row: DigestRow | None) -> None:
    _heading(pdf, "Summary")
    if row is None:
        _line(pdf, "No readings this night.")
        return
    status = {"assessed": "consolidated", "provisional": "provisional (not consolidated yet)",
              "held": "on legal hold (scored from raw readings)"}[row.status]  # fmt: skip
    _line(pdf, f"Risk: {row.band}; peak NEWS2 {row.peak_news2}; status: {status}.")
    _line(pdf, f"Worst values: {', '.join(row.worst) or 'all normal'}.")
    if row.artifacts_left_out:
        _line(pdf, f"{row.artifacts_left_out} readings kept as artifacts were left out of NEWS2.")


def _news2_bars(pdf: FPDF, view: PatientView, tz: tzinfo) -> None:
    _heading(pdf, "NEWS2 aggregate (highest possible per slot; dashed: 5 urgent, 7 emergency)")
    frame = view.news2
    if frame.empty:
        _line(pdf, "No banded vitals this night.")
        return
    x0, width, height = pdf.l_margin, pdf.w - pdf.l_margin - pdf.r_margin, 40.0
    y0 = pdf.get_y() + height
    top = max(10, int(frame["high"].max()) + 1)
    span = max(view.until_ms - view.since_ms, 1)
    for start, end, high in zip(frame["start_ms"], frame["end_ms"], frame["high"], strict=True):
        colour = next(c for floor, c in _BAR_COLOURS.items() if int(high) >= floor)
        pdf.set_fill_color(*colour)
        left = x0 + (int(start) - view.since_ms) / span * width
        bar_w = max((int(end) - int(start)) / span * width - 0.2, 0.3)
        bar_h = max(int(high), 0.15) / top * height  # a 0 is a thin strip, not a gap
        pdf.rect(left, y0 - bar_h, bar_w, bar_h, style="F")
    pdf.set_draw_color(80, 80, 80)
    for level in (5, 7):
        pdf.set_dash_pattern(dash=1, gap=1)
        pdf.line(x0, y0 - level / top * height, x0 + width, y0 - level / top * height)
    pdf.set_dash_pattern()
    pdf.line(x0, y0, x0 + width, y0)
    pdf.set_y(y0 + 1)
    pdf.set_font("Helvetica", size=7)
    ends = f"{local_time(view.since_ms, tz, '%d %b %H:%M')} ... {local_time(view.until_ms, tz)}"
    pdf.cell(0, 4, _t(ends), new_x="LMARGIN", new_y="NEXT")


def _episodes(pdf: FPDF, row: DigestRow | None) -> None:
    _heading(pdf, "Episodes")
    if row is None or not row.episodes:
        _line(pdf, "No episode.")
        return
    for episode in row.episodes:
        kind = "serious" if episode.serious else "minor"
        extra = ", provisional" if episode.provisional else ""
        _line(pdf, f"- {episode.text} ({kind}{extra})")


def _retained(pdf: FPDF, view: PatientView, policy: Policy, tz: tzinfo) -> None:
    _heading(pdf, f"Retained readings and why ({len(view.retained)})")
    if view.retained.empty:
        _line(pdf, "None.")
        return
    for row in view.retained.itertuples():
        value = f"{row.value:.4g} {display_unit(str(row.unit))}".strip()
        when = local_time(int(str(row.t_ms)), tz, "%d %b %H:%M")
        _line(pdf, f"{when}  {vital_name(str(row.code), policy)} {value}: {row.why}")


def _reviews(pdf: FPDF, row: DigestRow | None, tz: tzinfo) -> None:
    _heading(pdf, "Reviewed by")
    if row is None or not row.reviews:
        _line(pdf, "Not reviewed yet.")
        return
    for mark in row.reviews:
        what = "night" if mark.episode_start_ms is None else (
            f"episode at {local_time(mark.episode_start_ms, tz, '%H:%M')}")  # fmt: skip
        note = f': "{mark.comment}"' if mark.comment else ""
        _line(pdf, f"- {mark.reviewer}, {local_time(mark.created_ms, tz)}, {what}{note}")
