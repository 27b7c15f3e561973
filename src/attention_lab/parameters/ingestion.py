"""``parameters_ingestion.yml``: the ``ingestion`` section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import StrictBool

from attention_lab.defaults import SEED
from attention_lab.parameters.base import Settings
from attention_lab.validation import Count, Index

SOURCES = ("rotten_tomatoes", "bbc_news", "convention_speeches", "file", "hub")
FILE_FORMATS = ("csv", "parquet", "jsonl")


class SourceSettings(Settings):
    """``ingestion.source``: a bundled corpus, a local file or a hub dataset."""

    SECTION = "ingestion.source"
    name: Literal[SOURCES] = "rotten_tomatoes"
    path: str | None = None  # file: a CSV, Parquet or JSONL file
    format: Literal[FILE_FORMATS] | None = None  # file: inferred from the suffix
    dataset_id: str | None = None  # hub: needs the network
    hub_split: str = "train"
    text_column: str = "text"
    label_column: str = "label"
    label_names: list[Any] | None = None  # the declared label set (names, or ids' names)
    label_map: dict[Any, Any] | None = None  # raw label -> name
    normalize_labels: StrictBool = False  # case and spaces folded


class CleaningSettings(Settings):
    """``ingestion.cleaning``: what happens to empty, unlabelled and short rows."""

    SECTION = "ingestion.cleaning"
    on_invalid: Literal["drop", "error"] = "drop"
    min_words: Index = 0


class SplitSettings(Settings):
    """``ingestion.split``: exact ``sizes``, or ``fractions`` under ``max_per_split`` caps."""

    SECTION = "ingestion.split"
    seed: Index = SEED
    fractions: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}
    max_per_split: dict[str, Index] | None = None
    sizes: dict[str, Index] | None = None


class ProbeSettings(Settings):
    """``ingestion.probe``: how many test examples to probe, and the user's sentences."""

    SECTION = "ingestion.probe"
    n_examples: Count = 32
    include_user_sentences: StrictBool = True


class IngestionSettings(Settings):
    """``ingestion``: source, cleaning, split and probe set."""

    SECTION = "ingestion"
    source: SourceSettings = SourceSettings()
    cleaning: CleaningSettings = CleaningSettings()
    split: SplitSettings = SplitSettings()
    probe: ProbeSettings = ProbeSettings()
