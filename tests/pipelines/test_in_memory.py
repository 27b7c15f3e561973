"""Fine-tuning, extraction and analysis, each run with SequentialRunner on a catalog built here.

As in Kedro's spaceflights tests: no conf/. Models and attention stores go to their own
datasets in a temporary folder, three tables to Parquet so the test can read them after the
run releases its memory; everything else is a MemoryDataset. Two variants (the head-only
reference and LoRA), two seeds each, on a tiny slice of the bundled Rotten Tomatoes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import ParquetDataset

from attention_lab.datasets import AttentionStoreDataset, ModelDirectoryDataset
from attention_lab.pipelines.analysis.pipeline import create_pipeline as analysis
from attention_lab.pipelines.attention_extraction.pipeline import create_pipeline as extraction
from attention_lab.pipelines.fine_tuning.pipeline import create_pipeline as fine_tuning
from attention_lab.pipelines.ingestion.sources import read_rotten_tomatoes
from attention_lab.study import Study

pytestmark = pytest.mark.slow  # subprocess runs of the CLI, or a model trained from scratch

VARIANTS = {"base": {"method": "head"}, "lora": {"method": "lora"}}
STUDY = {
    "task": "classification",
    "reference": "base",
    "seeds": [3, 4],
    "defaults": {
        "model": "minilm",
        "training": {"max_steps": 2, "batch_size": 4, "max_length": 24},
    },
}
PLAN = Study.from_params({"study": STUDY, "variants": VARIANTS})


def corpus() -> pd.DataFrame:
    frame, _ = read_rotten_tomatoes({})
    frame = frame.drop_duplicates("text").sample(n=36, random_state=0).reset_index(drop=True)
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(36)],
            "text": frame["text"],
            "label": (frame["label"] == "fresh").astype(int),
            "label_name": frame["label"],
            "split": ["train"] * 16 + ["validation"] * 8 + ["test"] * 12,
        }
    )


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> DataCatalog:
    root = tmp_path_factory.mktemp("in_memory")
    data = corpus()
    probes = data[data["split"] == "test"].head(3).assign(source="test")
    datasets = {
        "corpus": MemoryDataset(data),
        "probe_set": MemoryDataset(probes),
        "params:study": MemoryDataset(STUDY),
        "params:attention_extraction": MemoryDataset({"max_length": 24, "batch_size": 2}),
        "params:analysis": MemoryDataset(
            {
                "importance_examples": 4,
                "pruning_examples": 4,
                "head_functions": {"sequences": 2, "half": 8},
            }
        ),
        "params:costs": MemoryDataset({"context_tokens": 16, "decode_tokens": 2, "repeats": 1}),
        "params:analysis.heatmap_metric": MemoryDataset("normalized_entropy"),
        "params:analysis.sink_threshold": MemoryDataset(0.3),
    }
    datasets["params:variants"] = MemoryDataset(VARIANTS)
    for table in ("performance", "similarity_by_layer", "all_head_metrics"):  # to inspect them
        datasets[table] = ParquetDataset(filepath=str(root / f"{table}.parquet"))
    for job in PLAN.jobs:
        v, folder = job.variant, root / job.name
        datasets |= {
            f"params:variants.{v}": MemoryDataset(VARIANTS[v]),
            f"{job.name}.job": MemoryDataset({"variant": v, "seed": str(job.seed)}),
            f"{job.name}.model": ModelDirectoryDataset(str(folder / "model")),
            f"{job.name}__attention": AttentionStoreDataset(str(folder / "attention.zarr.zip")),
        }
    return DataCatalog(datasets)


@pytest.fixture(scope="module")
def fine_tuned(catalog) -> dict:
    return SequentialRunner().run(fine_tuning(jobs=PLAN.jobs), catalog)


@pytest.fixture(scope="module")
def extracted(catalog, fine_tuned) -> dict:
    return SequentialRunner().run(extraction(jobs=PLAN.jobs), catalog)


def test_fine_tuning_pipeline(catalog, fine_tuned):
    for job in PLAN.jobs:
        metrics = fine_tuned[f"{job.name}.metrics"].load()
        assert (metrics["variant"], metrics["seed"]) == (job.variant, job.seed)
        assert metrics["method"] == VARIANTS[job.variant]["method"]
        assert metrics["test_examples"] == 12 and metrics["untrained_head"] is False
        assert catalog.load(f"{job.name}.model").info.seed == job.seed


def test_attention_extraction_pipeline(catalog, extracted):
    for job in PLAN.jobs:
        store = catalog.load(f"{job.name}__attention")
        assert len(store) == 3 and (store.meta.variant, store.meta.seed) == (
            job.variant,
            job.seed,
        )
        maps = store.attention(0, "encoder")  # [L, H, T, T]
        np.testing.assert_allclose(maps.sum(-1), 1.0, atol=2e-3)


def test_analysis_pipeline(catalog, extracted):
    outputs = SequentialRunner().run(analysis(PLAN), catalog)
    performance = catalog.load("performance")
    assert list(performance["variant"]) == list(VARIANTS)
    similarity = catalog.load("similarity_by_layer")
    assert set(similarity["variant"]) == set(VARIANTS)
    itself = similarity[similarity["variant"] == "base"]["cosine_similarity"]
    np.testing.assert_allclose(itself, 1.0, atol=1e-6)  # the reference against itself
    assert similarity["cosine_similarity"].between(0, 1 + 1e-6).all()
    report = outputs["attention_report"].load()
    assert "<h1>Attention Lab report</h1>" in report
    # the per-layer table prints each similarity with its interval and the seed noise floor
    assert all(c in report for c in ("cosine_ci_low", "seed_similarity", "seed_ci_high"))
    assert set(catalog.load("all_head_metrics")["variant"]) == set(VARIANTS)
