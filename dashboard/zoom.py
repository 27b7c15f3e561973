"""Zooming a map: what Plotly reports after a drag or a double-click (``relayoutData``), as the
region of the map to show next (the selection's ``region``). No Dash here.

The maps' axes are category axes, so a zoomed range is in cells (cell i spans i - 0.5 to
i + 0.5); the selection's current region and pooling say which tokens each cell holds.
"""

from __future__ import annotations

import math

from dashboard import blocks
from dashboard.data import StudyData
from dashboard.selection import BadSelection, Selection, show, store_of
from dashboard.views import axis_tokens

PANELS = ("", "2", "3")  # axis suffixes of the compare view's A, B and B − A panels


def zoom_region(data: StudyData, selection: Selection, relayout, kind: str | None = None):
    """The region to show after ``relayout`` on the map drawn for ``selection`` (of ``kind``,
    default the selection's): "" for the whole map, None when ``relayout`` is not a zoom (a
    resize, say). Raises BadSelection for values that are not a range."""
    ranges = relayout_ranges(relayout)
    if ranges is None:
        return None
    if all(r == "all" for r in ranges.values()):
        return ""
    meta = store_of(data, selection, "a").example_meta(selection.example)
    q, k = axis_tokens(meta, kind or selection.kind)
    shape = (len(q), len(k))
    view = blocks.drawn(shape, selection.region, selection.pool)
    rows = _zoomed(view.rows, ranges["y"], shape[0])
    cols = _zoomed(view.cols, ranges["x"], shape[1])
    return blocks.region_text(rows, cols, shape)


def _zoomed(axis: blocks.Axis, zoom, length: int) -> blocks.Axis:
    """The tokens of ``axis`` a zoom keeps: all of the map's, the zoomed cells', or (no zoom on
    this axis) the ones shown now."""
    if zoom == "all":
        return blocks.Axis(0, length)
    if zoom is None:
        return axis
    try:
        return blocks.Axis(*blocks.zoomed(axis, *zoom))
    except ValueError:
        raise BadSelection(
            "The zoomed range holds none of the map's cells; double-click for the whole map."
        ) from None


def relayout_ranges(relayout) -> dict | None:
    """{"x": zoom, "y": zoom} of the first panel that ``relayout`` zooms, each "all" (reset),
    (low, high) in cells, or None (not zoomed); None when no panel is zoomed."""
    if relayout is None:
        return None
    if not isinstance(relayout, dict):
        raise BadSelection(f"Not a zoom of the map: got {show(relayout)}.")
    for suffix in PANELS:
        ranges = {axis: _axis_zoom(relayout, f"{axis}axis{suffix}") for axis in "xy"}
        if ranges != {"x": None, "y": None}:
            return ranges
    return None


def _axis_zoom(relayout: dict, axis: str):
    """One axis' zoom in ``relayout``: "all", (low, high) or None."""
    if f"{axis}.autorange" in relayout:
        value = relayout[f"{axis}.autorange"]
        if value is not True and value != "reversed":  # what a double-click sets
            raise BadSelection(f"The zoom's {axis}.autorange must be true, got {show(value)}.")
        return "all"
    if f"{axis}.range" in relayout:
        ends = relayout[f"{axis}.range"]
        if not isinstance(ends, list) or len(ends) != 2:
            raise BadSelection(f"The zoom's {axis}.range must be two numbers, got {show(ends)}.")
        return tuple(_number(f"{axis}.range", end) for end in ends)
    keys = [f"{axis}.range[0]", f"{axis}.range[1]"]
    present = [key in relayout for key in keys]
    if not any(present):
        return None
    if not all(present):
        raise BadSelection(f"The zoom of {axis} needs both ends of its range.")
    return tuple(_number(key, relayout[key]) for key in keys)


def _number(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadSelection(f"The zoom's {key} must be a number, got {show(value)}.")
    return float(value)
