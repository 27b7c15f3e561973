"""Each parameters file is one typed model: every env's files build, a wrong value is one line
that names where it sits, and Kedro hands the nodes the built objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from attention_lab.errors import ConfigError
from attention_lab.parameters import (
    SECTIONS,
    AnalysisSettings,
    ExtractionSettings,
    IngestionSettings,
    check_parameters,
)

PROJECT = Path(__file__).resolve().parents[1]
ENVS = sorted(p.name for p in (PROJECT / "conf").iterdir() if (p / "parameters.yml").exists())


def _raw_parameters(env: str) -> dict:
    """The env's parameters as the project's own config loader merges them."""
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(PROJECT / "conf"),
        env=None if env == "base" else env,
        **settings.CONFIG_LOADER_ARGS,
    )
    return dict(loader["parameters"])


@pytest.mark.parametrize("env", ["base", *ENVS])
def test_every_envs_parameters_build_with_their_values(env):
    raw = _raw_parameters(env)
    built = check_parameters(raw)
    assert set(built) == set(SECTIONS)
    for key, settings in built.items():
        assert isinstance(settings, SECTIONS[key])
        assert _held(raw[key], settings.model_dump()), key  # what the file says is what it holds


def _held(written, held) -> bool:
    """Every value ``written`` in the file is in ``held`` (lists may be held as tuples)."""
    if isinstance(written, dict):
        return isinstance(held, dict) and all(_held(v, held.get(k)) for k, v in written.items())
    if isinstance(written, list):
        return isinstance(held, list | tuple) and list(held) == written
    return held == written


@pytest.mark.parametrize(
    ("cls", "raw", "message"),
    [
        (
            AnalysisSettings,
            {"sink_threshold": 1.5},
            "analysis.sink_threshold: must be < 1, got 1.5.",
        ),
        (
            AnalysisSettings,
            {"statistics": {"resamples": 10}},
            "analysis.statistics: unknown key(s) ['resamples']; allowed: bootstrap_resamples, "
            "permutations, fdr_q, seed.",
        ),
        (
            AnalysisSettings,
            {"head_functions": {"ablation_k": [1, 0]}},
            "analysis.head_functions.ablation_k: must be >= 1, got 0.",
        ),
        (
            ExtractionSettings,
            {"precision_bits": 7},
            "attention_extraction.precision_bits: must be >= 8, got 7.",
        ),
        (
            ExtractionSettings,
            {"shard": {"index": 2, "count": 2}},
            "attention_extraction.shard: index 2 must be in 0..1, got {'index': 2, 'count': 2}.",
        ),
        (
            ExtractionSettings,
            {"norms": "yes"},
            "attention_extraction.norms: expected true or false",
        ),
        (
            IngestionSettings,
            {"cleaning": {"on_invalid": "skip"}},
            "ingestion.cleaning.on_invalid: unknown value 'skip'; allowed: drop, error.",
        ),
        (
            IngestionSettings,
            {"probe": {"n_examples": 2.5}},
            "ingestion.probe.n_examples: expected a whole number, got 2.5.",
        ),
    ],
)
def test_a_wrong_value_is_one_line_naming_it(cls, raw, message):
    with pytest.raises(ConfigError) as raised:
        cls.of(raw)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_kedro_builds_the_typed_sections_the_nodes_ask_for():
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro.validation.type_extractor import TypeExtractor

    bootstrap_project(PROJECT)
    wanted = TypeExtractor(dict(pipelines)).extract_types_from_pipelines()
    assert wanted == SECTIONS  # every typed section has a node that asks for it, and no more
    with KedroSession.create(project_path=PROJECT, env="test") as session:
        params = session.load_context().params
    raw = _raw_parameters("test")
    for key, cls in SECTIONS.items():
        assert params[key] == cls.of(raw[key])


@pytest.mark.slow
def test_kedro_run_with_a_wrong_value_stops_with_one_line_before_any_node():
    from tests.runs import kedro

    result = kedro(
        "--env=test", "--pipeline=ingestion", "--params", "analysis.sink_threshold=2", check=False
    )
    assert result.returncode != 0
    assert "Error: analysis.sink_threshold: must be < 1, got 2." in result.stderr
    assert "Traceback" not in result.stderr
    assert "Running node" not in result.stdout + result.stderr
