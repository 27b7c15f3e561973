"""Kedro datasets of the project: the attention store and the model directory."""

from attention_lab.datasets.attention_store import AttentionStoreDataset
from attention_lab.datasets.model_directory import ModelDirectoryDataset

__all__ = ["AttentionStoreDataset", "ModelDirectoryDataset"]
