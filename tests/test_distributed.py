"""One variant trained by two processes (torchrun, gloo on the CPU) against one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

from tests.conftest import PROJECT, free_port
from tests.runs import data_root, kedro

pytestmark = pytest.mark.slow
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def trained(root: Path) -> tuple[dict, dict]:
    adapter = load_file(root / "06_models/lora/seed7/adapter_model.safetensors")
    return adapter, json.loads((root / "07_model_output/lora/seed7/metrics.json").read_text())


def test_two_processes_train_like_one_and_only_rank_0_writes(scratch_env):
    single, double = scratch_env(), scratch_env()
    for env in (single, double):
        kedro(*env.args, "--pipeline=ingestion")
    kedro(*single.args, "--pipeline=fine_tuning", "--namespaces=lora__seed7")
    command = [TORCHRUN, "--nproc_per_node=2", f"--master_port={free_port()}"]
    command += [
        "-m",
        "attention_lab.distributed",
        "--variant",
        "lora",
        "--env",
        double,
        "--conf-source",
        str(double.conf),
    ]
    env = {**os.environ, "COLUMNS": "250", "KEDRO_DISABLE_TELEMETRY": "1"}
    result = subprocess.run(
        command, cwd=PROJECT, capture_output=True, text=True, timeout=600, env=env
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    # every save goes through the catalog, which logs it: once each, by rank 0
    assert log.count("Saving data to lora__seed7.model") == 1
    assert log.count("Saving data to lora__seed7.metrics") == 1
    assert log.count("Saving data to lora__seed7__predictions") == 1
    assert sorted(p.name for p in (data_root(double) / "06_models").iterdir()) == ["lora"]
    assert sorted(p.name for p in (data_root(double) / "06_models/lora").iterdir()) == ["seed7"]

    one, one_metrics = trained(data_root(single))
    two, two_metrics = trained(data_root(double))
    assert (
        two_metrics["processes"] == 2 and two_metrics["train_steps"] == one_metrics["train_steps"]
    )
    params = yaml.safe_load((PROJECT / "conf/test/parameters.yml").read_text())
    training = params["study"]["defaults"]["training"]
    # Adam moves a weight by about the learning rate per step at most, so two runs that only
    # draw the examples in another order differ by at most 2 x steps x rate per weight
    bound = 2 * training["max_steps"] * training["learning_rate"]
    assert max(float(np.abs(one[k] - two[k]).max()) for k in one) <= bound
    assert abs(one_metrics["eval_loss"] - two_metrics["eval_loss"]) <= 0.01
    assert (
        abs(one_metrics["accuracy"] - two_metrics["accuracy"]) <= 2 / one_metrics["test_examples"]
    )


def test_a_batch_that_does_not_divide_among_the_processes_is_refused():
    from attention_lab.distributed import per_process
    from attention_lab.errors import ConfigError
    from attention_lab.variants import parse_variant

    spec = parse_variant("v", {"method": "lora", "training": {"batch_size": 9}}, {})
    assert (
        per_process(
            parse_variant("v", {"method": "lora", "training": {"batch_size": 8}}, {}), 2
        ).training.batch_size
        == 4
    )
    with pytest.raises(ConfigError, match="batch_size 9 does not divide among 2 processes"):
        per_process(spec, 2)
