"""Vega-Lite charts of the views, for ``st.vega_lite_chart``.

Plain spec dicts rather than Altair objects: Altair validates every channel against the schema
as a chart is built, which cost the Patient page ~0.4 s for a month; the specs are the same.
Times go to the browser as the hospital's wall clock on a UTC scale, so every browser shows the
same local times whatever its own zone; the exact UTC time is in each tooltip. Colours are
Okabe–Ito (safe for colour-blind readers) and retention kinds also differ by shape.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

import numpy as np
import pandas as pd

from medsleep.policy import Policy
from medsleep.read.patient import PatientView
from medsleep.read.text import KIND_ORDER, display_unit, is_lab, vital_name

Spec = dict[str, Any]
SUMMARY_FILL, SUMMARY_MEAN, HOT_FILL, HOT = "#56B4E9", "#0072B2", "#7F7F7F", "#000000"
KIND_COLOURS = {
    "rule": "#D55E00",
    "detector": "#009E73",
    "artifact": "#CC79A7",
    "context": "#999999",
    "sparse": "#56B4E9",  # too few to summarise: kept raw
}
KIND_SHAPES = {
    "rule": "diamond",
    "detector": "triangle-up",
    "artifact": "cross",
    "context": "circle",
    "sparse": "square",
}
# The same y-axis width on every chart keeps the stacked charts' time axes aligned.
Y_AXIS = {"minExtent": 45, "maxExtent": 45}
HEIGHT = 250  # pixels for the whole chart (title, axes, plot): pass to st.vega_lite_chart
LEGEND_HEIGHT = 45  # more for the one chart that shows the legend, above its plot
# Streamlit runs Vega with its CSP-safe expression interpreter, so every expression evaluated
# per datum is slow: no ARIA description per mark (each chart has alt text) and no validity
# filter per layer (the views hold no missing values); data is never parsed (times are ms).
LEAN_CONFIG = {"mark": {"aria": False, "invalid": None}}


def with_times(frame: pd.DataFrame, tz: tzinfo, column: str, text: bool = True) -> pd.DataFrame:
    """Add ``<column>_x`` (wall-clock ms, for a UTC scale) and, with ``text``, ``<column>_local``
    (``2026-01-05 02:14 CET``) and ``<column>_utc``; vectorised, as a month has thousands."""
    ms = frame[column].to_numpy(dtype=np.int64)
    local = pd.to_datetime(ms, unit="ms", utc=True).tz_convert(tz).tz_localize(None)
    wall = local.as_unit("ms").asi8
    out = frame.assign(**{f"{column}_x": wall})
    if text and len(ms):
        offsets = (wall - ms) // 60_000
        names = {
            int(o): datetime.fromtimestamp(int(ms[offsets == o][0]) / 1000, tz).strftime("%Z")
            for o in np.unique(offsets)
        }
        clock = np.datetime_as_string(wall.astype("datetime64[ms]"), unit="m")
        zone = np.array([names[int(o)] for o in offsets], dtype=object)
        utc = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="s")
        out[f"{column}_local"] = pd.Series(clock, index=frame.index).str.replace("T", " ") + (
            " " + pd.Series(zone, index=frame.index)
        )
        out[f"{column}_utc"] = pd.Series(utc, index=frame.index) + "Z"
    elif text:
        out[f"{column}_local"] = out[f"{column}_utc"] = pd.Series([], dtype=object)
    return out


def _x(field: str, domain: list[int], title: str) -> Spec:
    years = {datetime.fromtimestamp(ms / 1000, UTC).year for ms in domain}
    long_range = domain[1] - domain[0] > 60 * 86_400_000
    fmt = "%d %b %Y" if long_range else ("%d %b %Y %H:%M" if len(years) > 1 else "%d %b %H:%M")
    return {
        "field": field,
        "type": "temporal",
        "title": title,
        "scale": {"type": "utc", "domain": domain},
        "axis": {"format": fmt, "labelOverlap": True},
    }


def _data(name: str) -> Spec:
    """A named dataset, used as sent: no ``toDate`` per datum for the temporal fields (epoch ms
    already) and no type inference."""
    return {"name": name, "format": {"parse": None}}


def _number(values: pd.Series) -> pd.Series:
    return values.map(lambda v: f"{v:.4g}")


def _tip(field: str, title: str, kind: str = "nominal", fmt: str | None = None) -> Spec:
    tip = {"field": field, "type": kind, "title": title}
    return tip | ({"format": fmt} if fmt else {})


def x_domain(view: PatientView, tz: tzinfo) -> list[int]:
    ends = with_times(pd.DataFrame({"t": [view.since_ms, view.until_ms]}), tz, "t", text=False)
    return [int(v) for v in ends["t_x"]]


def vital_chart(
    view: PatientView, code: str, policy: Policy, tz: tzinfo, tz_name: str, legend: bool = False
) -> Spec:
    """Summary bands (min–max) with their mean, hot readings, retained readings by reason.

    Only the chart with ``legend`` shows one, above the plot: legends beside a plot would make
    the stacked charts' time axes differ in length."""
    cp = policy.for_code(code)
    provisional = view.provisional if view.provisional is not None else view.retained.iloc[:0]
    frames = {"summary": view.bands, "hot": view.hot, "kept": view.clinical,
              "artifacts": view.artifacts, "provisional": provisional}  # fmt: skip
    mine = {name: frame[frame["code"] == code] for name, frame in frames.items()}
    units = [u for frame in mine.values() for u in frame["unit"][:1]]
    unit = display_unit(units[0] if units else (cp.unit if cp else ""))
    y_title = f"{vital_name(code, policy)} ({unit})" if unit else vital_name(code, policy)
    x = _x("start_ms_x", x_domain(view, tz), f"time ({tz_name})")
    y_scale = _y_scale(mine, cp.plausible if cp else None)
    slot_tips = [_tip("from", "from"), _tip("readings", "readings"),
                 _tip("values", f"min–max, mean ({unit})")]  # fmt: skip
    datasets: dict[str, pd.DataFrame] = {}
    layers: list[Spec] = []
    y = {"type": "quantitative", "title": y_title, "scale": y_scale, "axis": Y_AXIS}
    if not mine["summary"].empty:
        datasets["summary"] = _slots(mine["summary"], tz, 0.0)
        layers.append({
            "data": _data("summary"),
            "mark": {"type": "rect", "opacity": 0.35, "color": SUMMARY_FILL},
            "encoding": {"x": x, "x2": {"field": "end_ms_x"}, "y": y | {"field": "y0"},
                         "y2": {"field": "y1"}, "tooltip": slot_tips},
        })  # fmt: skip
        layers.append({
            "data": _data("summary"),
            "mark": {"type": "rule", "color": SUMMARY_MEAN, "strokeWidth": 2},
            "encoding": {"x": x, "x2": {"field": "end_ms_x"}, "y": y | {"field": "mean"}},
        })  # fmt: skip
    if not mine["hot"].empty:
        # One envelope per slot, a little taller than its min–max so that a slot of one
        # reading shows as a tick: no separate mean line (it is in the tooltip).
        datasets["hot"] = _slots(mine["hot"], tz, _tick(y_scale))
        layers.append({
            "data": _data("hot"),
            "mark": {"type": "rect", "opacity": 0.75, "color": HOT},
            "encoding": {"x": x, "x2": {"field": "end_ms_x"}, "y": y | {"field": "y0"},
                         "y2": {"field": "y1"}, "tooltip": slot_tips},
        })  # fmt: skip
    point_x = x | {"field": "t_ms_x"}
    if legend or not mine["kept"].empty:
        data = with_times(mine["kept"], tz, "t_ms")
        datasets["kept"] = data[["t_ms_x", "t_ms_local", "t_ms_utc", "value", "kind", "why", "id"]]
        layers.append(_kept_layer(point_x, y_title, y_scale, unit, legend))
    if not mine["provisional"].empty:
        data = with_times(mine["provisional"], tz, "t_ms")
        datasets["provisional"] = data[["t_ms_x", "t_ms_local", "t_ms_utc", "value", "kind",
                                        "why", "id"]]  # fmt: skip
        layer = _kept_layer(point_x, y_title, y_scale, unit, False, "provisional")
        layer["mark"] |= {"filled": False, "strokeWidth": 2, "size": 70}
        layers.append(layer)
    if cp is not None and cp.critical is not None:
        layers.extend(_limit_layers(cp.critical, y_scale, unit, datasets))
        if is_lab(code, cp):
            layers.extend(_lab_layers(mine, point_x, y_scale, unit, tz, datasets))
    if not mine["artifacts"].empty:
        layers.append(_artifact_lane(mine["artifacts"], point_x, y_scale, unit, tz, datasets))
    return {"title": y_title, "datasets": datasets, "layer": layers, "config": LEAN_CONFIG}


