"""Distillation: train a converted model toward its base checkpoint's next-token distribution.

A mechanism conversion (pooled key/value heads, a latent cache, a gate) changes a trained
model; uptraining with the plain language-model loss relearns the text from a few thousand
tokens, while matching the base model's full distribution at every position gives far more
signal per token (Hinton et al., 2015). The loss is ``KL(p_base || p_student)`` per real
(non-padding) position, averaged, at temperature 1.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional


def distillation_loss(
    student_logits: torch.Tensor,  # (B, T, V)
    teacher_logits: torch.Tensor,  # (B, T, V)
    attention_mask: torch.Tensor | None,  # (B, T), 1 on real tokens
) -> torch.Tensor:
    """Mean over real positions of ``sum_v p_t(v) (log p_t(v) - log p_s(v))``."""
    student = functional.log_softmax(student_logits.float(), dim=-1)
    teacher = functional.log_softmax(teacher_logits.float(), dim=-1)
    per_position = (teacher.exp() * (teacher - student)).sum(-1)  # (B, T)
    if attention_mask is None:
        return per_position.mean()
    weights = attention_mask.to(per_position.dtype)
    return (per_position * weights).sum() / weights.sum().clamp_min(1)


class Teacher:
    """The frozen base model, answering with its logits for a batch (no gradients)."""

    def __init__(self, model: nn.Module):
        self.model = model.eval().requires_grad_(False)

    @torch.no_grad()
    def logits(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        return self.model(
            input_ids=inputs["input_ids"].to(device),
            attention_mask=inputs.get("attention_mask"),
        ).logits
