"""Bad values posted straight to Dash's callback endpoint, as any HTTP client can send them.

Every callback answers HTTP 200 with a short message where its figure (or notes) go, and
nothing is logged at error level (a traceback per bad request is what slowed the server down).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from dashboard.app import create_app
from dashboard.selection import Selection
from tests.dashboard.conftest import make_study
from tests.support.endpoint import ENDPOINT, callback_body, control_inputs, response_value

GOOD = Selection(a="a", b="b", example="e0", kind="encoder", layer=1, head="2")

# kind of bad value -> (control, value, the message shown)
BAD = {
    "unknown variant": ("variant-a", "nope", "Unknown variant 'nope'; this study has: a, b."),
    "unknown example": ("example", "e9", "Unknown example 'e9': it is not in the probe set."),
    "unknown kind": ("kind", "sideways", "Variant a has no 'sideways' attention; it has: encoder."),
    "norm kind": (
        "kind",
        "encoder_norm",
        "Attention kind 'encoder_norm' is encoder with measure norms: choose those instead.",
    ),
    "unknown measure": (
        "measure",
        "sideways",
        "Unknown measure 'sideways'; choose one of: weights, norms.",
    ),
    "unknown head order": (
        "head-order",
        "sideways",
        "Unknown head order 'sideways'; choose one of: natural, matched.",
    ),
    "layer out of range": ("layer", 2, "Layer 2 is out of range: variant a has layers 0–1."),
    "negative layer": ("layer", -1, "Layer -1 is out of range: variant a has layers 0–1."),
    "head out of range": ("head", "4", "Head 4 is out of range: variant a has heads 0–3."),
    "non-numeric layer": ("layer", "abc", "Layer must be a whole number, got 'abc'."),
    "non-numeric head": ("head", "abc", "Head must be a whole number or 'mean', got 'abc'."),
    "None": ("variant-b", None, "No variant B chosen."),
    "a list": ("example", ["e0"], "Example must be text, got a list."),
    "a list of measures": ("measure", ["norms"], "Measure must be text, got a list."),
    "a dict": ("layer", {"layer": 1}, "Layer must be a whole number, got a dict."),
    "unknown tab": (
        "tabs",
        "bogus",
        "Unknown tab 'bogus'; choose one of: compare, heads, metrics, functions, rollout, cross.",
    ),
    "unknown pooling": ("pooling", "median", "Unknown pooling 'median'; choose one of: max, mean."),
    "unknown function": (
        "function",
        "copying",
        "Unknown head function 'copying'; choose one of: previous_token, duplicate_token, "
        "induction, prefix_matching, retrieval.",
    ),
    "bad zoom": (
        "zoom",
        "1-4,0-2",
        "Zoom must be 'first:end,first:end' (query tokens, then key tokens), got '1-4,0-2'.",
    ),
    "empty zoom": (
        "zoom",
        "3:3,0:2",
        "Zoom '3:3,0:2' is empty: each first token must come before its end.",
    ),
    "zoom not text": ("zoom", 7, "Zoom must be text, got 7."),
}
# values of the wrong type or shape: every callback that reads the controls refuses them
ANYWHERE = ["non-numeric layer", "non-numeric head", "None", "a list", "a dict", "unknown tab"]
ANYWHERE += ["a list of measures", "bad zoom", "empty zoom", "zoom not text"]
# values checked against the study: each view checks those of the controls it shows
KINDS = ["unknown kind", "norm kind", "unknown measure"]
SHOWN = {
    "compare": ["unknown variant", "unknown example", *KINDS, "layer out of range"]
    + ["negative layer", "head out of range", "unknown pooling"],
    "heads": ["unknown variant", "unknown example", *KINDS, "layer out of range"]
    + ["unknown head order", "unknown pooling"],
    "metrics": ["unknown variant", *KINDS],
    "functions": ["unknown variant", "unknown function"],
    "rollout": ["unknown variant", "unknown example", *KINDS],
    "cross": ["unknown variant", "unknown example", "unknown measure", "layer out of range"]
    + ["head out of range", "unknown pooling"],
}
GRAPHS = {
    "compare": ["compare-graph"],
    "heads": ["heads-graph"],
    "metrics": ["metric-graph", "similarity-graph", "performance-graph"],
    "functions": ["functions-graph", "ablation-graph"],
    "rollout": ["rollout-graph"],
    "cross": ["cross-graph"],
}


@pytest.fixture(scope="module")
def app(shared_study):
    """One app for the module: these tests send requests and change nothing of the study."""
    return create_app(data=shared_study)


@pytest.fixture
def client(app):
    return app.server.test_client()


@pytest.fixture(autouse=True)
def nothing_logged(caplog):
    with caplog.at_level(logging.WARNING):
        yield
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def inputs(selection: Selection = GOOD, **bad) -> dict:
    """Every input and state of the app's callbacks, by "component.property"."""
    return control_inputs(selection) | {
        "url.search": selection.to_query(),
        "label-filter.value": None,
        "export-csv.n_clicks": 1,
        "heads-graph.clickData": {"points": [{"curveNumber": 3}]},
        "compare-graph.relayoutData": None,
        "cross-graph.relayoutData": None,
    }


