"""One typed, validated model per parameters file (``conf/<env>/parameters_*.yml``).

Kedro builds them when a run starts: a node that annotates a ``params:`` input with one of
these classes receives the built object, and a wrong value stops the run before any work with
one line that names the key, the value and what is allowed (see :mod:`attention_lab.validation`).
Called with a plain mapping (a notebook, a test), ``Settings.of`` builds the same object.

The study and its variants (``parameters_fine_tuning.yml``) are checked by
:func:`attention_lab.variants.parse_study` at the same moment, into ``VariantSpec`` objects.
"""

from collections.abc import Mapping
from typing import Any

from attention_lab.parameters.analysis import AnalysisSettings, FunctionSettings, StatisticsSettings
from attention_lab.parameters.base import Settings
from attention_lab.parameters.costs import CostSettings
from attention_lab.parameters.extraction import ExtractionSettings, ShardSettings
from attention_lab.parameters.ingestion import (
    CleaningSettings,
    IngestionSettings,
    ProbeSettings,
    SourceSettings,
    SplitSettings,
)

# the top-level key of each typed section in the parameters
SECTIONS: dict[str, type[Settings]] = {
    "ingestion": IngestionSettings,
    "attention_extraction": ExtractionSettings,
    "analysis": AnalysisSettings,
    "costs": CostSettings,
}


def check_parameters(params: Mapping[str, Any]) -> dict[str, Settings]:
    """Every typed section of ``params`` built, so the first wrong value stops the run
    with its one-line :class:`~attention_lab.errors.ConfigError` (Kedro builds them again
    for the nodes, and would report a wrong value in several lines)."""
    return {key: cls.of(params.get(key)) for key, cls in SECTIONS.items()}


__all__ = [
    "SECTIONS",
    "check_parameters",
    "AnalysisSettings",
    "CleaningSettings",
    "CostSettings",
    "ExtractionSettings",
    "FunctionSettings",
    "IngestionSettings",
    "ProbeSettings",
    "Settings",
    "ShardSettings",
    "SourceSettings",
    "SplitSettings",
    "StatisticsSettings",
]
