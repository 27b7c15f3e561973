"""`training.precision`: bfloat16 autocast for training only; weights and evaluation stay float32."""

from __future__ import annotations

import pytest
import torch

from attention_lab.errors import ConfigError
from attention_lab.training import fine_tune as ft
from attention_lab.variants import TrainingSpec, parse_variant
from tests.pipelines.fine_tuning.test_nodes import STUDY, corpus  # noqa: F401  (fixture)


@pytest.mark.parametrize(
    ("precision", "fast_path", "hardware", "expected"),
    [
        ("fp32", True, True, False),
        ("bf16", False, False, True),
        ("auto", False, True, False),  # the old path is the float32 baseline
        ("auto", True, True, True),
        ("auto", True, False, False),  # no native bfloat16: autocast would be slower
    ],
)
def test_precision_resolves(monkeypatch, precision, fast_path, hardware, expected):
    monkeypatch.setattr(ft, "fast_bfloat16", lambda: hardware)
    spec = TrainingSpec(precision=precision, fast_path=fast_path)
    assert ft.trains_in_bfloat16(spec) is expected


def test_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="training.precision: unknown precision 'fp8'"):
        parse_variant("v", {"method": "full", "training": {"precision": "fp8"}}, STUDY)


@pytest.mark.slow
def test_bfloat16_training_keeps_float32_weights_and_changes_the_steps(corpus):  # noqa: F811
    trained = {}
    for precision in ("fp32", "bf16"):
        study = {**STUDY, "defaults": {**STUDY["defaults"]}}
        study["defaults"]["training"] = {
            **study["defaults"]["training"],
            "precision": precision,
            "learning_rate": 1e-4,
        }
        artifact, _ = ft.fine_tune_variant(parse_variant("full", {"method": "full"}, study), corpus)
        assert artifact.info.training_precision == precision
        trained[precision] = artifact.model.state_dict()
    assert all(p.dtype == torch.float32 for p in trained["bf16"].values() if p.is_floating_point())
    weight = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(trained["fp32"][weight], trained["bf16"][weight])  # autocast was on
    # Adam moves each weight by at most about the learning rate per step, whatever the precision
    assert torch.allclose(trained["fp32"][weight], trained["bf16"][weight], atol=2 * 2 * 1e-4)
