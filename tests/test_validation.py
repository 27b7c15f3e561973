"""pydantic checks the settings; its several-line errors reach the user as one line naming
where the value sits, what is wrong and what is allowed."""

from __future__ import annotations

import pytest

from attention_lab.errors import ConfigError
from attention_lab.validation import validated
from attention_lab.variants import LoraSpec, TrainingSpec

WHERE = "variants.v.training"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"fast_path": "yes"},
            r"variants\.v\.training\.fast_path: expected true or false, got 'yes'\.$",
        ),
        ({"batch_size": "many"}, r"\.batch_size: expected a whole number, got 'many'\.$"),
        ({"batch_size": 2.5}, r"\.batch_size: expected a whole number, got 2\.5\.$"),
        ({"learning_rate": 0}, r"\.learning_rate: must be > 0, got 0\.$"),
        ({"warmup_ratio": -0.1}, r"\.warmup_ratio: must be >= 0, got -0\.1\.$"),
        (
            {"lr": 1, "epoch": 2},
            r"variants\.v\.training: unknown key\(s\) \['epoch', 'lr'\]; allowed: epochs, max_steps",
        ),
        ([1, 2], r"variants\.v\.training: expected a mapping, got \[1, 2\]\.$"),
    ],
)
def test_a_wrong_value_is_one_line_naming_the_key(raw, message):
    with pytest.raises(ConfigError, match=message) as raised:
        validated(TrainingSpec, raw, WHERE)
    assert "\n" not in str(raised.value)


def test_two_wrong_values_still_give_one_line():
    with pytest.raises(ConfigError) as raised:
        validated(TrainingSpec, {"batch_size": 0, "fast_path": 3}, WHERE)
    assert str(raised.value).count("variants.v.training.") == 1 and "\n" not in str(raised.value)


def test_yaml_text_numbers_and_lists_are_read_as_what_they_say():
    # YAML 1.1 reads 5e-5 (no dot) as text; a list of targets becomes a tuple
    training = validated(TrainingSpec, {"learning_rate": "5e-5", "epochs": 2}, WHERE)
    assert training.learning_rate == 5e-5 and training.epochs == 2.0
    lora = validated(LoraSpec, {"targets": ["q_proj", "v_proj"]}, "variants.v.lora")
    assert lora.targets == ("q_proj", "v_proj") and lora.alpha == 16
    assert validated(TrainingSpec, None, WHERE) == TrainingSpec()
