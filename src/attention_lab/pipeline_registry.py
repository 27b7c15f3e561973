"""Project pipelines: one Kedro namespace per configured variant."""

from __future__ import annotations

import os
from pathlib import Path

from kedro.config import OmegaConfigLoader
from kedro.pipeline import Pipeline

from attention_lab.pipelines.analysis import pipeline as analysis
from attention_lab.pipelines.attention_extraction import pipeline as extraction
from attention_lab.pipelines.fine_tuning import pipeline as fine_tuning
from attention_lab.pipelines.ingestion import pipeline as ingestion


def _parameters() -> dict:
    """Parameters of the active env: from the running session, else from ``KEDRO_ENV``/local."""
    from attention_lab.hooks import ConfigHooks

    loader = ConfigHooks.config_loader
    if loader is None:  # e.g. `kedro registry list`, no session
        conf = Path(__file__).resolve().parents[2] / "conf"
        loader = OmegaConfigLoader(str(conf), base_env="base", default_run_env="local", env=os.environ.get("KEDRO_ENV"))
    return loader["parameters"]


def register_pipelines() -> dict[str, Pipeline]:
    """Register ingestion, fine_tuning, attention_extraction, analysis and ``__default__``."""
    params = _parameters()
    variants = list(params.get("variants") or {})
    reference = (params.get("study") or {}).get("reference", variants[0] if variants else None)
    pipelines = {
        "ingestion": ingestion.create_pipeline(),
        "fine_tuning": fine_tuning.create_pipeline(variants=variants),
        "attention_extraction": extraction.create_pipeline(variants=variants),
        "analysis": analysis.create_pipeline(variants=variants, reference=reference),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
