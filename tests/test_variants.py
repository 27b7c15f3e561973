"""Variant configuration: defaults merge, and each wrong value stops the run with its key named."""

import pytest

from attention_lab.errors import ConfigError
from attention_lab.variants import parse_study

STUDY = {
    "task": "classification",
    "reference": "base",
    "defaults": {"model": "minilm", "training": {"epochs": 1, "learning_rate": 1e-3}},
}


def study(**variant):
    return {"study": STUDY, "variants": {"base": {"method": "head"}, "v": variant}}


def test_defaults_fill_what_a_variant_leaves_out():
    specs = parse_study(study(method="lora", training={"learning_rate": 2e-3}))
    assert specs["v"].model == "minilm" and specs["v"].training.epochs == 1.0
    assert (
        specs["v"].training.learning_rate == 2e-3 and specs["base"].training.learning_rate == 1e-3
    )


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        (
            {"method": "lora", "mechanism": {"name": "linear"}},
            r"variants\.v\.mechanism\.name: unknown mechanism 'linear'; allowed: mha, gqa, mqa, sliding_window",
        ),
        (
            {"method": "lora", "mechanism": {"name": "gqa", "kv_heads": 5}},
            r"variants\.v\.mechanism\.kv_heads: 5 does not divide the model's 12 query heads; allowed: \[1, 2, 3, 4, 6, 12\]",
        ),
        (
            {"method": "lora", "mechanism": {"name": "sliding_window", "window": 0}},
            r"variants\.v\.mechanism\.window: sliding_window needs an integer >= 1",
        ),
        (
            {"method": "lora", "model": "minilmm"},
            r"variants\.v\.model: unknown model alias 'minilmm'; allowed aliases: minilm, smollm2-135m",
        ),
        (
            {"method": "prefix"},
            r"variants\.v\.method: unknown method 'prefix'; allowed: none, head, lora, full",
        ),
        (
            {"method": "lora", "training": {"batch_size": 0}},
            r"variants\.v\.training\.batch_size: must be >= 1, got 0",
        ),
        (
            {"method": "lora", "training": {"lr": 1}},
            r"variants\.v\.training: unknown key\(s\) \['lr'\]",
        ),
    ],
)
def test_wrong_values_name_variant_key_and_allowed_values(variant, message):
    with pytest.raises(ConfigError, match=message):
        parse_study(study(**variant))


@pytest.mark.parametrize("name", ["study", "ingestion", "zoo"])
def test_reserved_names_are_not_variant_names(name):
    with pytest.raises(ConfigError, match=f"variants.{name}: '{name}' is reserved"):
        parse_study({"study": STUDY, "variants": {"base": {"method": "head"}, name: {}}})


def test_reference_must_be_a_variant():
    with pytest.raises(ConfigError, match="study.reference: 'nope' is not a variant"):
        parse_study(
            {"study": {**STUDY, "reference": "nope"}, "variants": {"base": {"method": "head"}}}
        )


@pytest.mark.slow
def test_validation_runs_before_any_work():
    """`kedro run` with a bad variant stops in the before_pipeline_run hook, before ingestion writes."""
    from tests.runs import kedro

    result = kedro(
        "--env=test", "--pipeline=ingestion", "--params", "variants.lora.method=prefix", check=False
    )
    assert result.returncode != 0
    assert (
        "Error: variants.lora.method: unknown method 'prefix'; allowed: none, head, lora, full."
        in result.stderr
    )
    assert "Traceback" not in result.stderr  # one clear line, not a stack
    assert "Running node" not in result.stdout + result.stderr


def test_each_variant_is_compared_within_its_own_base_model():
    from attention_lab.study import references

    params = {
        "study": {"reference": "base", "defaults": {"model": "smollm2-135m"}},
        "variants": {
            "base": {"method": "none"},
            "lora": {"method": "lora"},
            "gemma_base": {"model": "gemma3-270m", "method": "none"},
            "gemma_lora": {"model": "gemma3-270m", "method": "lora"},
        },
    }
    assert references(params) == {
        "base": "base",
        "lora": "base",
        "gemma_base": "gemma_base",
        "gemma_lora": "gemma_base",
    }


def test_task_names_for_config_checks_are_the_tasks():
    from attention_lab.tasks import TASKS as TASK_OBJECTS
    from attention_lab.variants import TASKS

    assert set(TASKS) == set(TASK_OBJECTS)


def test_cross_attention_rate_is_refused_outside_seq2seq():
    from attention_lab.errors import ConfigError
    from attention_lab.variants import parse_variant

    raw = {"method": "full", "training": {"cross_attention_learning_rate": "1e-3"}}
    assert (
        parse_variant("v", raw, {"task": "seq2seq"}).training.cross_attention_learning_rate == 1e-3
    )
    with pytest.raises(ConfigError, match="only a seq2seq study has cross-attention"):
        parse_variant("v", raw, {"task": "classification"})


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ("42", r"study\.seeds: expected a list of whole numbers >= 0, got '42'"),
        ([], r"study\.seeds: expected a list"),
        ([42, -1], r"study\.seeds: expected a list of whole numbers >= 0"),
        ([42, 42], r"study\.seeds: \[42, 42\] repeats a seed"),
    ],
)
def test_wrong_seeds_are_named(seeds, message):
    with pytest.raises(ConfigError, match=message):
        parse_study({**study(method="lora"), "study": {**STUDY, "seeds": seeds}})


def test_a_seed_in_a_variants_training_points_to_study_seeds():
    with pytest.raises(
        ConfigError, match=r"variants\.v\.training\.seed: seeds are set for the whole study"
    ):
        parse_study(study(method="lora", training={"seed": 3}))


def test_each_job_trains_with_its_own_seed_and_is_compared_with_the_same_seed():
    from attention_lab.study import Job, Study
    from attention_lab.variants import parse_variant

    params = {**study(method="lora"), "study": {**STUDY, "seeds": [5, 6]}}
    plan = Study.from_params(params)
    assert [job.name for job in plan.jobs] == ["base__seed5", "base__seed6", "v__seed5", "v__seed6"]
    assert plan.reference_job(Job("v", 6)) == Job("base", 6)
    assert parse_variant("v", {"method": "lora"}, params["study"], seed=6).training.seed == 6
    assert parse_variant("v", {"method": "lora"}, params["study"]).training.seed == 5


def test_mechanism_pairs_share_a_model_and_a_method():
    from attention_lab.study import Study

    variants = {
        "base": {"method": "head"},
        "lora": {"method": "lora"},
        "gqa": {"method": "lora", "mechanism": {"name": "gqa", "kv_heads": 4}},
        "mqa": {"method": "lora", "mechanism": "mqa"},
        "mqa_full": {"method": "full", "mechanism": "mqa"},
        "mqa_again": {"method": "lora", "mechanism": {"name": "mqa"}},  # the same mechanism
    }
    pairs = Study.from_params({"study": STUDY, "variants": variants}).mechanism_pairs()
    assert pairs == [
        ("lora", "gqa"),
        ("lora", "mqa"),
        ("lora", "mqa_again"),
        ("gqa", "mqa"),
        ("gqa", "mqa_again"),
    ]


def test_a_double_underscore_is_kept_for_job_names():
    with pytest.raises(ConfigError, match=r"single '_' \('__' joins a variant to its seed"):
        parse_study({"study": STUDY, "variants": {"base": {"method": "head"}, "a__b": {}}})
