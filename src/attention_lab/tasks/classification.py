"""Sequence classification: a label per text; accuracy and macro-F1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification

from attention_lab.errors import ConfigError
from attention_lab.methods import method_named
from attention_lab.tasks.base import Task


def macro_f1(truth: np.ndarray, pred: np.ndarray, num_labels: int) -> float:
    """Mean over labels of 2TP / (2TP + FP + FN); a label never seen nor predicted scores 0."""
    scores = []
    for k in range(num_labels):
        tp = np.sum((pred == k) & (truth == k))
        fp = np.sum((pred == k) & (truth != k))
        fn = np.sum((pred != k) & (truth == k))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


class Classification(Task):
    name = "classification"
    peft_task_type = "SEQ_CLS"

    def load_pretrained(self, source: str, num_labels: int | None, **common):
        if not num_labels:
            raise ConfigError(
                "num_labels: classification needs the number of labels (from the corpus)."
            )
        return AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=num_labels, **common
        )

    def labels_for(self, frame: pd.DataFrame, tokenizer) -> list[int]:
        return [int(label) for label in frame["label"]]

    def pad_labels(self, labels, padded):
        return torch.tensor(labels)

    def loss_weight(self, batch) -> int:
        return len(batch["labels"])  # one term per example

    def observe(self, state, output, batch) -> None:
        state.setdefault("predictions", []).extend(output.logits.argmax(-1).tolist())

    def outcomes(self, state, test) -> dict:
        truth, pred = test["label"].to_numpy(), np.array(state["predictions"])
        return {"label": truth, "prediction": pred, "correct": pred == truth}

    def finish(self, state, test, loss, info) -> dict:
        truth, pred = test["label"].to_numpy(), np.array(state["predictions"])
        return {
            "eval_loss": round(loss, 4),
            "accuracy": round(float((pred == truth).mean()), 4),
            "macro_f1": round(macro_f1(truth, pred, info.num_labels), 4),
            "untrained_head": not method_named(info.method).updates_weights,
        }