def _slots(frame: pd.DataFrame, tz: tzinfo, tick: float) -> pd.DataFrame:
    """Slots as the browser needs them: x and x2, the envelope ``y0``–``y1`` (``tick`` wider
    than min–max), the mean, and the tooltip as ready text (no formatting per datum there)."""
    data = with_times(with_times(frame, tz, "start_ms"), tz, "end_ms", text=False)
    total, kept = data["n"] + data["kept"], data["kept"]
    readings = total.astype(str).where(kept == 0, total.astype(str) + " (" + kept.astype(str)
                                       + " of them retained)")  # fmt: skip
    low, high = _number(data["min"]), _number(data["max"])
    values = low.where(data["min"] == data["max"], low + "–" + high)
    return pd.DataFrame({
        "start_ms_x": data["start_ms_x"], "end_ms_x": data["end_ms_x"],
        "y0": data["min"] - tick / 2, "y1": data["max"] + tick / 2, "mean": data["mean"],
        "from": data["start_ms_local"] + " (" + data["start_ms_utc"] + " UTC)",
        "readings": readings, "values": values + ", mean " + data["mean"].map("{:.1f}".format),
    })  # fmt: skip


def _tick(y_scale: Spec) -> float:
    """The least height of a hot slot: 1 % of the y range."""
    low, high = y_scale.get("domain", [0.0, 0.0])
    return max((high - low) * 0.01, 0.0)


