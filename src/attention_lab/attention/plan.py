"""What a mechanism does inside one attention layer, as a transformation of its inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def pool_kv(hidden: torch.Tensor, groups: int) -> torch.Tensor:
    """Mean-pool contiguous groups of key/value heads, keeping the head count.

    (B, Hkv, T, d) -> (B, Hkv, T, d) where heads of one group hold the group's mean, so the
    family's own ``repeat_kv`` still expands to the query heads it expects. This is the
    uptraining recipe of Ainslie et al. (2023): keys and values are linear in the projection
    weights (and RoPE rotates every head alike), so pooling projected heads equals projecting
    with pooled weights.
    """
    batch, heads, length, dim = hidden.shape  # (B, Hkv, T, d)
    if groups >= heads:
        return hidden
    pooled = hidden.view(batch, groups, heads // groups, length, dim).mean(dim=2)  # (B, G, T, d)
    return pooled.repeat_interleave(heads // groups, dim=1)  # (B, Hkv, T, d)


def band(
    q_len: int, k_len: int, window: int, causal: bool, sink_tokens: int, device
) -> torch.Tensor:
    """Boolean (Tq, Tk), True where query i may see key j.

    Queries are the last ``q_len`` of ``k_len`` positions (as in cached decoding). Encoders:
    ``|i - j| <= window``; causal decoders: ``0 <= i - j <= window`` (the causal mask itself
    still comes from the model). The first ``sink_tokens`` keys stay visible (StreamingLLM).
    """
    q_pos = torch.arange(k_len - q_len, k_len, device=device)[:, None]  # (Tq, 1)
    k_pos = torch.arange(k_len, device=device)[None, :]  # (1, Tk)
    distance = q_pos - k_pos  # (Tq, Tk)
    allowed = (distance >= 0) & (distance <= window) if causal else distance.abs() <= window
    return allowed | (k_pos < sink_tokens)


@dataclass(frozen=True)
class LayerPlan:
    """One layer's mechanism: pool key/value heads into ``kv_groups``, restrict to a band, or both."""

    kv_groups: int | None = None  # key/value groups after pooling (None: keep the checkpoint's)
    window: int | None = None  # band half-width (None: full attention)
    causal: bool = False  # the layer's own masking, as observed by discovery
    sink_tokens: int = 0  # keys always visible with a window

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden if self.kv_groups is None else pool_kv(hidden, self.kv_groups)

    def restrict(self, mask: torch.Tensor | None, query: torch.Tensor) -> torch.Tensor | None:
        """Add the band to an additive mask (B|1, 1, Tq, Tk); builds one when the model passed None."""
        if self.window is None:
            return mask
        q_len = query.shape[-2]
        k_len = q_len if mask is None else mask.shape[-1]
        if mask is None:
            mask = torch.zeros(1, 1, q_len, k_len, dtype=query.dtype, device=query.device)
        allowed = band(q_len, k_len, self.window, self.causal, 0, query.device)  # (Tq, Tk)
        if self.sink_tokens:
            allowed = allowed | self._sinks(mask)  # (B|1, 1, Tq, Tk)
        # where (not +): adding the dtype's minimum twice overflows to -inf and NaN rows
        return mask.masked_fill(~allowed, torch.finfo(mask.dtype).min)

    def _sinks(self, mask: torch.Tensor) -> torch.Tensor:
        """(B|1, 1, 1, Tk): True on each row's first ``sink_tokens`` *real* keys.

        Counted from the first key the mask lets the last query see, so left padding shifts
        the sinks with the text; the mask itself still hides padding and the future.
        """
        real = mask[..., -1:, :] > torch.finfo(mask.dtype).min / 2  # (B|1, 1, 1, Tk)
        first = real.int().argmax(-1, keepdim=True)  # (B|1, 1, 1, 1)
        k_pos = torch.arange(mask.shape[-1], device=mask.device)  # (Tk,)
        return (k_pos >= first) & (k_pos < first + self.sink_tokens)
