"""What every task knows: how to load, encode, collate, evaluate and run a batch for attention.

One object per task replaces string comparisons scattered over training, evaluation and
extraction. ``classification``, ``causal_lm`` and ``seq2seq`` live in their own modules.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from attention_lab.kinds import AttentionKind
from attention_lab.model_info import ModelInfo
from attention_lab.tasks.data import EncodedDataset


@dataclass
class AttentionBatch:
    """One padded batch's attention and where each example's real tokens sit.

    ``maps[kind]`` is a tuple over layers of ``(B, H, Tq, Tk)`` weights; ``positions[side]``
    holds, per example, the indices of its real tokens on that side (``encoder`` for inputs,
    ``decoder`` for generated tokens), whichever side the padding is on.
    """

    maps: dict[str, tuple[torch.Tensor, ...]]
    positions: dict[str, list[torch.Tensor]]
    decoder_ids: list[list[int]] | None = None

    def sides(self, kind: str) -> tuple[str, str]:
        """(query side, key side) of an attention kind; a decoder-only model has one side."""
        parsed = AttentionKind.parse(kind)  # a norm kind sits where its kind does
        query, key = parsed.query_side, parsed.key_side
        if "decoder" not in self.positions:
            return "encoder", "encoder"
        return query, key


def mask_positions(mask: torch.Tensor) -> list[torch.Tensor]:
    """(B, T) attention mask -> per example the indices of its real tokens."""
    return [row.nonzero().flatten() for row in mask]


def accepts(model: nn.Module, argument: str) -> bool:
    """Whether ``model.forward`` takes ``argument`` (inspected once per model class)."""
    return argument in _parameters(type(model))


@functools.cache
def _parameters(cls: type) -> frozenset[str]:
    return frozenset(inspect.signature(cls.forward).parameters)


def with_positions(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add position ids counted over real tokens, so a left-padded example sits at 0..n-1.

    Decoders otherwise number positions from the batch's first column, and left padding
    would shift every real token's RoPE or learned position.
    """
    left_padded = bool((batch["attention_mask"][:, 0] == 0).any())
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
    if not left_padded or "position_ids" in batch or not accepts(inner, "position_ids"):
        return batch  # right padding keeps positions; RoBERTa-style models number their own
    positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)  # (B, T)
    return {**batch, "position_ids": positions}


