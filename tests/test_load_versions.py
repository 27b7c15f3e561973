"""`kedro run --load-versions` picks a model and a store among their Kedro versions.

The latest version of each is made broken on purpose, so a run that ignored the pin would fail.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from tests.runs import assert_same_maps, data_root, kedro

pytestmark = pytest.mark.slow

VERSIONED = """
"{variant}__seed{seed}.model":
  type: attention_lab.datasets.ModelDirectoryDataset
  path: ${globals:data_root}/06_models/{variant}/seed{seed}
  versioned: true

"{variant}__seed{seed}__attention":
  type: attention_lab.datasets.AttentionStoreDataset
  path: ${globals:data_root}/07_model_output/{variant}/seed{seed}/attention.zarr.zip
  versioned: true
"""
JOB = "lora__seed7"  # lora trained with the test env's first seed
LATER = "2999-01-01T00.00.00.000Z"  # sorts after every real version: the "latest"


def only_version(folder) -> str:
    (version,) = [p.name for p in folder.iterdir() if p.name != LATER]
    return version


def test_load_versions_pins_the_model_and_the_store(test_env_run, scratch_env):
    env = scratch_env()
    (env.folder / "catalog.yml").write_text(VERSIONED)
    root = data_root(env)
    kedro(*env.args, "--pipeline=ingestion")
    kedro(*env.args, "--pipeline=fine_tuning", f"--namespaces={JOB}")

    models = root / "06_models/lora/seed7"
    model = only_version(models)
    broken = models / LATER / "seed7"
    shutil.copytree(models / model / "seed7", broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not weights")
    extract = [*env.args, "--pipeline=attention_extraction", f"--namespaces={JOB}"]
    failed = kedro(*extract, check=False)  # unpinned, the latest model is the broken one
    assert failed.returncode != 0 and "deserializing header" in failed.stdout + failed.stderr

    kedro(*extract, f"--load-versions={JOB}.model:{model}")
    stores = root / "07_model_output/lora/seed7/attention.zarr.zip"
    store = only_version(stores)
    assert_same_maps(
        stores / store / stores.name,
        test_env_run / "07_model_output/lora/seed7/attention.zarr.zip",
    )

    (stores / LATER).mkdir()
    (stores / LATER / stores.name).write_bytes(b"not a store")
    kedro(
        *env.args,
        "--pipeline=analysis",
        f"--namespaces={JOB}",
        f"--load-versions={JOB}.model:{model},{JOB}__attention:{store}",
    )
    table = "08_reporting/lora/seed7/head_metrics.parquet"
    pd.testing.assert_frame_equal(
        pd.read_parquet(root / table), pd.read_parquet(test_env_run / table)
    )
