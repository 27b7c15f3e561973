"""Ingestion: source -> clean corpus with splits -> probe set.

Its nodes share the namespace ``ingestion`` (their datasets keep their names), so it is one
job: ``kedro run --namespaces=ingestion``, one Airflow task."""

from kedro.pipeline import Pipeline, node, pipeline

from attention_lab.pipelines.ingestion.nodes import (
    build_probe_set,
    clean_corpus,
    load_source,
    split_corpus,
)


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(load_source, "params:ingestion", ["raw_corpus", "raw_meta"], name="load_source"),
            node(
                clean_corpus,
                ["raw_corpus", "raw_meta", "params:ingestion"],
                ["clean_corpus", "ingestion_report"],
                name="clean_corpus",
            ),
            node(
                split_corpus,
                ["clean_corpus", "ingestion_report", "params:ingestion"],
                "corpus",
                name="split_corpus",
            ),
            node(
                build_probe_set,
                ["corpus", "user_probes", "params:ingestion"],
                "probe_set",
                name="build_probe_set",
            ),
        ],
        namespace="ingestion",
        prefix_datasets_with_namespace=False,
    )
