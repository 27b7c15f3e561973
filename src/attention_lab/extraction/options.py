"""Extraction options, checked against the model's shape before any work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attention_lab.errors import ConfigError
from attention_lab.kinds import norm_kind
from attention_lab.models.shape import ModelShape


@dataclass(frozen=True)
class ExtractionOptions:
    """What to extract: stored layers and heads, length, batch size and grid precision.

    ``layers`` lists the stored layer indices (every layer of the deepest stack when
    ``all_layers``: each stack then keeps all of its own, even where an encoder-decoder's
    stacks differ in depth); a subset must exist in every stack.
    """

    layers: list[int]
    heads: list[int]
    all_layers: bool = True
    all_heads: bool = True
    batch_size: int = 16
    max_length: int = 128
    precision_bits: int | None = 11  # None: exact maps
    norms: bool = False  # also store norm-based attention (Kobayashi et al., 2020) per kind
    shard: tuple[int, int] | None = None  # (index, count): this job's share of the probe set

    def shard_rows(self, n: int) -> range:
        """The probe-set rows of this shard: a contiguous block, shard 0 first."""
        if self.shard is None:
            return range(n)
        index, count = self.shard
        return range(index * n // count, (index + 1) * n // count)

    def kinds(self, shape: ModelShape) -> list[str]:
        """The stored map kinds: the model's own, then their ``_norm`` kinds when asked."""
        return [*shape.kinds, *([norm_kind(k) for k in shape.kinds] if self.norms else [])]

    @classmethod
    def parse(cls, params: dict[str, Any], shape: ModelShape) -> ExtractionOptions:
        shallowest = min(shape.num_layers.values())
        layers = sorted(params.get("layers") or range(max(shape.num_layers.values())))
        heads = sorted(params.get("heads") or range(shape.num_heads))
        if params.get("layers") and any(not 0 <= i < shallowest for i in layers):
            raise ConfigError(
                f"attention_extraction.layers: {layers}; valid indices are 0..{shallowest - 1}"
                + (" (in every stack)" if len(set(shape.num_layers.values())) > 1 else "")
                + "."
            )
        if any(not 0 <= h < shape.num_heads for h in heads):
            raise ConfigError(
                f"attention_extraction.heads: {heads}; valid indices are 0..{shape.num_heads - 1}."
            )
        bits = params.get("precision_bits", cls.precision_bits)
        if bits is not None and (not isinstance(bits, int) or not 8 <= bits <= 23):
            raise ConfigError(
                f"attention_extraction.precision_bits: {bits!r}; allowed: null (exact) or an integer 8..23."
            )
        norms = params.get("norms", cls.norms)
        if not isinstance(norms, bool):
            raise ConfigError(f"attention_extraction.norms: expected true or false, got {norms!r}.")
        return cls(
            shard=_shard(params.get("shard")),
            norms=norms,
            layers=layers,
            heads=heads,
            all_layers=not params.get("layers")
            or layers == list(range(shallowest)) == list(range(max(shape.num_layers.values()))),
            all_heads=not params.get("heads") or heads == list(range(shape.num_heads)),
            batch_size=int(params.get("batch_size", cls.batch_size)),
            max_length=int(params.get("max_length", cls.max_length)),
            precision_bits=bits,
        )


def _shard(raw: Any) -> tuple[int, int] | None:
    if raw is None:
        return None
    ok = isinstance(raw, dict) and set(raw) == {"index", "count"}
    index, count = (raw.get("index"), raw.get("count")) if ok else (None, None)
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) for v in (index, count)):
        raise ConfigError(
            f"attention_extraction.shard: {raw!r}; expected {{index: i, count: n}} with integers."
        )
    if not 0 <= index < count:
        raise ConfigError(f"attention_extraction.shard: index {index} must be in 0..{count - 1}.")
    return index, count
