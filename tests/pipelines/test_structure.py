"""The study's pipeline graph: one job per (variant, seed), and a study-level step after them."""

from __future__ import annotations

import warnings

import pytest
import yaml

from attention_lab.pipelines.analysis.pipeline import EXPORTS
from attention_lab.pipelines.analysis.pipeline import create_pipeline as analysis
from attention_lab.pipelines.analysis.study_pipeline import IMPORTANCE
from attention_lab.pipelines.attention_extraction.pipeline import create_pipeline as extraction
from attention_lab.pipelines.fine_tuning.pipeline import create_pipeline as fine_tuning
from attention_lab.study import Study
from tests.conftest import PROJECT


@pytest.fixture(scope="module")
def study():
    params = yaml.safe_load((PROJECT / "conf/base/parameters_fine_tuning.yml").read_text())
    plan = Study.from_params(params)
    assert len(plan.seeds) == 3  # the default study is replicated
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Kedro's warning about dots in dataset names fails here
        whole = fine_tuning(jobs=plan.jobs) + extraction(jobs=plan.jobs) + analysis(plan)
    return whole, plan


def test_a_job_needs_nothing_from_another_job(study):
    whole, plan = study
    for job in plan.jobs:
        nodes = whole.only_nodes_with_namespaces([job.name])
        outside = {name for name in nodes.inputs() if not name.startswith("params:")}
        assert outside == {"corpus", "probe_set", f"{job.name}.job"}, job


def test_the_study_step_holds_every_node_that_reads_two_jobs(study):
    whole, plan = study
    step = whole.only_nodes_with_tags("study")
    assert {node.namespace for node in step.nodes} == {"study"}
    for node in whole.nodes:
        jobs = {"__".join(n.split(".")[0].split("__")[:2]) for n in node.inputs if "__" in n}
        if len(jobs) > 1:
            assert "study" in node.tags, node.name
    # what the step reads from the jobs is exactly what they export (importance: first seed)
    exports = {name for name in step.inputs() if "__" in name}
    assert exports == {
        f"{job.name}__{name}"
        for job in plan.jobs
        for name in EXPORTS
        if job.seed == plan.seeds[0] or name not in IMPORTANCE
    }


def test_jobs_are_ingestion_then_one_per_variant_and_seed_then_the_study(study):
    """What kedro-airflow's ``--group-by namespace`` makes into tasks, and their order."""
    from attention_lab.pipelines.ingestion.pipeline import create_pipeline as ingestion

    whole, plan = study
    refs = [job.name for job in plan.jobs]
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
