"""Mechanism specs: parsing and the checks against a model's shape."""

import pytest

from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.errors import ConfigError


def test_names_and_mappings_parse():
    assert MechanismSpec.from_config("mqa").target_kv_heads == 1
    spec = MechanismSpec.from_config({"name": "gqa", "kv_heads": 4, "layers": [3, 1, 3]})
    assert spec.target_kv_heads == 4 and spec.layers == (1, 3)
    assert spec.applies_to(1) and not spec.applies_to(0)
    assert MechanismSpec.from_config(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "raw",
    [
        "mha",
        {"name": "mqa", "pooling": "calibrated"},
        {"name": "sliding_window", "window": 8, "sink_tokens": 4, "layers": [1]},
        {"name": "mla", "rank": 16, "rope_pairs": 2},
        "gated",
    ],
)
def test_every_mechanism_reads_back_from_its_record(raw):
    """A saved model's record of its spec (``to_dict``, other mechanisms' keys as null)
    parses back to the same spec."""
    spec = MechanismSpec.from_config(raw)
    assert spec.name == (raw if isinstance(raw, str) else raw["name"])
    assert MechanismSpec.from_config(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "flash"}, "unknown mechanism 'flash'; allowed: mha, gqa, mqa, sliding_window"),
        ({"name": "gqa"}, "gqa needs an integer >= 1"),
        (
            {"name": "sliding_window", "window": 0},
            "window: sliding_window needs an integer >= 1, got 0",
        ),
        ({"name": "mha", "window": 3}, "only sliding_window takes window"),
        ({"name": "mha", "heads": 3}, "unknown key"),
        ({"name": "mqa", "layers": [-1]}, r"mechanism\.layers: must be >= 0, got -1\."),
        ({"name": "mla", "rank": 8, "rope_pairs": 2, "kv_heads": 2}, "only gqa takes kv_heads"),
        ({"name": "gated", "pooling": "calibrated"}, "only gqa and mqa take pooling"),
        (
            {"name": "gqa", "kv_heads": 2, "pooling": "max"},
            "unknown value 'max'; allowed: mean, calibrated",
        ),
        ({"name": "mla", "rank": 8}, r"mechanism\.rope_pairs: mla needs an integer >= 1, got None"),
        ({"name": "gated", "layers": [0]}, "gated converts every layer; remove layers"),
    ],
)
def test_bad_specs_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        MechanismSpec.from_config(raw)


def test_kv_heads_must_divide_the_head_count():
    with pytest.raises(
        ConfigError,
        match=r"5 does not divide the model's 12 query heads; allowed: \[1, 2, 3, 4, 6, 12\]",
    ):
        MechanismSpec("gqa", kv_heads=5).check_against(num_layers=6, num_heads=12)
