"""The whole flow through the real CLI on the `test` env."""

from __future__ import annotations

import json
import os
import subprocess

import pandas as pd
import pytest

from attention_lab.datasets.store import AttentionStore
from tests.conftest import KEDRO, PROJECT, data_of_test_env

pytestmark = pytest.mark.slow  # subprocess runs of the CLI, or a model trained from scratch

VARIANTS = ["base", "lora", "gqa4_lora", "window2_lora"]
SEEDS = [7, 8]  # the test env's study.seeds


def kedro(*args: str) -> subprocess.CompletedProcess:
    # a wide console, so rich does not wrap a log line in the middle of what a test looks for
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run(
        [KEDRO, *args], cwd=PROJECT, capture_output=True, text=True, timeout=600, env=env
    )


def test_registry_lists_the_four_pipelines():
    result = kedro("registry", "list")
    assert result.returncode == 0, result.stderr
    for name in ("ingestion", "fine_tuning", "attention_extraction", "analysis", "__default__"):
        assert f"- {name}" in result.stdout


def test_ingestion_alone_end_to_end():
    result = kedro("run", "--pipeline=ingestion", "--env=test")
    assert result.returncode == 0, result.stdout[-2000:]
    corpus = pd.read_parquet(data_of_test_env() / "03_primary/corpus.parquet")
    assert corpus["split"].value_counts().to_dict() == {"train": 64, "validation": 32, "test": 32}


def study_figures() -> set[str]:
    from attention_lab.pipelines.analysis.study_pipeline import figures_pipeline

    return figures_pipeline().all_outputs()


def test_test_env_run_writes_every_contracted_artifact(test_env_run):
    root = test_env_run
    corpus = pd.read_parquet(root / "03_primary/corpus.parquet")
    assert list(corpus.columns) == ["id", "text", "label", "label_name", "split"]
    probes = pd.read_parquet(root / "05_model_input/probe_set.parquet")
    assert list(probes.columns) == ["id", "text", "label", "label_name", "split", "source"]
    test_ids = sorted(corpus.loc[corpus["split"] == "test", "id"])
    for v in VARIANTS:
        for seed in SEEDS:
            run = f"{v}/seed{seed}"
            metrics = json.loads((root / f"07_model_output/{run}/metrics.json").read_text())
            assert {"accuracy", "macro_f1", "eval_loss", "train_seconds", "peak_memory_mb"} <= set(
                metrics
            )
            assert (metrics["variant"], metrics["seed"]) == (v, seed)
            predictions = pd.read_parquet(root / f"07_model_output/{run}/predictions.parquet")
            assert sorted(predictions["id"]) == test_ids
            assert predictions["correct"].mean() == pytest.approx(metrics["accuracy"], abs=1e-4)
            store = AttentionStore(str(root / f"07_model_output/{run}/attention.zarr.zip"))
            assert store.example_ids == list(probes["id"]) and store.meta.seed == seed
            assert (root / f"08_reporting/{run}/head_metrics.parquet").exists()
    performance = pd.read_parquet(root / "08_reporting/performance.parquet")
    assert performance["variant"].tolist() == VARIANTS
    assert (performance["n_seeds"] == len(SEEDS)).all()
    runs = pd.read_parquet(root / "08_reporting/performance_runs.parquet")
    by_variant = runs.groupby("variant", sort=False)["accuracy"].mean()
    assert performance["accuracy"].to_numpy() == pytest.approx(by_variant[VARIANTS], abs=1e-4)
    assert (performance["accuracy_ci_low"] <= performance["accuracy"]).all()
    assert (performance["accuracy"] <= performance["accuracy_ci_high"]).all()
    comparison = pd.read_parquet(root / "08_reporting/performance_comparison.parquet")
    references = comparison[comparison["comparison"] == "reference"]
    assert set(references["variant"]) == set(VARIANTS) - {"base"}
    assert {"difference", "ci_low", "ci_high", "p", "q"} <= set(comparison.columns)
    assert performance.loc[
        performance["variant"] == "base", "mean_similarity_to_reference"
    ].item() == pytest.approx(1.0)
    # every figure the study step makes: named from its nodes, so a new figure is checked too
    figures = {name for name in study_figures() if name.endswith("_figure")}
    assert {"similarity_figure", "sinks_figure"} <= figures
    for name in sorted(figures):
        assert json.loads((root / f"08_reporting/{name}.json").read_text())["data"]
    report = (root / "08_reporting/attention_report.html").read_text()
    assert "<h1>Attention Lab report</h1>" in report and "changed significantly" in report