def with_bad(values: dict, bad: str) -> dict:
    control, value, _ = BAD[bad]
    return values | {f"{control}.value": value}


def post(app, client, output: str, values: dict, changed: list[str] | None = None):
    """POST to the callback that outputs ``output``; "graph.figure@" names a duplicate output."""

    def found(part: str) -> bool:
        return part.startswith(output) if output.endswith("@") else part == output

    key = next(k for k in app.callback_map if any(map(found, k.strip(".").split("..."))))
    return client.post(ENDPOINT, json=callback_body(app, key, values, changed))


def message(answer: dict, graph: str) -> str:
    figure = response_value(answer, graph, "figure")
    return figure["layout"]["annotations"][0]["text"]


@pytest.mark.parametrize(
    ("tab", "bad"), [(tab, bad) for tab, shown in SHOWN.items() for bad in shown + ANYWHERE]
)
def test_a_bad_value_is_a_message_in_the_views_figures(app, client, tab, bad):
    values = with_bad(inputs(replace(GOOD, tab=tab)), bad)
    response = post(app, client, f"{GRAPHS[tab][0]}.figure", values)
    assert response.status_code == 200
    for graph in GRAPHS[tab]:
        assert message(response.get_json(), graph) == BAD[bad][2]


@pytest.mark.parametrize("measure", ["weights", "norms"])
def test_good_values_render_every_view(app, client, measure):
    # metrics: A, B, B − A and the significance marks (A is B's reference)
    traces = {"compare": 3, "heads": 4, "metrics": 4, "functions": 3, "rollout": 2, "cross": 1}
    for tab, graphs in GRAPHS.items():
        selection = replace(GOOD, tab=tab, a="b" if tab == "cross" else "a", measure=measure)
        response = post(app, client, f"{graphs[0]}.figure", inputs(selection))
        assert response.status_code == 200
        figure = response_value(response.get_json(), graphs[0], "figure")
        assert len(figure["data"]) == traces[tab], tab


def test_a_view_ignores_values_it_does_not_show_and_closed_tabs_compute_nothing(app, client):
    for bad in ("unknown example", "unknown head order"):
        metrics = with_bad(inputs(replace(GOOD, tab="metrics")), bad)
        response = post(app, client, "metric-graph.figure", metrics)
        assert response.status_code == 200
        assert len(response_value(response.get_json(), "metric-graph", "figure")["data"]) == 4
    # the heads tab is open: compare sends no update, even for a bad value of its own
    heads = with_bad(inputs(replace(GOOD, tab="heads")), "head out of range")
    assert post(app, client, "compare-graph.figure", heads).get_json()["response"] == {}


