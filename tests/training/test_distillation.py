"""The distillation loss against KL divergence written out by hand, and the objective's config."""

from __future__ import annotations

import math

import pytest
import torch

from attention_lab.errors import ConfigError
from attention_lab.training.distillation import distillation_loss
from attention_lab.variants import parse_variant


def kl_by_hand(teacher: list[float], student: list[float]) -> float:
    """sum_v p(v) log(p(v) / q(v)) with p, q the softmaxes of two logit lists."""
    p = [math.exp(t) / sum(math.exp(x) for x in teacher) for t in teacher]
    q = [math.exp(s) / sum(math.exp(x) for x in student) for s in student]
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def test_distillation_loss_is_the_mean_kl_over_real_positions():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])  # the second row is mostly padding
    real = [(0, 0), (0, 1), (0, 2), (1, 0)]
    expected = sum(kl_by_hand(teacher[b, t].tolist(), student[b, t].tolist()) for b, t in real)
    got = distillation_loss(student, teacher, mask)
    assert float(got) == pytest.approx(expected / len(real), rel=1e-5)
    assert float(distillation_loss(teacher, teacher, mask)) == pytest.approx(0, abs=1e-6)


def test_distill_objective_needs_a_language_model_study():
    study = {"task": "classification", "defaults": {"model": "minilm"}}
    with pytest.raises(ConfigError, match="causal_lm"):
        parse_variant("v", {"method": "lora", "training": {"objective": "distill"}}, study)
    with pytest.raises(ConfigError, match="unknown objective 'kl'"):
        parse_variant("v", {"method": "lora", "training": {"objective": "kl"}}, study)
