"""One registry of views: each tab's fields drive its callback and the controls it shows."""

from __future__ import annotations

import dataclasses

from dashboard.app import create_app
from dashboard.registry import TABS, VIEWS, shows
from dashboard.selection import CONTROLS, Selection


def component_ids(component) -> set[str]:
    found = {component.id} if getattr(component, "id", None) else set()
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            found |= component_ids(child)
    return found


def test_every_view_reads_selection_fields_and_every_tab_is_a_view():
    fields = {f.name for f in dataclasses.fields(Selection)}
    assert all(set(view.depends) <= fields for view in VIEWS.values())
    assert TABS == tuple(VIEWS) and set(
        Selection.__dataclass_fields__["tab"].metadata["choices"]
    ) == set(TABS)


def test_a_tab_shows_only_the_controls_of_its_own_fields(shared_study):
    assert shows("compare", "layer") and shows("compare", "region")
    assert not shows("metrics", "layer") and not shows("metrics", "example")
    assert not shows("functions", "kind") and shows("functions", "function")
    assert not shows("compare", "metric") and shows("heads", "scope")
    ids = component_ids(create_app(data=shared_study).layout())
    # every field's control sits in a box the tabs show or hide
    assert {f"{control}-box" for control in CONTROLS if control != "tabs"} <= ids
