"""Runs that repeat exactly and survive SIGKILL, through the real CLI, each in its own data_root.

Every run here uses a scratch copy of the `test` env (see ``scratch_env``), so the one
run of the `test` env that the other tests share is only read, as the reference.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pandas as pd
import pytest

from attention_lab.datasets.model_directory import ModelDirectoryDataset
from attention_lab.datasets.store import AttentionStore
from attention_lab.errors import ArtifactError
from tests.conftest import KEDRO, PROJECT
from tests.runs import assert_same_maps, assert_same_run, data_root, kedro, tables

pytestmark = pytest.mark.slow


def kill_when(command: list[str], ready) -> None:
    """Start ``kedro run`` with ``command``; SIGKILL it as soon as ``ready(lines)`` is true,
    ``lines`` being its output so far."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "250"}
    process = subprocess.Popen(
        [KEDRO, "run", *command],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            if ready(lines):
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        process.wait(timeout=60)
        assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_two_runs_of_the_test_env_give_identical_tables_and_maps(test_env_run, scratch_env):
    env = scratch_env()
    kedro(*env.args)
    assert_same_run(data_root(env), test_env_run)


def test_killed_training_and_extraction_leave_nothing_finished_and_reruns_match(
    test_env_run, scratch_env
):
    env = scratch_env()
    root = data_root(env)
    kedro(*env.args, "--pipeline=ingestion")
    model = ModelDirectoryDataset(str(root / "06_models/lora/seed7"))
    train = [*env.args, "--pipeline=fine_tuning", "--namespaces=lora__seed7"]

    # training: killed as soon as it starts, before the model could be saved
    kill_when(train, lambda lines: any("parameters train" in line for line in lines))
    assert not model.exists()
    kedro(*train)
    assert model.exists()
    assert sorted(p.name for p in (root / "06_models/lora").iterdir()) == ["seed7"]  # no temp
    reference = tables(test_env_run)["07_model_output/lora/seed7/metrics.json"]
    pd.testing.assert_series_equal(
        tables(root)["07_model_output/lora/seed7/metrics.json"], reference, check_exact=True
    )

    # extraction: killed while the store's temporary file is being written
    store = root / "07_model_output/lora/seed7/attention.zarr.zip"
    extract = [*env.args, "--pipeline=attention_extraction", "--namespaces=lora__seed7"]
    kill_when(extract, lambda _: any(store.parent.glob("attention.zarr.zip.tmp-*")))
    with pytest.raises(ArtifactError, match="an unfinished write was found beside it"):
        AttentionStore(str(store))
    kedro(*extract)
    assert [p.name for p in store.parent.iterdir() if "zarr" in p.name] == [store.name]
    assert_same_maps(store, test_env_run / "07_model_output/lora/seed7/attention.zarr.zip")
