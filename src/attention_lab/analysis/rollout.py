"""Attention rollout (Abnar & Zuidema, 2020), cheap enough to compute on demand per example."""

from __future__ import annotations

import numpy as np


def attention_rollout(weights: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """[L, H, T, T] -> [L, T, T]: rollout through layers 0..l for every l.

    Per layer the heads are averaged, the residual connection is modelled as
    ``0.5 A + 0.5 I`` and rows re-normalised; rollout multiplies these from the bottom up:
    ``R_l = Â_l Â_{l-1} ... Â_0``.
    """
    mean = weights.astype(np.float64).mean(axis=1)  # (L, T, T)
    eye = np.eye(mean.shape[-1])
    out = np.empty_like(mean)
    current = eye
    for layer, attn in enumerate(mean):
        aug = (1 - residual) * attn + residual * eye
        aug /= aug.sum(axis=-1, keepdims=True)
        current = aug @ current
        out[layer] = current
    return out


def token_relevance(weights: np.ndarray, causal: bool = False) -> np.ndarray:
    """[L, T]: how much each input token flows into the summary position after each layer.

    The summary position is the first token ([CLS]) for encoders and the last token for
    causal decoders (where their classification/next-token head reads).
    """
    rollout = attention_rollout(weights)
    return rollout[:, -1 if causal else 0, :]
