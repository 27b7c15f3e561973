"""One way to know the env (the session's, see attention_lab.session_env) and parameters that
merge with conf/base key by key.

`kedro run --env` (test_end_to_end), `kedro viz run --env` (test_viz) and `KEDRO_ENV` in a
notebook with `%load_ext kedro.ipython` (test_notebooks) are each checked where they run; here,
the dashboard's `--env` and the merge rules.
"""

from __future__ import annotations

import shutil

import yaml

from attention_lab.config_loader import StudyConfigLoader
from attention_lab.pipeline_registry import register_pipelines
from attention_lab.session_env import active_env
from tests.conftest import PROJECT

TEST_ENV_ONLY = "window2_lora"


def namespaces() -> set[str]:
    """The variants whose jobs (``{variant}__seed{seed}``) the registry built."""
    return {node.namespace.split("__")[0] for node in register_pipelines()["fine_tuning"].nodes}


def test_the_dashboards_env_decides_the_namespaces():
    from dashboard.data import StudyData

    try:
        StudyData(env="test")
        assert active_env() == "test" and TEST_ENV_ONLY in namespaces()
    finally:
        StudyData()  # back to the default study, whatever happened
    assert active_env() is None and TEST_ENV_ONLY not in namespaces()
    assert {"full", "mqa_lora"} <= namespaces()


def loader(conf, env=None, runtime_params=None) -> dict:
    return StudyConfigLoader(
        str(conf),
        base_env="base",
        default_run_env="local",
        env=env,
        runtime_params=runtime_params,
    )["parameters"]


def test_a_local_override_keeps_the_rest_of_base(tmp_path):
    """The README's "your own data" recipe overrides only ingestion.source."""
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf" / "base", conf / "base")
    (conf / "local").mkdir()
    source = {"name": "file", "path": "data/01_raw/mine.csv", "text_column": "review"}
    (conf / "local" / "parameters.yml").write_text(
        yaml.safe_dump({"ingestion": {"source": source}})
    )
    merged = loader(conf)
    base = yaml.safe_load((PROJECT / "conf/base/parameters_ingestion.yml").read_text())["ingestion"]
    assert merged["ingestion"]["source"]["path"] == "data/01_raw/mine.csv"
    assert merged["ingestion"]["source"]["label_column"] == base["source"]["label_column"]
    assert merged["ingestion"]["split"]["max_per_split"] == base["split"]["max_per_split"]
    assert merged["ingestion"]["probe"]["n_examples"] == base["probe"]["n_examples"]


def test_an_envs_variants_replace_the_base_study_whole():
    test_params = yaml.safe_load((PROJECT / "conf/test/parameters.yml").read_text())
    merged = loader(PROJECT / "conf", env="test")
    assert list(merged["variants"]) == list(test_params["variants"])
    # nested keys still merge: the test env sets no training epochs, base does
    assert merged["study"]["defaults"]["training"]["max_steps"] == 2
    assert merged["study"]["defaults"]["training"]["epochs"] == 2


def local_env(tmp_path, local: dict):
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf" / "base", conf / "base")
    (conf / "local").mkdir()
    (conf / "local" / "parameters.yml").write_text(yaml.safe_dump(local))
    return conf


def test_params_on_the_command_line_merge_into_the_variants(tmp_path):
    """`--params variants.full.training.learning_rate=…` changes one variant, drops none."""
    conf = local_env(tmp_path, {"ingestion": {"source": {"name": "bbc_news"}}})
    runtime = {"variants": {"full": {"training": {"learning_rate": 1e-3}}}}
    merged = loader(conf, runtime_params=runtime)
    base = loader(PROJECT / "conf")
    assert list(merged["variants"]) == list(base["variants"])
    assert merged["variants"]["full"]["method"] == "full"
    assert merged["variants"]["full"]["training"]["learning_rate"] == 1e-3


def test_a_local_study_with_its_own_variants_does_not_keep_the_base_reference(tmp_path):
    conf = local_env(tmp_path, {"variants": {"a": {"method": "head"}, "b": {"method": "lora"}}})
    merged = loader(conf)
    assert list(merged["variants"]) == ["a", "b"]
    assert "reference" not in merged["study"]  # the first variant, as for a study of its own
    assert merged["study"]["defaults"]["model"] == "minilm"  # the rest of base's study stays
