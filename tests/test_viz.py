"""kedro-viz serves the pipeline graph: pipelines, one namespace per job (ingestion, each variant, the study), the main datasets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import KEDRO, PROJECT, free_port

pytestmark = pytest.mark.slow  # subprocess runs of the CLI, or a model trained from scratch


def test_kedro_viz_api_lists_pipelines_namespaces_and_datasets(test_env_run):
    port = free_port(below=49152)
    # kedro-viz serves from a child process: its own process group lets us stop both
    proc = subprocess.Popen(
        [
            KEDRO,
            "viz",
            "run",
            "--no-browser",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--env",
            "test",
        ],
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        graph, deadline = None, time.monotonic() + 120
        while graph is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/main", timeout=5
                ) as response:
                    graph = json.load(response)
            except OSError:
                time.sleep(1)
        assert graph is not None, "kedro viz did not answer within 2 minutes"
        ids = {n["name"]: n["id"] for n in graph["nodes"] if n["type"] == "data"}
        details = {}
        for name in ("performance", "similarity_figure"):  # what the side panel previews
            url = f"http://127.0.0.1:{port}/api/nodes/{ids[name]}"
            with urllib.request.urlopen(url, timeout=30) as response:
                details[name] = json.load(response)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    assert {p["id"] for p in graph["pipelines"]} == {
        "ingestion",
        "fine_tuning",
        "attention_extraction",
        "analysis",
        "study",
        "__default__",
    }
    namespaces = {n["name"] for n in graph["nodes"] if n["type"] == "modularPipeline"}
    # the test env's jobs (each variant with each of its seeds), and the jobs before and after
    jobs = {f"{v}__seed{s}" for v in ("base", "lora", "gqa4_lora", "window2_lora") for s in (7, 8)}
    assert namespaces == {"ingestion", *jobs, "study"}
    datasets = {n["name"]: n for n in graph["nodes"] if n["type"] == "data"}
    for name in (
        "corpus",
        "probe_set",
        "lora__seed7.model",
        "lora__seed7.metrics",
        "lora__seed7__attention",
        "lora__seed8__head_metrics",
        "performance_comparison",
        "attention_comparison",
        "performance",
        "similarity_figure",
        "attention_report",
    ):
        assert name in datasets, name
    assert datasets["similarity_figure"]["dataset_type"].endswith("plotly.json_dataset.JSONDataset")
    assert datasets["lora__seed7__attention"]["layer"] == "model_output"
    assert details["performance"]["preview_type"] == "TablePreview"
    assert details["performance"]["preview"]["columns"][0] == "variant"
    assert details["similarity_figure"]["preview_type"] == "PlotlyPreview"