def _limit_layers(critical: tuple[float, float], y_scale: Spec, unit: str,
                  datasets: dict[str, pd.DataFrame]) -> list[Spec]:  # fmt: skip
    """Critical limits as labelled dashed lines."""
    datasets["limits"] = pd.DataFrame(
        {
            "limit": list(critical),
            "meaning": [
                f"critical low {critical[0]:g} {unit}",
                f"critical high {critical[1]:g} {unit}",
            ],
        }
    )
    y = {"field": "limit", "type": "quantitative", "scale": y_scale}
    return [
        {"data": _data("limits"), "mark": {"type": "rule", "strokeDash": [4, 4],
                                           "color": KIND_COLOURS["rule"]},
         "encoding": {"y": y, "tooltip": _tip("meaning", "limit")}},
        {"data": _data("limits"), "mark": {"type": "text", "align": "left", "dx": 3,
                                           "dy": -6, "x": 0, "color": "#555555"},
         "encoding": {"y": y, "text": {"field": "meaning"}}},
    ]  # fmt: skip


def _lab_layers(mine: dict[str, pd.DataFrame], x: Spec, y_scale: Spec, unit: str, tz: tzinfo,
                datasets: dict[str, pd.DataFrame]) -> list[Spec]:  # fmt: skip
    """A lab's results as labelled points (a 1-minute slot is too thin to see)."""
    results = pd.concat(
        [
            mine["hot"].rename(columns={"start_ms": "t_ms", "mean": "value"}),
            mine["summary"].rename(columns={"start_ms": "t_ms", "mean": "value"}),
            mine["kept"][["t_ms", "value"]],  # retained results are labelled too
        ]
    )
    data = with_times(results[["t_ms", "value"]].reset_index(drop=True), tz, "t_ms")
    data["label"] = _number(data["value"])
    datasets["lab"] = data[["t_ms_x", "t_ms_local", "t_ms_utc", "value", "label"]]
    y = {"field": "value", "type": "quantitative", "scale": y_scale, "axis": Y_AXIS}
    tips = [
        _tip("t_ms_local", "time"),
        _tip("t_ms_utc", "UTC"),
        _tip("label", f"result ({unit})"),
    ]
    return [
        {"data": _data("lab"), "mark": {"type": "point", "filled": True, "color": HOT},
         "encoding": {"x": x, "y": y, "tooltip": tips}},
        {"data": _data("lab"), "mark": {"type": "text", "dy": -10, "fontSize": 10},
         "encoding": {"x": x, "y": y, "text": {"field": "label"}}},
    ]  # fmt: skip