def test_test_env_run_writes_intervals_tests_matches_and_pruning_curves(test_env_run):
    root = test_env_run / "08_reporting"
    changes = pd.read_parquet(root / "head_changes.parquet")
    assert set(changes["variant"]) == set(VARIANTS) - {"base"}  # the reference is not tested
    assert (changes["q"] >= changes["p"]).all()
    assert (changes["ci_low"] <= changes["effect"] + 1e-9).all()  # equal when every example is
    by_layer = pd.read_parquet(root / "similarity_by_layer.parquet")
    assert (by_layer["cosine_ci_low"] <= by_layer["cosine_similarity"] + 1e-12).all()
    assert (by_layer.loc[by_layer["variant"] == "base", "heads_kept"] == 12).all()
    metrics = pd.read_parquet(root / "head_metrics.parquet")
    assert {"entropy_ci_low", "entropy_ci_high", "n_examples"} <= set(metrics.columns)
    curves = pd.read_parquet(root / "pruning_curves.parquet")  # each variant's first seed
    assert curves.groupby("variant").size().to_dict() == {v: 11 for v in VARIANTS}
    assert curves.groupby("variant")["heads_pruned"].max().eq(72).all()


def test_the_head_only_control_is_its_own_noise_floor(test_env_run):
    """The head-only variant trains a classifier on a frozen encoder, so its attention is the
    pretrained model's whatever the seed: between its seeds the similarity is exactly 1. A
    fine-tuned variant's seeds differ; its floor is below 1."""
    by_layer = pd.read_parquet(test_env_run / "08_reporting/similarity_by_layer.parquet")
    weights = by_layer[by_layer["kind"] == "encoder"].set_index("variant")
    assert weights.loc["base", "seed_similarity"].to_numpy() == pytest.approx(1.0, abs=1e-6)
    assert (weights.loc["lora", "seed_similarity"] < 1.0).all()
    assert (by_layer["n_seed_pairs"] == 1).all()  # two seeds: one pair
    # a layer is "changed" only when its similarity lies below the floor beyond both intervals
    changed = by_layer[by_layer["changed"]]
    assert (changed["cosine_ci_high"] < changed["seed_ci_low"]).all()
    assert not weights.loc["base", "changed"].any()


def test_one_job_runs_alone(test_env_run):
    """window2_lora exists only in the test env: `kedro run --env` builds that env's namespaces."""
    job = "window2_lora__seed8"
    result = kedro("run", "--env=test", f"--namespaces={job}", "--pipeline=fine_tuning")
    assert result.returncode == 0, result.stdout[-2000:]
    log = result.stdout + result.stderr
    assert f"Completed node: {job}.fine_tune" in log
    assert f"Completed node: {job}.evaluate" in log
    assert "Completed 2 out of 2 tasks" in log  # nothing of the other jobs ran


def test_a_failing_node_gives_one_line_and_a_fix():
    result = kedro(
        "run",
        "--env=test",
        "--pipeline=ingestion",
        "--params",
        "ingestion.split.sizes.train=100000",
    )
    assert result.returncode != 0
    assert (
        "Error: The splits ask for 100064 examples" in result.stderr
        and "Lower ingestion.split.sizes" in result.stderr
    )
