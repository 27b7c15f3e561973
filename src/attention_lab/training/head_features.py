"""Head-only training on features computed once.

With ``method: head`` the body of the model is frozen, so every epoch would compute the same
features again. Here one no-grad pass (in eval mode, through the fast attention path, batches
sorted by length) records what the classifier head receives, pooled per example as the model
pools it; the head then trains on those vectors with the same ``Trainer`` settings. A check on
the first batch proves that the head applied to the recorded features gives the model's own
logits; a model whose head cannot be fed this way trains through the frozen model as before.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from attention_lab.attention.fast_path import RELATIVE_TOLERANCE, fast_attention
from attention_lab.tasks.data import EncodedDataset
from attention_lab.training.methods import classifier_head_names

logger = logging.getLogger(__name__)


class HeadUnsupported(Exception):
    """The head's input is not a per-example vector (or not the model's own pooling)."""


class HeadOnFeatures(nn.Module):
    """The model's own head (and the dropout before it) on precomputed features."""

    def __init__(self, head: nn.Module, dropout: nn.Module):
        super().__init__()
        self.head, self.dropout = head, dropout

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        logits = self.head(self.dropout(features))  # (B, num_labels)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


class FeatureDataset(Dataset):
    def __init__(self, features: torch.Tensor, labels: list[int]):
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"features": self.features[i], "labels": self.labels[i]}


def head_of(model: nn.Module) -> tuple[str, nn.Module, nn.Module]:
    """(name, head, dropout before it): ``classifier`` (BERT-style) or ``score`` (decoders)."""
    names = classifier_head_names(model)
    if not names:
        raise HeadUnsupported(f"{type(model).__name__} has no classifier or score head")
    dropout = getattr(model, "dropout", None)
    return (
        names[0],
        getattr(model, names[0]),
        dropout if isinstance(dropout, nn.Dropout) else nn.Identity(),
    )


def _pool(model: nn.Module, name: str, seen: torch.Tensor, input_ids: torch.Tensor):
    """What the head saw, one vector per example: (B, H)."""
    if seen.dim() == 2:
        return seen
    if seen.dim() == 3 and name == "score":
        # transformers' decoder classification pools the last token that is not padding
        pad = model.config.get_text_config().pad_token_id
        not_pad = (input_ids != pad).int() if pad is not None else torch.ones_like(input_ids)
        last = (torch.arange(input_ids.shape[-1], device=seen.device) * not_pad).argmax(-1)
        return seen[torch.arange(len(seen), device=seen.device), last]  # (B, H)
    raise HeadUnsupported(f"the {name} head takes a {seen.dim()}-D input")


def _reproduces(ours: torch.Tensor, logits: torch.Tensor) -> bool:
    scale = max(1.0, float(logits.abs().max()))
    return float((ours - logits).abs().max()) <= RELATIVE_TOLERANCE * scale


@torch.no_grad()
def compute_features(model, data: EncodedDataset, collate, batch_size: int) -> torch.Tensor:
    """(N, H) features the head receives, in ``data``'s order."""
    name, head, dropout = head_of(model)
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    order = sorted(range(len(data)), key=lambda i: len(data[i]["input_ids"]))
    batches = DataLoader([data[i] for i in order], batch_size=batch_size, collate_fn=collate)
    chunks = []
    was_training = model.training
    model.eval()
    try:
        with fast_attention(model):
            for batch in tqdm(batches, desc="head features", leave=False):
                batch = {k: v.to(model.device) for k, v in batch.items() if k != "labels"}
                seen.clear()
                logits = model(**batch).logits  # (B, num_labels)
                pooled = _pool(model, name, seen[-1], batch["input_ids"])  # (B, H)
                if not chunks and not _reproduces(head(dropout(pooled)), logits):
                    raise HeadUnsupported("the head on the recorded features misses the logits")
                chunks.append(pooled.cpu())  # the head's own dtype
    finally:
        hook.remove()
        model.train(was_training)
    features = torch.empty(len(data), chunks[0].shape[-1], dtype=chunks[0].dtype)
    features[order] = torch.cat(chunks)
    return features


def feature_dataset(model, data: EncodedDataset, collate, batch_size: int):
    """(HeadOnFeatures, FeatureDataset) for ``data``, or None where the head cannot be fed."""
    try:
        features = compute_features(model, data, collate, batch_size)
    except HeadUnsupported as why:
        logger.info("Training the head through the frozen model: %s.", why)
        return None
    _, head, dropout = head_of(model)
    labels = [int(example["labels"]) for example in data]
    return HeadOnFeatures(head, dropout), FeatureDataset(features, labels)
