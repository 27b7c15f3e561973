"""A tokenised torch dataset built from the ``corpus`` contract (see :mod:`attention_lab.tasks`)."""

from __future__ import annotations

from torch.utils.data import Dataset


class EncodedDataset(Dataset):
    """A list of feature dicts (``input_ids``, ``attention_mask``, ``labels``), padded by the collator."""

    def __init__(self, features: list[dict[str, list[int] | int]]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, list[int] | int]:
        return self.features[i]
