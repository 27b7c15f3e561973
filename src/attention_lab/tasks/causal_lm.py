"""Causal language modelling: next-token loss and perplexity on the texts themselves."""

from __future__ import annotations

import math

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

    def finish(self, state, test, loss, info) -> dict:
        return {"eval_loss": round(loss, 4), "perplexity": round(math.exp(loss), 3)}
