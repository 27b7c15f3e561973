"""The notebooks run top to bottom on the `test` env's catalog (and are committed without outputs)."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import PROJECT

pytestmark = pytest.mark.slow  # subprocess runs of the CLI, or a model trained from scratch

NOTEBOOKS = sorted((PROJECT / "notebooks").glob("*.ipynb"))


def test_every_experiment_has_its_notebook():
    assert {p.name for p in NOTEBOOKS} == {
        "heatmap_visualization.ipynb",
        "result_comparison.ipynb",
        "fine_tuning.ipynb",
        "attention_mechanisms.ipynb",
        "cross_attention.ipynb",
        "head_functions.ipynb",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    assert all(
        not cell.get("outputs") and cell.get("execution_count") is None
        for cell in notebook.cells
        if cell.cell_type == "code"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_on_the_test_env(path, test_env_run, monkeypatch):
    monkeypatch.setenv("KEDRO_ENV", "test")  # as `KEDRO_ENV=test jupyter lab` would
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(
        "application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs
    )  # figures, not only tables
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "env=test" in printed
    assert "'window2_lora__seed8'" in printed  # the registry built the test env's jobs
