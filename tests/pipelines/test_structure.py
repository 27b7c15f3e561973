"""The study's pipeline graph: one job per variant, and a study-level step after them."""

from __future__ import annotations

import warnings

import pytest
import yaml

from attention_lab.pipelines.analysis.pipeline import EXPORTS
from attention_lab.pipelines.analysis.pipeline import create_pipeline as analysis
from attention_lab.pipelines.attention_extraction.pipeline import create_pipeline as extraction
from attention_lab.pipelines.fine_tuning.pipeline import create_pipeline as fine_tuning
from attention_lab.variants import references
from tests.conftest import PROJECT


@pytest.fixture(scope="module")
def study():
    params = yaml.safe_load((PROJECT / "conf/base/parameters_fine_tuning.yml").read_text())
    refs = references(params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Kedro's warning about dots in dataset names fails here
        whole = (
            fine_tuning(variants=list(refs))
            + extraction(variants=list(refs))
            + analysis(references=refs)
        )
    return whole, refs


def test_a_variants_job_needs_nothing_from_another_variant(study):
    whole, refs = study
    for v in refs:
        job = whole.only_nodes_with_namespaces([v])
        outside = {name for name in job.inputs() if not name.startswith("params:")}
        assert outside == {"corpus", "probe_set", f"{v}.variant_name"}, v


def test_the_study_step_holds_every_node_that_reads_two_variants(study):
    whole, refs = study
    step = whole.only_nodes_with_tags("study")
    assert {node.namespace for node in step.nodes} == {"study"}
    for node in whole.nodes:
        variants = {name.split("__")[0] for name in node.inputs if "__" in name}
        if len(variants) > 1:
            assert "study" in node.tags, node.name
    # what the step reads from the variants' jobs is exactly what they export
    exports = {name for name in step.inputs() if "__" in name}
    assert exports == {f"{v}__{name}" for v in refs for name in EXPORTS}


def test_jobs_are_ingestion_then_one_per_variant_then_the_study(study):
    """What kedro-airflow's ``--group-by namespace`` makes into tasks, and their order."""
    from attention_lab.pipelines.ingestion.pipeline import create_pipeline as ingestion

    whole, refs = study
    ingest = ingestion()
    assert {node.namespace for node in ingest.nodes} == {"ingestion"}
    assert {"corpus", "probe_set"} <= ingest.all_outputs()  # names kept: no prefix
    groups = {g.name: g for g in (ingest + whole).group_nodes_by("namespace")}
    assert set(groups) == {"ingestion", "study", *refs}
    assert all(g.type == "namespace" for g in groups.values())
    assert groups["ingestion"].dependencies == []
    for v in refs:
        assert groups[v].dependencies == ["ingestion"], v
    assert set(groups["study"].dependencies) == set(refs)
