"""The performance table and its comparisons, from per-example outcomes of every run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attention_lab.analysis.performance import build_performance_tables, performance_runs
from attention_lab.tasks.classification import macro_f1

VARIANTS = {
    "base": {"method": "head"},
    "lora": {"method": "lora"},
    "gqa": {"method": "lora", "mechanism": {"name": "gqa", "kv_heads": 4}},
}
SEEDS = [42, 43, 44]
N = 120


def outcomes(variant: str, seed: int, right: float, rng) -> pd.DataFrame:
    labels = rng.integers(0, 2, N)
    correct = rng.random(N) < right
    return pd.DataFrame(
        {
            "id": [f"t{i:03d}" for i in range(N)],
            "variant": variant,
            "seed": seed,
            "label": labels,
            "prediction": np.where(correct, labels, 1 - labels),
            "correct": correct,
            "loss_sum": rng.random(N),
            "loss_terms": 1,
        }
    )


@pytest.fixture()
def study():
    rng = np.random.default_rng(0)
    right = {"base": 0.6, "lora": 0.8, "gqa": 0.75}
    predictions = [outcomes(v, s, right[v], rng) for v in VARIANTS for s in SEEDS]
    summaries = [
        {
            "variant": p["variant"].iloc[0],
            "seed": int(p["seed"].iloc[0]),
            "method": VARIANTS[p["variant"].iloc[0]]["method"],
            "mechanism": "mha",
            "accuracy": round(float(p["correct"].mean()), 4),
            "train_seconds": 1.0,
            "mean_entropy": 0.5,
        }
        for p in predictions
    ]
    similarity = pd.DataFrame(
        {"variant": list(VARIANTS), "reference": "base", "kind": "encoder", "layer": 0}
    ).assign(cosine_similarity=[1.0, 0.9, 0.6], seed_similarity=[1.0, 0.95, 0.9])
    sinks = pd.DataFrame(
        {
            "variant": list(VARIANTS),
            "kind": "encoder",
            "sink_heads": [2, 1, 0],
            "heads": 4,
            "sink_rate_gu": [0.5, 0.2, 0.0],
        }
    )
    params = ({"seeds": SEEDS, "reference": "base"}, VARIANTS, {"statistics": {"seed": 0}})
    return predictions, performance_runs(*summaries), similarity, sinks, params


def test_each_variant_gets_its_mean_over_seeds_with_an_interval(study):
    predictions, runs, similarity, sinks, params = study
    table, _ = build_performance_tables(runs, similarity, sinks, *params, *predictions)
    lora = table.set_index("variant").loc["lora"]
    per_seed = [p["correct"].mean() for p in predictions if p["variant"].iloc[0] == "lora"]
    assert lora["accuracy"] == pytest.approx(np.mean(per_seed))
    assert lora["accuracy_ci_low"] < lora["accuracy"] < lora["accuracy_ci_high"]
    assert lora["n_seeds"] == 3
    f1 = [
        macro_f1(p["label"].to_numpy(), p["prediction"].to_numpy(), 2)
        for p in predictions
        if p["variant"].iloc[0] == "lora"
    ]
    assert lora["macro_f1"] == pytest.approx(np.mean(f1))
    assert lora["mean_similarity_between_seeds"] == pytest.approx(0.95)
    assert lora["sink_head_share"] == pytest.approx(0.25)
    assert lora["sink_rate_gu"] == pytest.approx(0.2)


def test_comparisons_pair_seeds_and_examples_and_adjust_within_each_family(study):
    predictions, runs, similarity, sinks, params = study
    _, comparison = build_performance_tables(runs, similarity, sinks, *params, *predictions)
    kinds = comparison.groupby("comparison")[["variant", "against"]].apply(
        lambda t: sorted(set(zip(t["variant"], t["against"], strict=True)))
    )
    # every variant against its reference; the two LoRA variants differ only by mechanism
    assert kinds["reference"] == [("gqa", "base"), ("lora", "base")]
    assert kinds["mechanism"] == [("lora", "gqa")]
    row = comparison[(comparison["variant"] == "lora") & (comparison["metric"] == "accuracy")]
    row = row[row["comparison"] == "reference"]
    by_seed = {(p["variant"].iloc[0], p["seed"].iloc[0]): p["correct"].mean() for p in predictions}
    expected = np.mean([by_seed["lora", s] - by_seed["base", s] for s in SEEDS])
    assert row["difference"].item() == pytest.approx(expected)
    assert row["ci_low"].item() > 0 and row["significant"].item()  # 20 points on 3 x 120
    assert (comparison["q"] >= comparison["p"] - 1e-12).all()


def test_a_seed_without_predictions_is_named(study):
    from attention_lab.errors import DataError

    predictions, runs, similarity, sinks, params = study
    with pytest.raises(DataError, match=r"gqa.*seed 44.*--namespaces=gqa__seed44"):
        build_performance_tables(runs, similarity, sinks, *params, *predictions[:-1])
