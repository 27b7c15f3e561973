"""A study with one seed is the replicated study's run of that seed, nothing more or less."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.runs import TIMING, assert_same_maps, data_root, kedro

VARIANTS = ["base", "lora", "gqa4_lora", "window2_lora"]


@pytest.mark.slow
def test_a_single_seed_study_gives_that_seeds_numbers(test_env_run, scratch_env):
    env = scratch_env("study: {seeds: [7]}")
    kedro(*env.args)
    single, replicated = data_root(env), test_env_run
    for v in VARIANTS:
        run = f"{v}/seed7"
        own, theirs = (
            json.loads((root / f"07_model_output/{run}/metrics.json").read_text())
            for root in (single, replicated)
        )
        assert {k: own[k] for k in own if k not in TIMING} == {
            k: theirs[k] for k in theirs if k not in TIMING
        }
        for table in (
            "07_model_output/{}/predictions.parquet",
            "08_reporting/{}/head_metrics.parquet",
        ):
            pd.testing.assert_frame_equal(
                pd.read_parquet(single / table.format(run)),
                pd.read_parquet(replicated / table.format(run)),
                check_exact=True,
            )
        assert_same_maps(
            single / f"07_model_output/{run}/attention.zarr.zip",
            replicated / f"07_model_output/{run}/attention.zarr.zip",
        )
    performance = pd.read_parquet(single / "08_reporting/performance.parquet")
    runs = pd.read_parquet(replicated / "08_reporting/performance_runs.parquet")
    seed7 = runs[runs["seed"] == 7].set_index("variant").loc[VARIANTS, "accuracy"]
    assert performance["accuracy"].to_numpy() == pytest.approx(seed7.to_numpy(), abs=1e-4)
    assert (performance["n_seeds"] == 1).all()
    # one seed: no floor to compare with, so no layer is called changed
    by_layer = pd.read_parquet(single / "08_reporting/similarity_by_layer.parquet")
    assert by_layer["seed_similarity"].isna().all() and not by_layer["changed"].any()
    assert np.isfinite(by_layer["cosine_ci_low"]).all()