class Task:
    """Base class; subclasses set the names and fill in the task-specific steps."""

    name: str = ""
    peft_task_type: str = ""
    # attention can be read one layer at a time from a plain forward pass (single stack)
    streams_layers: bool = True

    # -- loading -------------------------------------------------------------------------
    def load_pretrained(self, source: str, num_labels: int | None, **common) -> nn.Module:
        raise NotImplementedError

    def configure(self, model: nn.Module, tokenizer) -> None:
        """Task-specific settings once model and tokenizer are known (default: none)."""

    # -- data ----------------------------------------------------------------------------
    def labels_for(self, frame: pd.DataFrame, tokenizer) -> list[Any] | None:
        return None

    def encode(self, frame: pd.DataFrame, tokenizer, max_length: int) -> EncodedDataset:
        enc = tokenizer(list(frame["text"]), truncation=True, max_length=max_length)
        labels = self.labels_for(frame, tokenizer)
        features = [
            {"input_ids": ids, "attention_mask": mask}
            | ({} if labels is None else {"labels": labels[i]})
            for i, (ids, mask) in enumerate(
                zip(enc["input_ids"], enc["attention_mask"], strict=True)
            )
        ]
        return EncodedDataset(features)

    def pad_labels(self, labels: list[Any], padded: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def collate(
        self, tokenizer, model: nn.Module | None = None
    ) -> Callable[[list[dict]], dict[str, torch.Tensor]]:
        """Pads a list of features into tensors; labels are padded the task's way.

        With ``model``, a left-padded batch also gets position ids over its real tokens, so
        training and evaluation see the positions that extraction sees (:func:`with_positions`).
        """

        def _collate(batch: list[dict]) -> dict[str, torch.Tensor]:
            labels = [b["labels"] for b in batch] if "labels" in batch[0] else None
            out = tokenizer.pad(
                [{k: v for k, v in b.items() if k != "labels"} for b in batch], return_tensors="pt"
            )
            out["labels"] = self.pad_labels(labels, out)
            return out if model is None else with_positions(model, out)

        return _collate

    # -- evaluation ----------------------------------------------------------------------
    def loss_weight(self, batch: dict[str, torch.Tensor]) -> int:
        """How many terms the batch's mean loss averages (tokens for language modelling)."""
        return int(self.example_terms(batch).sum())

    def observe(self, state: dict[str, list], output, batch: dict[str, torch.Tensor]) -> None:
        """Keep what :meth:`finish` needs from one batch (default: nothing)."""

    def finish(
        self, state: dict[str, list], test: pd.DataFrame, loss: float, info: ModelInfo
    ) -> dict:
        raise NotImplementedError

    def example_losses(self, output, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) each example's summed loss over its :meth:`loss_weight` terms (labels' -100
        are no term): ``logits (B, [T,] V)`` against ``labels (B, [T])``."""
        logits, labels = output.logits.float(), batch["labels"]
        per_term = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none"
        )  # ignore_index -100 gives those terms 0
        return per_term.reshape(labels.shape).reshape(len(labels), -1).sum(-1)

    def example_terms(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) how many loss terms each example has (the sum over the batch: :meth:`loss_weight`)."""
        return (batch["labels"] != -100).reshape(len(batch["labels"]), -1).sum(-1)

    def evaluate(
        self, model, tokenizer, test: pd.DataFrame, info: ModelInfo, batch_size: int
    ) -> dict:
        """Task metrics on ``test``: the loss averaged over its terms, then the task's own."""
        return self.evaluate_examples(model, tokenizer, test, info, batch_size)[0]

    @torch.no_grad()
    def evaluate_examples(
        self, model, tokenizer, test: pd.DataFrame, info: ModelInfo, batch_size: int
    ) -> tuple[dict, pd.DataFrame]:
        """:meth:`evaluate`'s metrics, and one row per test example (``id``, ``loss_sum``,
        ``loss_terms`` and the task's own outcome columns), in ``test``'s order."""
        data = self.encode(test, tokenizer, info.max_length)
        batches = DataLoader(data, batch_size=batch_size, collate_fn=self.collate(tokenizer, model))
        losses, weights, state = [], [], {}
        loss_sums, terms = [], []
        for batch in tqdm(batches, desc=f"evaluate {info.variant}", leave=False):
            batch = {k: v.to(model.device) for k, v in batch.items()}
            output = model(**batch)
            losses.append(float(output.loss))
            weights.append(self.loss_weight(batch))
            loss_sums.append(self.example_losses(output, batch).cpu())
            terms.append(self.example_terms(batch).cpu())
            self.observe(state, output, batch)
        metrics = self.finish(state, test, float(np.average(losses, weights=weights)), info)
        examples = pd.DataFrame(
            {
                "id": test["id"].to_numpy() if "id" in test else np.arange(len(test)).astype(str),
                "loss_sum": torch.cat(loss_sums).double().numpy(),
                "loss_terms": torch.cat(terms).numpy(),
                **self.outcomes(state, test),
            }
        )
        return metrics, examples

    def outcomes(self, state: dict[str, list], test: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per-example outcome columns beyond the loss (default: none)."""
        return {}

    # -- attention -----------------------------------------------------------------------
    def attention_batch(
        self, model, tokenizer, batch: dict[str, torch.Tensor], kinds: tuple[str, ...]
    ) -> AttentionBatch:
        """Run one padded batch with ``output_attentions`` (single-stack models by default)."""
        output = model(**with_positions(model, batch), output_attentions=True)
        positions = {"encoder": mask_positions(batch["attention_mask"])}
        return AttentionBatch({kinds[0]: output.attentions}, positions)