def _artifact_lane(frame: pd.DataFrame, x: Spec, y_scale: Spec, unit: str, tz: tzinfo,
                   datasets: dict[str, pd.DataFrame]) -> Spec:  # fmt: skip
    """Readings kept as artifacts, as crosses along the top edge: out of the axis range (a
    300 /min spike would flatten the trend) and never mistaken for a real value."""
    data = with_times(frame, tz, "t_ms")
    datasets["artifacts"] = data[["t_ms_x", "t_ms_local", "t_ms_utc", "value", "why"]]
    top = y_scale.get("domain", [0, 1])[1]
    return {
        "data": _data("artifacts"),
        "mark": {"type": "point", "shape": "cross", "color": KIND_COLOURS["artifact"],
                 "size": 60, "filled": True},
        "encoding": {"x": x, "y": {"datum": top, "type": "quantitative", "scale": y_scale},
                     "tooltip": [_tip("t_ms_local", "time"), _tip("t_ms_utc", "UTC"),
                                 _tip("value", f"artifact value ({unit}), not counted",
                                      "quantitative"), _tip("why", "why")]},
    }  # fmt: skip


def _kept_layer(
    x: Spec, y_title: str, y_scale: Spec, unit: str, legend: bool, data: str = "kept"
) -> Spec:
    kinds = list(KIND_ORDER)
    shown = {"orient": "top", "direction": "horizontal"} if legend else None
    return {
        "data": _data(data),
        "mark": {"type": "point", "filled": True, "size": 45, "opacity": 0.9},
        "encoding": {
            "x": x,
            "y": {"field": "value", "type": "quantitative", "title": y_title, "scale": y_scale,
                  "axis": Y_AXIS},
            "color": {"field": "kind", "type": "nominal", "title": "kept because",
                      "scale": {"domain": kinds, "range": [KIND_COLOURS[k] for k in kinds]},
                      "legend": shown},
            "shape": {"field": "kind", "type": "nominal", "legend": shown,
                      "scale": {"domain": kinds, "range": [KIND_SHAPES[k] for k in kinds]}},
            "tooltip": [
                _tip("t_ms_local", "time"), _tip("t_ms_utc", "UTC"),
                _tip("value", f"value ({unit})", "quantitative"), _tip("kind", "kept because"),
                _tip("why", "why"), _tip("id", "reading", "quantitative"),
            ],
        },
    }  # fmt: skip


def _y_scale(mine: dict[str, pd.DataFrame], plausible: tuple[float, float] | None) -> Spec:
    """Fit the plausible values; implausible ones (a detached sensor's 0) sit on the edge
    instead of squashing the rest (their tooltips keep the true value)."""
    values = np.concatenate(
        [mine["summary"][["min", "max"]].to_numpy().ravel(),
         mine["hot"][["min", "max"]].to_numpy().ravel(), mine["kept"]["value"].to_numpy(),
         mine["provisional"]["value"].to_numpy()]
    ).astype(np.float64)  # fmt: skip  # artifacts left out: they have their own lane
    if plausible is not None:
        values = values[(values >= plausible[0]) & (values <= plausible[1])]
    if values.size == 0:
        return {"zero": False}
    low, high = float(values.min()), float(values.max())
    pad = max((high - low) * 0.05, 0.5)
    return {"domain": [low - pad, high + pad], "clamp": True, "zero": False}