def notes(answer: dict) -> list[str]:
    return [note["props"]["children"] for note in response_value(answer, "url-notes", "children")]


@pytest.mark.parametrize("bad", SHOWN["compare"] + ANYWHERE)
def test_a_bad_control_value_is_a_note_and_the_url_is_kept(app, client, bad):
    control = BAD[bad][0]
    response = post(app, client, "url.search", with_bad(inputs(), bad), [f"{control}.value"])
    assert response.status_code == 200
    answer = response.get_json()
    assert notes(answer) == [BAD[bad][2]]
    assert "search" not in answer["response"].get("url", {})  # the URL keeps the last good view


def test_a_good_control_value_rewrites_the_url(app, client):
    response = post(app, client, "url.search", inputs(), ["layer.value"])
    answer = response.get_json()
    assert response_value(answer, "url", "search") == GOOD.to_query()
    assert notes(answer) == []


def test_bad_values_in_the_url_are_explained_and_replaced(app, client):
    search = "?a=nope&example=e9&kind=sideways&layer=abc&head=9&log=maybe"
    response = post(app, client, "url.search", inputs() | {"url.search": search}, ["url.search"])
    assert response.status_code == 200
    answer = response.get_json()
    assert notes(answer) == [
        "Layer must be a whole number, got 'abc'. The URL's value is ignored.",
        "Log scale must be on or off, got 'maybe'. The URL's value is ignored.",
        "Unknown variant 'nope'; this study has: a, b. Showing 'a' instead.",
        "Unknown example 'e9': it is not in the probe set. Showing 'e0' instead.",
        "Variant a has no 'sideways' attention; it has: encoder. Showing 'encoder' instead.",
        "Head 9 is out of range: variant a has heads 0–3. Showing 'mean' instead.",
    ]
    controls = {c: response_value(answer, c, "value") for c in ("variant-a", "layer", "head")}
    assert controls == {"variant-a": "a", "layer": 0, "head": "mean"}


@pytest.mark.parametrize("search", [["?a=b"], {"a": "b"}, 7])
def test_a_url_that_is_not_text_is_explained(app, client, search):
    response = post(app, client, "url.search", inputs() | {"url.search": search}, ["url.search"])
    assert response.status_code == 200
    assert notes(response.get_json())[0].startswith("The URL's query must be text, got ")


@pytest.mark.parametrize(
    ("label", "text"),
    [
        ("nope", "Unknown label 'nope'; the probe set has: fresh, rotten."),
        (["fresh"], "Unknown label a list; the probe set has: fresh, rotten."),
        ({"x": 1}, "Unknown label a dict; the probe set has: fresh, rotten."),
        (7, "Unknown label 7; the probe set has: fresh, rotten."),
    ],
)
def test_a_bad_label_filter_keeps_every_example_under_a_note(app, client, label, text):
    response = post(app, client, "example.options", {"label-filter.value": label})
    assert response.status_code == 200
    note, *options = response_value(response.get_json(), "example", "options")
    assert note == {"label": text, "value": "", "disabled": True}
    assert [o["value"] for o in options] == ["e0", "e1", "e2"]


def test_the_label_filter_filters(app, client):
    for label, ids in [(None, ["e0", "e1", "e2"]), ("fresh", ["e0", "e2"])]:
        response = post(app, client, "example.options", {"label-filter.value": label})
        assert [
            o["value"] for o in response_value(response.get_json(), "example", "options")
        ] == ids


@pytest.mark.parametrize("bad", SHOWN["compare"] + ANYWHERE)
def test_a_bad_value_in_the_csv_export_is_a_message_in_the_compare_graph(app, client, bad):
    response = post(app, client, "download-csv.data", with_bad(inputs(), bad))
    assert response.status_code == 200
    answer = response.get_json()
    assert message(answer, "compare-graph") == BAD[bad][2]
    assert "download-csv" not in answer["response"]


