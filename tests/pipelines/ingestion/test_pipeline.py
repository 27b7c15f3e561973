"""The ingestion pipeline end to end with SequentialRunner on a catalog built in the test."""

from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from attention_lab.pipelines.ingestion.pipeline import create_pipeline


def test_ingestion_pipeline(tmp_path):
    params = {
        "source": {"name": "bbc_news"},
        "split": {"seed": 1, "sizes": {"train": 50, "validation": 20, "test": 30}},
        "probe": {"n_examples": 10},
    }
    catalog = DataCatalog(
        {
            "params:ingestion": MemoryDataset(params),
            "user_probes": MemoryDataset("tech\tA new phone."),
            # intermediates, kept on disk so the test can inspect them
            "corpus": ParquetDataset(filepath=str(tmp_path / "corpus.parquet")),
            "ingestion_report": JSONDataset(filepath=str(tmp_path / "report.json")),
        }
    )
    outputs = SequentialRunner().run(create_pipeline(), catalog)
    corpus, probes, report = (
        catalog.load("corpus"),
        outputs["probe_set"].load(),
        catalog.load("ingestion_report"),
    )
    assert corpus["split"].value_counts().to_dict() == {"test": 30, "train": 50, "validation": 20}
    assert len(probes) == 11 and probes["source"].tolist().count("user") == 1
    assert set(probes.loc[probes["source"] == "test", "id"]) <= set(
        corpus.loc[corpus["split"] == "test", "id"]
    )
    assert (
        report["rows_read"] == 2225 and report["rows_kept"] == 2225 - report["dropped_duplicates"]
    )
