"""Causal language modelling: next-token loss and perplexity on the texts themselves."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AutoModelForCausalLM

from attention_lab.tasks.base import Task


class CausalLM(Task):
    name = "causal_lm"
    peft_task_type = "CAUSAL_LM"

    def load_pretrained(self, source: str, num_labels: int | None, **common):
        return AutoModelForCausalLM.from_pretrained(source, **common)

    def pad_labels(self, labels, padded):
        """The inputs are the labels; padding is ignored (-100)."""
        return padded["input_ids"].masked_fill(padded["attention_mask"] == 0, -100)

    def example_losses(self, output, batch) -> torch.Tensor:
        """Token t predicts token t + 1, as the model's own loss shifts them."""
        logits = output.logits[:, :-1].float()  # (B, T-1, V)
        labels = batch["labels"][:, 1:]  # (B, T-1), -100 on padding
        per_token = nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
        return per_token.sum(-1)

    def example_terms(self, batch) -> torch.Tensor:
        return (batch["labels"][:, 1:] != -100).sum(-1)

    def finish(self, state, test, loss, info) -> dict:
        return {"eval_loss": round(loss, 4), "perplexity": round(math.exp(loss), 3)}
