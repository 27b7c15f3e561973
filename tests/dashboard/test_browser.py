"""The dashboard in Debian's chromium driven by Playwright, against stores made by the `test` env.

Each server is started in its own process group and stopped by its id.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from attention_lab.datasets.store import AttentionStore
from tests.conftest import PROJECT
from tests.dashboard.conftest import start_dashboard, stop
from tests.support.chromium import launch

pytestmark = pytest.mark.browser
# the README's picture: rewritten only when asked (`make screenshot`), so that a test run
# leaves the checkout as it found it
README_SCREENSHOT = PROJECT / "docs" / "images" / "dashboard.png"


@pytest.fixture(scope="module")
def server(test_env_run):
    proc, url = start_dashboard("--env", "test")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = launch(p)  # fails with the set-up command when chromium is missing
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    yield context.new_page()
    context.close()


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#compare-graph .main-svg", timeout=60000)


def figure(page, graph: str = "compare-graph"):
    return page.evaluate(
        f"() => {{ const g = document.querySelector('#{graph} .js-plotly-plot');"
        " return {data: g.data.map(t => ({z: t.z, customdata: t.customdata})), title: g.layout.title.text,"
        " subplots: g.layout.annotations.map(a => a.text)}; }"
    )


def choose(page, dropdown: str, option: str) -> None:
    page.click(f"#{dropdown}")  # the open dropdown's options, not a radio's of the same name
    page.get_by_role("dialog").get_by_role("option", name=option, exact=True).click()


def wait_for_title(page, text: str) -> dict:
    page.wait_for_function(
        "(text) => { const g = document.querySelector('#compare-graph .js-plotly-plot');"
        " return !!(g && g.layout && g.layout.title && (g.layout.title.text || '').includes(text)); }",
        arg=text,
        timeout=30000,
    )
    return figure(page)


def test_page_loads_with_two_variants_and_their_difference(server, page):
    open_page(page, server)
    assert page.title() == "Attention Lab"
    fig = figure(page)
    # each side names its run: the study's first seed unless another (or the mean) is chosen
    assert fig["subplots"] == ["base · seed 7", "lora · seed 7", "lora · seed 7 − base · seed 7"]
    assert len(fig["data"]) == 3


def test_choosing_variants_layer_and_head_changes_the_figures(server, page):
    open_page(page, server)
    before = figure(page)
    choose(page, "variant-b", "window2_lora")
    page.wait_for_function(
        "() => { const a = document.querySelector('#compare-graph .js-plotly-plot').layout.annotations;"
        " return !!(a && a[1] && a[1].text == 'window2_lora · seed 7'); }",
        timeout=30000,
    )
    after_variant = figure(page)
    assert after_variant["data"][1]["z"] != before["data"][1]["z"]
    choose(page, "layer", "3")
    wait_for_title(page, "layer 3")
    choose(page, "head", "5")
    fig = wait_for_title(page, "layer 3 · head 5")
    assert fig["data"][0]["z"] != after_variant["data"][0]["z"]


def test_a_difference_cell_equals_b_minus_a_read_from_the_stores(server, page, test_env_run):
    open_page(page, server + "?a=base&b=gqa4_lora&layer=4&head=7")
    fig = wait_for_title(page, "layer 4 · head 7")
    example = (
        page.evaluate("() => new URLSearchParams(window.location.search).get('example')") or None
    )
    stores = {
        v: AttentionStore(str(test_env_run / f"07_model_output/{v}/seed7/attention.zarr.zip"))
        for v in ("base", "gqa4_lora")
    }
    example = example or stores["base"].example_ids[0]
    a = stores["base"].attention(example, "encoder", layer=4, head=7)
    b = stores["gqa4_lora"].attention(example, "encoder", layer=4, head=7)
    diff = np.array(fig["data"][2]["z"], dtype=float)
    i, j = np.unravel_index(np.abs(b - a).argmax(), a.shape)  # the most changed cell
    assert diff[i, j] == pytest.approx(float(b[i, j] - a[i, j]), abs=1e-6)
    assert np.allclose(diff, b - a, atol=1e-6)


def test_the_norms_switch_shows_the_norm_maps_of_the_stores(server, page, test_env_run):
    open_page(page, server + "?a=base&b=lora&layer=1&head=3")
    wait_for_title(page, "encoder attention weights · layer 1 · head 3")
    page.check("#measure input[value='norms']")
    fig = wait_for_title(page, "encoder norm-based attention ‖αf(x)‖ · layer 1 · head 3")
    page.wait_for_function("() => window.location.search.includes('measure=norms')", timeout=10000)
    example = page.evaluate("() => new URLSearchParams(window.location.search).get('example')")
    for panel, variant in enumerate(("base", "lora")):
        store = AttentionStore(
            str(test_env_run / f"07_model_output/{variant}/seed7/attention.zarr.zip")
        )
        norms = store.attention(example, "encoder_norm", layer=1, head=3)
        assert np.allclose(np.array(fig["data"][panel]["z"], dtype=float), norms, atol=1e-6)


def test_the_url_round_trips(server, page):
    open_page(page, server + "?a=lora&b=gqa4_lora&layer=2&head=3")
    wait_for_title(page, "layer 2 · head 3")
    choose(page, "head", "mean")
    wait_for_title(page, "layer 2 · mean over heads")
    page.wait_for_function("() => window.location.search.includes('head=mean')", timeout=10000)
    shared = page.url
    assert "a=lora" in shared and "b=gqa4_lora" in shared and "layer=2" in shared
    page.goto("about:blank")
    open_page(page, shared)  # a reload of the shared link gives the same view
    fig = wait_for_title(page, "layer 2 · mean over heads")
    assert fig["subplots"] == [
        "lora · seed 7",
        "gqa4_lora · seed 7",
        "gqa4_lora · seed 7 − lora · seed 7",
    ]


def test_clicking_a_head_opens_it_in_compare(server, page):
    page.goto(server + "?tab=heads&layer=2&scope=layer")
    page.wait_for_selector("#heads-graph .main-svg", timeout=60000)
    page.wait_for_function(
        "() => { const g = document.querySelector('#heads-graph .js-plotly-plot');"
        " return !!(g && g.data && g.data.length == 12); }",
        timeout=30000,
    )
    # click the middle of the 5th small heatmap (head 4), away from its top-left cell
    box = page.locator("#heads-graph .nsewdrag").nth(4).bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.6)
    fig = wait_for_title(page, "layer 2 · head 4")
    assert fig["subplots"][0] == "base · seed 7"


def test_csv_export_of_the_matrices_shown(server, page):
    import csv
    import io

    open_page(page, server + "?a=base&b=lora&layer=0&head=2")
    fig = wait_for_title(page, "layer 0 · head 2")
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert list(rows[0]) == [
        "query_index",
        "query_token",
        "key_index",
        "key_token",
        "base_seed7",
        "lora_seed7",
        "lora_seed7_minus_base_seed7",
    ]
    n = len(fig["data"][0]["z"])
    assert len(rows) == n * n
    cell = rows[n + 1]  # query 1, key 1
    assert float(cell["base_seed7"]) == pytest.approx(fig["data"][0]["z"][1][1], abs=1e-6)


def test_dragging_on_a_map_zooms_into_it_and_a_double_click_shows_all(server, page, test_env_run):
    open_page(page, server + "?a=base&b=lora&layer=1&head=2")
    wait_for_title(page, "layer 1 · head 2")
    page.locator("#compare-graph").scroll_into_view_if_needed()  # below the controls
    box = page.locator("#compare-graph .nsewdrag").first.bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.2 * w, y + 0.3 * h)
    page.mouse.down()
    page.mouse.move(x + 0.6 * w, y + 0.7 * h, steps=10)
    page.mouse.up()
    fig = wait_for_title(page, "double-click for the whole map")
    page.wait_for_function("() => window.location.search.includes('region=')", timeout=10000)
    search = page.evaluate("() => Object.fromEntries(new URLSearchParams(window.location.search))")
    q0, q1, k0, k1 = (int(n) for part in search["region"].split(",") for n in part.split(":"))
    store = AttentionStore(str(test_env_run / "07_model_output/base/seed7/attention.zarr.zip"))
    tokens = store.example_meta(search["example"])["tokens"]
    assert 0 < q0 < q1 <= len(tokens) and 0 < k0 < k1 <= len(tokens)  # a part of the map
    a = store.attention(search["example"], "encoder", layer=1, head=2)
    assert np.allclose(np.array(fig["data"][0]["z"], dtype=float), a[q0:q1, k0:k1], atol=1e-6)
    shown = page.evaluate(
        "() => document.querySelector('#compare-graph .js-plotly-plot').data[0].y"
    )
    assert [t.replace("\u200b", "") for t in shown] == tokens[q0:q1]  # token labels
    box = page.locator("#compare-graph .nsewdrag").first.bounding_box()  # redrawn: measure again
    page.wait_for_timeout(1000)  # let plotly finish drawing before it takes the double-click
    page.mouse.dblclick(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
    page.wait_for_function(
        "() => !document.querySelector('#compare-graph .js-plotly-plot').layout.title.text"
        ".includes('queries')",
        timeout=30000,
    )
    assert len(figure(page)["data"][0]["z"]) == len(tokens)  # the whole map again


def test_the_seed_selector_shows_another_run_and_the_mean_over_seeds(server, page, test_env_run):
    open_page(page, server + "?a=base&b=lora&layer=5&head=4")
    wait_for_title(page, "layer 5 · head 4")
    runs = [
        AttentionStore(str(test_env_run / f"07_model_output/lora/seed{s}/attention.zarr.zip"))
        for s in (7, 8)
    ]
    example = page.evaluate("() => new URLSearchParams(window.location.search).get('example')")
    example = example or runs[0].example_ids[0]  # the first probe, until the URL names it
    maps = [r.attention(example, "encoder", layer=5, head=4) for r in runs]
    choose(page, "seed-b", "seed 8")
    page.wait_for_function(
        "() => { const a = document.querySelector('#compare-graph .js-plotly-plot').layout.annotations;"
        " return !!(a && a[1] && a[1].text == 'lora · seed 8'); }",
        timeout=30000,
    )
    assert np.allclose(np.array(figure(page)["data"][1]["z"], dtype=float), maps[1], atol=1e-6)
    choose(page, "seed-b", "mean over seeds")
    page.wait_for_function(
        "() => { const a = document.querySelector('#compare-graph .js-plotly-plot').layout.annotations;"
        " return !!(a && a[1] && a[1].text == 'lora · mean over seeds'); }",
        timeout=30000,
    )
    shown = np.array(figure(page)["data"][1]["z"], dtype=float)
    assert np.allclose(shown, np.mean(maps, axis=0), atol=1e-6)
    page.wait_for_function("() => window.location.search.includes('seed_b=mean')", timeout=10000)


def test_unknown_variant_in_the_url_is_explained(server, page):
    open_page(page, server + "?b=nonexistent")
    page.wait_for_selector(".url-note", timeout=30000)
    assert "Unknown variant 'nonexistent'" in page.inner_text("#url-notes")


def test_screenshot_for_the_readme(server, page, tmp_path):
    page.set_viewport_size({"width": 1400, "height": 760})
    open_page(page, server + "?a=base&b=window2_lora&layer=1&head=mean")
    wait_for_title(page, "layer 1 · mean over heads")
    page.wait_for_timeout(1000)  # let plotly finish drawing
    update = os.environ.get("ATTENTION_LAB_SCREENSHOT") == "1"
    shot = README_SCREENSHOT if update else tmp_path / "dashboard.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    # the Compare tab shows its own controls only (dashboard.registry)
    assert page.is_visible("#layer-box") and page.is_visible("#zoom-box")
    assert page.is_hidden("#metric-box") and page.is_hidden("#scope-box")


def test_missing_artifacts_page_names_the_command(page, tmp_path, browser):
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf", conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    (conf / "test" / "globals.yml").write_text(f"data_root: {tmp_path / 'empty'}\n")
    proc, url = start_dashboard("--env", "test", "--conf-source", str(conf))
    try:
        page.goto(url)
        page.wait_for_selector("#missing-artifacts", timeout=60000)
        text = page.inner_text("#missing-artifacts")
    finally:
        stop(proc)
    assert "kedro run --pipeline=ingestion --env=test" in text
    assert "Traceback" not in text