def test_the_csv_export_of_good_values(app, client):
    response = post(app, client, "download-csv.data", inputs())
    download = response_value(response.get_json(), "download-csv", "data")
    assert download["filename"] == "attention_e0_encoder_l1_h2_a_vs_b.csv"
    lines = download["content"].splitlines()
    assert lines[0] == "query_index,query_token,key_index,key_token,a,b,b_minus_a"
    assert len(lines) == 1 + 4 * 4


@pytest.mark.parametrize(
    ("click", "text"),
    [
        (None, "Not a click on a heatmap: got None."),
        ({}, "Not a click on a heatmap: got a dict."),
        ({"points": []}, "Not a click on a heatmap: got a dict."),
        ("click", "Not a click on a heatmap: got 'click'."),
        ([{"curveNumber": 1}], "Not a click on a heatmap: got a list."),
        (
            {"points": [{"curveNumber": "abc"}]},
            "The clicked heatmap's number must be whole, got 'abc'.",
        ),
        ({"points": [{"curveNumber": 4}]}, "No heatmap 4 in the heads view: it has 4."),
        ({"points": [{"curveNumber": -1}]}, "No heatmap -1 in the heads view: it has 4."),
    ],
)
def test_a_bad_click_on_the_heads_view_is_a_message_there(app, client, click, text):
    values = inputs(replace(GOOD, tab="heads")) | {"heads-graph.clickData": click}
    response = post(app, client, "heads-graph.figure@", values)
    assert response.status_code == 200
    answer = response.get_json()
    assert message(answer, "heads-graph") == text and "tabs" not in answer["response"]


@pytest.mark.parametrize("bad", SHOWN["heads"] + ANYWHERE)
def test_a_bad_control_value_with_a_click_is_a_message_in_the_heads_view(app, client, bad):
    response = post(app, client, "heads-graph.figure@", with_bad(inputs(), bad))
    assert response.status_code == 200
    assert message(response.get_json(), "heads-graph") == BAD[bad][2]


def test_a_good_click_opens_the_head_in_compare(app, client):
    response = post(app, client, "heads-graph.figure@", inputs(replace(GOOD, tab="heads")))
    answer = response.get_json()["response"]
    assert (answer["tabs"]["value"], answer["layer"]["value"], answer["head"]["value"]) == (
        "compare",
        1,
        "3",
    )


NO_NORMS = "Variant a has no norm-based maps; extract with attention_extraction.norms: true."


@pytest.fixture
def app_without_norms(tmp_path):
    """Variant a stores weights only, b norms too."""
    return create_app(data=make_study(tmp_path / "study", norms=("b",)))


@pytest.mark.parametrize("tab", [t for t in GRAPHS if t != "functions"])  # no maps read there
def test_norms_of_a_variant_without_them_are_a_message(app_without_norms, tab):
    client = app_without_norms.server.test_client()
    selection = replace(GOOD, tab=tab, measure="norms")
    response = post(app_without_norms, client, f"{GRAPHS[tab][0]}.figure", inputs(selection))
    assert response.status_code == 200
    for graph in GRAPHS[tab]:
        assert message(response.get_json(), graph) == NO_NORMS


def test_norms_in_the_url_of_a_variant_without_them_fall_back_to_weights(app_without_norms):
    client = app_without_norms.server.test_client()
    search = "?a=a&measure=norms&order=sideways"
    values = inputs() | {"url.search": search}
    response = post(app_without_norms, client, "url.search", values, ["url.search"])
    assert response.status_code == 200
    answer = response.get_json()
    assert notes(answer) == [
        f"{NO_NORMS} Showing 'weights' instead.",
        "Unknown head order 'sideways'; choose one of: natural, matched. Showing 'natural' instead.",
    ]
    assert response_value(answer, "measure", "value") == "weights"
    assert response_value(answer, "head-order", "value") == "natural"


