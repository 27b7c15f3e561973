"""``parameters_analysis.yml``: the ``analysis`` section."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool

from attention_lab.parameters.base import Settings
from attention_lab.validation import Count, Index

Sizes = Annotated[tuple[Count, ...], Field(min_length=1)]


class StatisticsSettings(Settings):
    """``analysis.statistics``: uncertainty over probe examples (docs/methodology.md)."""

    SECTION = "analysis.statistics"
    bootstrap_resamples: Count = 1000  # percentile intervals of every mean
    permutations: Count = 10_000  # paired sign-flip test per head
    fdr_q: Annotated[float, Field(gt=0, lt=1)] = 0.05  # Benjamini-Hochberg level
    seed: Index = 0


class FunctionSettings(Settings):
    """``analysis.head_functions``: probe count and half-length, seed, ablation sizes."""

    SECTION = "analysis.head_functions"
    sequences: Count = 8
    half: Count = 32
    seed: Index = 0
    ablation_k: Sizes = (1, 2, 4, 8)
    random_draws: Count = 3
    needles: Count = 2  # retrieval probes (causal LMs)
    needle_tokens: Count = 512
    retrieval_k: Sizes = (4,)
    enabled: StrictBool = True


class AnalysisSettings(Settings):
    """``analysis``: heatmaps, head importance, pruning, sinks, head functions, statistics."""

    SECTION = "analysis"
    heatmap_metric: str = "normalized_entropy"  # a column of head_metrics
    importance_examples: Index = 128  # 0: no head importance
    pruning_examples: Count = 200
    sink_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.3  # Gu et al. (2024)'s epsilon
    head_functions: FunctionSettings = FunctionSettings()
    statistics: StatisticsSettings = StatisticsSettings()
