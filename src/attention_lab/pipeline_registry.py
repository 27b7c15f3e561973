"""Project pipelines: one Kedro namespace per configured variant."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from kedro.config import OmegaConfigLoader
from kedro.pipeline import Pipeline

from attention_lab.pipelines.analysis import pipeline as analysis
from attention_lab.pipelines.attention_extraction import pipeline as extraction
from attention_lab.pipelines.fine_tuning import pipeline as fine_tuning
from attention_lab.pipelines.ingestion import pipeline as ingestion


def _cli_env() -> str | None:
    """The ``--env``/``-e`` value of the running kedro command, if any."""
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        if arg in ("--env", "-e") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--env="):
            return arg.split("=", 1)[1]
    return None


def _parameters() -> dict:
    """Parameters of the active env, which decides the variant namespaces.

    ``kedro run`` hands its config loader over through a hook; kedro-viz runs without
    project hooks, so fall back to ``KEDRO_ENV``, then the command line's ``--env``.
    """
    from attention_lab.hooks import ConfigHooks

    loader = ConfigHooks.config_loader
    if loader is None:
        conf = Path(__file__).resolve().parents[2] / "conf"
        env = os.environ.get("KEDRO_ENV") or _cli_env()
        loader = OmegaConfigLoader(str(conf), base_env="base", default_run_env="local", env=env)
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
