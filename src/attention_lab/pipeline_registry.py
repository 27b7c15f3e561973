"""Project pipelines: one Kedro namespace per job, a configured variant trained with one seed."""

from __future__ import annotations

import os
from pathlib import Path

from kedro.framework.project import settings
from kedro.pipeline import Pipeline

from attention_lab.pipelines.analysis import pipeline as analysis
from attention_lab.pipelines.attention_extraction import pipeline as extraction
from attention_lab.pipelines.fine_tuning import pipeline as fine_tuning
from attention_lab.pipelines.ingestion import pipeline as ingestion
from attention_lab.session_env import active_conf_source, active_env, active_runtime_params
from attention_lab.study import Study

PROJECT = Path(__file__).resolve().parents[2]


def _parameters() -> dict:
    """Parameters of the active session's env (see :mod:`attention_lab.session_env`)."""
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=active_conf_source() or str(PROJECT / settings.CONF_SOURCE),
        env=active_env() or os.environ.get("KEDRO_ENV"),  # `kedro registry` opens no session
        runtime_params=active_runtime_params(),
        **settings.CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]


def register_pipelines() -> dict[str, Pipeline]:
    """Register ingestion, fine_tuning, attention_extraction, analysis, study and ``__default__``."""
    study = Study.from_params(_parameters())  # one job per (variant, seed)
    pipelines = {
        "ingestion": ingestion.create_pipeline(),
        "fine_tuning": fine_tuning.create_pipeline(jobs=study.jobs),
        "attention_extraction": extraction.create_pipeline(jobs=study.jobs),
        "analysis": analysis.create_pipeline(study),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    # after every variant's job (`kedro run --namespaces=<v>`): what reads several variants
    pipelines["study"] = pipelines["analysis"].only_nodes_with_tags("study")
    return pipelines
