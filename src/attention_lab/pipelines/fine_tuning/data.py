"""Tokenised torch datasets for each task, built from the ``corpus`` contract."""

from __future__ import annotations

import pandas as pd
import torch
from torch.utils.data import Dataset


class EncodedDataset(Dataset):
    """A list of feature dicts (``input_ids``, ``attention_mask``, ``labels``), padded by the collator."""

    def __init__(self, features: list[dict[str, list[int] | int]]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, list[int] | int]:
        return self.features[i]


def encode(frame: pd.DataFrame, tokenizer, task: str, max_length: int) -> EncodedDataset:
    enc = tokenizer(list(frame["text"]), truncation=True, max_length=max_length)
    features = []
    for i in range(len(frame)):
        item = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i]}
        if task == "classification":
            item["labels"] = int(frame["label"].iloc[i])
        elif task == "seq2seq":  # generate the label name (cross-attention shows what it reads)
            item["labels"] = tokenizer(frame["label_name"].iloc[i], truncation=True, max_length=8)[
                "input_ids"
            ]
        features.append(item)
    return EncodedDataset(features)


def collate(tokenizer, task: str):
    """Pads inputs; LM labels are the inputs with padding ignored (-100)."""

    def _collate(batch: list[dict]) -> dict[str, torch.Tensor]:
        labels = [b["labels"] for b in batch] if "labels" in batch[0] else None
        out = tokenizer.pad(
            [{k: v for k, v in b.items() if k != "labels"} for b in batch], return_tensors="pt"
        )
        if task == "causal_lm":
            out["labels"] = out["input_ids"].masked_fill(out["attention_mask"] == 0, -100)
        elif task == "seq2seq":
            width = max(len(x) for x in labels)
            out["labels"] = torch.tensor([x + [-100] * (width - len(x)) for x in labels])
        elif labels is not None:
            out["labels"] = torch.tensor(labels)
        return out

    return _collate
