"""The figures draw what the tables hold: error bars from the intervals, the noise floor."""

from __future__ import annotations

import numpy as np
import pandas as pd

from attention_lab.analysis.figures import performance_figure, similarity_by_layer_figure


def test_the_performance_bars_carry_the_interval_over_seeds():
    table = pd.DataFrame(
        {
            "variant": ["base", "lora"],
            "accuracy": [0.65, 0.80],
            "accuracy_ci_low": [0.57, 0.74],
            "accuracy_ci_high": [0.73, 0.86],
            "n_seeds": 3,
            "train_seconds": [30.0, 180.0],
        }
    )
    bars = performance_figure(table).data[0]
    assert np.allclose(bars.error_y.array, [0.08, 0.06])
    assert np.allclose(bars.error_y.arrayminus, [0.08, 0.06])


def test_the_performance_figure_shows_each_measured_inference_cost():
    table = pd.DataFrame(
        {
            "variant": ["base", "mqa", "window64"],
            "perplexity": [20.0, 30.0, 25.0],
            "train_seconds": [0.0, 60.0, 0.0],
            "kv_bytes_per_token": [46080.0, 15360.0, 6480.0],
            "prefill_tokens_per_s": [300.0, 320.0, 310.0],
            "decode_tokens_per_s": [12.0, 13.0, 12.5],
            "inference_peak_memory_mb": [None, None, None],  # not measured: no panel
        }
    )
    figure = performance_figure(table)
    by_name = {bar.name: bar for bar in figure.data}
    assert set(by_name) == {
        "perplexity",
        "train_seconds",
        "kv_bytes_per_token",
        "prefill_tokens_per_s",
        "decode_tokens_per_s",
    }
    assert list(by_name["kv_bytes_per_token"].y) == [46080.0, 15360.0, 6480.0]
    titles = [a.text for a in figure.layout.annotations]
    assert "decode tokens/s (CPU: bound by weight reads)" in titles


def test_the_similarity_figure_draws_each_variants_floor_and_marks_changed_layers():
    table = pd.DataFrame(
        {
            "variant": ["base"] * 2 + ["mqa"] * 2,
            "reference": "base",
            "kind": "encoder",
            "layer": [0, 1] * 2,
            "cosine_similarity": [1.0, 1.0, 0.6, 0.9],
            "cosine_ci_low": [1.0, 1.0, 0.55, 0.8],
            "cosine_ci_high": [1.0, 1.0, 0.65, 0.99],
            "seed_similarity": [1.0, 1.0, 0.9, 0.95],
            "seed_ci_low": [1.0, 1.0, 0.85, 0.9],
            "seed_ci_high": [1.0, 1.0, 0.95, 1.0],
            "changed": [False, False, True, False],
            "n_seeds": 3,
        }
    )
    fig = similarity_by_layer_figure(table)
    floor = [t for t in fig.data if t.name == "encoder: between seeds"]
    line = [t for t in fig.data if t.name == "encoder: to the reference"]
    assert len(floor) == len(line) == 1  # the reference is not drawn against itself
    assert list(floor[0].y) == [0.9, 0.95] and floor[0].line.dash == "dot"
    assert list(line[0].marker.symbol) == ["diamond", "circle"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2  # one around the line, one around the floor


def test_perplexity_goes_on_a_log_axis_only_when_a_broken_variant_would_flatten_the_rest():
    def table(perplexities):
        return pd.DataFrame(
            {"variant": ["a", "b"], "perplexity": perplexities, "train_seconds": [0.0, 1.0]}
        )

    assert performance_figure(table([29.0, 19780.0])).layout.yaxis.type == "log"
    assert performance_figure(table([29.0, 35.0])).layout.yaxis.type != "log"