def news2_chart(view: PatientView, tz: tzinfo, tz_name: str) -> Spec:
    """Lowest–highest NEWS2 aggregate per slot, with the 5 (urgent) and 7 (emergency) lines."""
    data = with_times(with_times(view.news2, tz, "start_ms"), tz, "end_ms", text=False)
    # A slot at 0 is a strip around 0, not nothing: no gap where the patient was fine.
    data = data.assign(y0=data["low"] - 0.3, y1=data["high"] + 0.3, risk=data["high"].map(_risk))
    top = max(10, int(view.news2["high"].max()) + 1) if not view.news2.empty else 10
    y = {
        "field": "y0",
        "type": "quantitative",
        "title": "NEWS2 aggregate (points)",
        "scale": {"domain": [-0.5, top]},
        "axis": Y_AXIS | {"values": list(range(0, top + 1))},
    }
    levels = pd.DataFrame({"level": [5, 7], "meaning": ["5 urgent response", "7 emergency"]})
    risks = list(NEWS2_RISK)
    band = {
        "data": _data("news2"),
        "mark": {"type": "rect", "opacity": 0.8},
        "encoding": {
            "x": _x("start_ms_x", x_domain(view, tz), f"time ({tz_name})"),
            "x2": {"field": "end_ms_x"},
            "y": y,
            "y2": {"field": "y1"},
            "color": {
                "field": "risk",
                "type": "nominal",
                "title": "highest possible",
                "scale": {"domain": risks, "range": [NEWS2_RISK[r] for r in risks]},
                "legend": {"orient": "top", "direction": "horizontal"},
            },
            "tooltip": [
                _tip("start_ms_local", "from"),
                _tip("start_ms_utc", "from (UTC)"),
                _tip("low", "lowest", "quantitative"),
                _tip("high", "highest", "quantitative"),
            ],  # fmt: skip
        },
    }
    lines = {
        "data": _data("levels"),
        "mark": {"type": "rule", "strokeDash": [4, 4], "color": "#555555"},
        "encoding": {
            "y": {"field": "level", "type": "quantitative"},
            "tooltip": _tip("meaning", "threshold"),
        },  # fmt: skip
    }
    labels = {
        "data": _data("levels"),
        "mark": {"type": "text", "align": "left", "x": 3, "dy": -7, "color": "#333333"},
        "encoding": {"y": {"field": "level", "type": "quantitative"},
                     "text": {"field": "meaning"}},
    }  # fmt: skip
    columns = ["start_ms_x", "end_ms_x", "y0", "y1", "low", "high", "risk", "start_ms_local",
               "start_ms_utc"]  # fmt: skip
    return {"title": "NEWS2 aggregate", "datasets": {"news2": data[columns], "levels": levels},
            "layer": [band, lines, labels], "config": LEAN_CONFIG}  # fmt: skip


NEWS2_RISK = {"0": "#BBBBBB", "1–4 low": "#F0E442", "5–6 medium": "#E69F00", "≥ 7 high": "#D55E00"}


def _risk(points: int) -> str:
    if points >= 7:
        return "≥ 7 high"
    return "5–6 medium" if points >= 5 else ("1–4 low" if points >= 1 else "0")


def compression_chart(frame: pd.DataFrame, tz: tzinfo, tz_name: str) -> Spec:
    """Readings per stored row, one bar per day, on a real time axis (in the display zone)."""
    data = with_times(frame, tz, "day_ms").assign(end_x=lambda d: d["day_ms_x"] + 86_400_000)
    data["day"] = data["day_ms_local"].str.slice(0, 10)
    return {
        "data": _data("days"),
        "datasets": {"days": data[["day_ms_x", "end_x", "day", "readings", "rows", "ratio"]]},
        "mark": {"type": "rect", "color": SUMMARY_MEAN},
        "encoding": {
            "x": {"field": "day_ms_x", "type": "temporal", "title": f"day ({tz_name})",
                  "scale": {"type": "utc"}, "axis": {"format": "%d %b %Y", "labelOverlap": True}},
            "x2": {"field": "end_x"},
            "y": {"field": "ratio", "type": "quantitative", "title": "readings per row (×)"},
            "tooltip": [
                _tip("day", "day"),
                _tip("readings", "readings", "quantitative", ","),
                _tip("rows", "rows stored", "quantitative", ","),
                _tip("ratio", "compression (×)", "quantitative", ".1f"),
            ],
        },
    }  # fmt: skip


def reasons_chart(frame: pd.DataFrame) -> Spec:
    kinds = list(KIND_ORDER)
    return {
        "data": _data("reasons"),
        "datasets": {"reasons": frame},
        "mark": {"type": "bar"},
        "encoding": {
            "y": {"field": "rule", "type": "nominal", "title": None, "sort": "-x"},
            "x": {"field": "readings", "type": "quantitative", "title": "retained readings"},
            "color": {"field": "kind", "type": "nominal", "title": "kind",
                      "scale": {"domain": kinds, "range": [KIND_COLOURS[k] for k in kinds]}},
            "tooltip": [_tip("kind", "kind"), _tip("rule", "rule"),
                        _tip("readings", "readings", "quantitative", ",")],
        },
    }  # fmt: skip
