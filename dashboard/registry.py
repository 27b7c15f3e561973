"""The dashboard's views, one entry per tab: what each reads and which controls it uses.

The callbacks read it (a view re-renders when a field it depends on changes, and its
selection is checked against the stores it reads), and so does the page (a tab shows the
controls of its own fields only).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class View:
    tab: str
    depends: tuple[str, ...]  # the Selection fields its figures are drawn from
    stores: tuple[str, ...] = ("a",)  # the sides whose stores must hold kind, layer and head


_MAP = ("example", "kind", "measure", "layer", "head")
VIEWS = {
    view.tab: view
    for view in (
        View("compare", ("a", "b", "seed_a", "seed_b", *_MAP, "log", "pool", "region"), ("a", "b")),
        View(
            "heads",
            ("a", "seed_a", "example", "kind", "measure", "layer", "scope", "order", "pool"),
        ),
        View("metrics", ("a", "b", "kind", "measure", "metric")),  # tables over every seed
        View("functions", ("a", "b", "function")),  # each variant's first seed
        View("rollout", ("a", "b", "seed_a", "seed_b", "example", "kind", "measure"), ("a", "b")),
        View(
            "cross", ("a", "seed_a", "example", "measure", "layer", "head", "log", "pool", "region")
        ),
    )
}
TABS = tuple(VIEWS)


def shows(tab: str, field: str) -> bool:
    """Whether ``tab`` uses the control of ``field`` (an unknown tab shows every control)."""
    return tab not in VIEWS or field in VIEWS[tab].depends