def zoom(app, client, relayout, selection: Selection = GOOD, graph: str = "compare-graph"):
    """POST a relayout of ``graph`` (what Plotly sends after a drag or a double-click)."""
    key = next(k for k in app.callback_map if "zoom.value@" in k and f"{graph}.figure@" in k)
    values = inputs(selection) | {f"{graph}.relayoutData": relayout}
    body = callback_body(app, key, values, [f"{graph}.relayoutData"])
    return client.post(ENDPOINT, json=body)


@pytest.mark.parametrize(
    ("relayout", "text"),
    [
        ("zoom", "Not a zoom of the map: got 'zoom'."),
        ([1, 2], "Not a zoom of the map: got a list."),
        (
            {"xaxis.range[0]": "abc", "xaxis.range[1]": 2},
            "The zoom's xaxis.range[0] must be a number, got 'abc'.",
        ),
        (
            {"yaxis2.range[0]": True, "yaxis2.range[1]": 2},
            "The zoom's yaxis2.range[0] must be a number, got True.",
        ),
        ({"xaxis.range[0]": 1}, "The zoom of xaxis needs both ends of its range."),
        ({"xaxis.range": [1]}, "The zoom's xaxis.range must be two numbers, got a list."),
        ({"xaxis.range": "0,3"}, "The zoom's xaxis.range must be two numbers, got '0,3'."),
        ({"xaxis.autorange": 7}, "The zoom's xaxis.autorange must be true, got 7."),
        (
            {"xaxis.range[0]": float("nan"), "xaxis.range[1]": 2},
            "The zoom's xaxis.range[0] must be a number, got nan.",
        ),
        (
            {"xaxis.range[0]": 1e9, "xaxis.range[1]": 2e9},
            "The zoomed range holds none of the map's cells; double-click for the whole map.",
        ),
    ],
)
def test_a_bad_zoom_is_a_message_in_the_graph(app, client, relayout, text):
    response = zoom(app, client, relayout)
    assert response.status_code == 200
    answer = response.get_json()
    assert message(answer, "compare-graph") == text and "zoom" not in answer["response"]


def test_a_zoom_sets_the_zoom_control_and_a_double_click_clears_it(app, client):
    box = {
        "xaxis.range[0]": 0.6,
        "xaxis.range[1]": 2.4,
        "yaxis.range[0]": 3.5,
        "yaxis.range[1]": 1.5,
    }
    answer = zoom(app, client, box).get_json()
    assert response_value(answer, "zoom", "value") == "2:4,1:3"  # tokens of the cells covered
    zoomed = replace(GOOD, region="2:4,1:3")
    reset = {"xaxis.autorange": True, "yaxis.autorange": True}
    assert response_value(zoom(app, client, reset, zoomed).get_json(), "zoom", "value") == ""
    for unchanged in ({"autosize": True}, None, reset):  # nothing to do: no update
        assert zoom(app, client, unchanged).get_json()["response"] == {}
    cross = replace(GOOD, a="b", tab="cross")  # cross maps are [decoder, encoder]
    answer = zoom(app, client, {"xaxis.range": [2.5, 3.5]}, cross, "cross-graph").get_json()
    assert response_value(answer, "zoom", "value") == "0:2,3:4"


def test_the_zoom_and_pooling_in_the_url_round_trip(app, client):
    search = "?a=a&b=b&pool=mean&region=1:3,0:2"
    answer = post(app, client, "url.search", inputs() | {"url.search": search}, ["url.search"])
    assert response_value(answer.get_json(), "pooling", "value") == "mean"
    assert response_value(answer.get_json(), "zoom", "value") == "1:3,0:2"
    bad = "?pool=median&region=9"
    answer = post(app, client, "url.search", inputs() | {"url.search": bad}, ["url.search"])
    assert notes(answer.get_json()) == [
        "Zoom must be 'first:end,first:end' (query tokens, then key tokens), got '9'. "
        "The URL's value is ignored.",
        "Unknown pooling 'median'; choose one of: max, mean. Showing 'max' instead.",
    ]
