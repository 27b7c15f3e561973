"""Attention mechanisms as configuration: one documented dataclass per variant.

A mechanism says how keys and values are shared between heads and which keys a query
may see. It is applied at run time by :mod:`attention_lab.attention.interface`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from attention_lab.errors import ConfigError
from attention_lab.parameters.mechanisms import mechanism_config

CONFIG_KEY = "attention_lab_mechanism"  # where a saved model's config records its mechanism


@dataclass(frozen=True)
class MechanismSpec:
    """How self-attention is computed.

    Attributes:
        name: ``mha`` (the checkpoint's own attention), ``gqa`` (``kv_heads`` key/value
            heads shared by groups of query heads), ``mqa`` (one key/value head) or
            ``sliding_window`` (each query sees keys within ``window`` positions:
            a symmetric band ``|i - j| <= window`` for encoders, a left window
            ``0 <= i - j <= window`` for causal decoders).
        kv_heads: number of key/value heads for ``gqa`` (``mqa`` forces 1).
        window: band half-width for ``sliding_window``.
        layers: layer indices the mechanism applies to; ``None`` means every layer.
        sink_tokens: with ``sliding_window``, the first ``sink_tokens`` keys stay visible to
            every query (StreamingLLM, Xiao et al., 2023).
        pooling: with ``gqa``/``mqa``, ``mean`` averages the grouped heads' projections
            (Ainslie et al., 2023); ``calibrated`` fits the shared heads to activations on a
            few training texts (:mod:`attention_lab.attention.calibrated`).
        rank: with ``mla`` (multi-head latent attention by the MHA2MLA recipe, Ji et al.,
            2025), the size of the latent that keys and values share.
        rope_pairs: with ``mla``, how many RoPE frequency pairs each key/value head keeps
            (chosen by query and key 2-norm on calibration texts); the rest lose RoPE.

    ``gated`` adds a head-specific sigmoid gate on each head's output (Qiu et al., 2025).
    ``mla``, ``gated`` and calibrated pooling change a checkpoint in ways its base cannot
    rebuild, so their models are stored whole (:attr:`converts_weights`).
    """

    name: str = "mha"
    kv_heads: int | None = None
    window: int | None = None
    layers: tuple[int, ...] | None = None
    sink_tokens: int = 0
    pooling: str = "mean"
    rank: int | None = None
    rope_pairs: int | None = None

    @property
    def target_kv_heads(self) -> int | None:
        """Key/value heads this mechanism asks for, or ``None`` to keep the checkpoint's."""
        if self.name == "mqa":
            return 1
        if self.name == "gqa":
            return self.kv_heads
        return None

    @property
    def converts_weights(self) -> bool:
        """Whether the mechanism rewrites the checkpoint (fits new projections or adds modules)."""
        return self.name in ("mla", "gated") or self.pooling == "calibrated"

    def applies_to(self, layer: int) -> bool:
        return self.layers is None or layer in self.layers

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layers"] = list(self.layers) if self.layers is not None else None
        for key, default in (
            ("sink_tokens", 0),
            ("pooling", "mean"),
            ("rank", None),
            ("rope_pairs", None),
        ):
            if data[key] == default:
                del data[key]  # the record of a plain mechanism stays as it was
        return data

    @classmethod
    def from_config(cls, raw: Any, where: str = "mechanism") -> MechanismSpec:
        """Parse ``"mha"`` or ``{name: gqa, kv_heads: 4, layers: [0, 1]}``, checking each key
        (:mod:`attention_lab.parameters.mechanisms`, one model per mechanism)."""
        config = mechanism_config(raw, where)
        layers = None if config.layers is None else tuple(sorted(set(config.layers)))
        pooling = getattr(config, "pooling", "mean")
        if layers is not None and (config.name in ("mla", "gated") or pooling == "calibrated"):
            raise ConfigError(
                f"{where}.layers: {config.name} with {pooling} pooling converts every layer; "
                "remove layers."
                if pooling == "calibrated"
                else f"{where}.layers: {config.name} converts every layer; remove layers."
            )
        return cls(
            name=config.name,
            kv_heads=getattr(config, "kv_heads", None),
            window=getattr(config, "window", None),
            layers=layers,
            sink_tokens=getattr(config, "sink_tokens", 0),
            pooling=pooling,
            rank=getattr(config, "rank", None),
            rope_pairs=getattr(config, "rope_pairs", None),
        )

    def check_against(self, num_layers: int, num_heads: int, where: str = "mechanism") -> None:
        """Check the spec fits a stack of ``num_layers`` layers of ``num_heads`` query heads."""
        kv = self.target_kv_heads
        if kv is not None and num_heads % kv != 0:
            divisors = [d for d in range(1, num_heads + 1) if num_heads % d == 0]
            raise ConfigError(
                f"{where}.kv_heads: {kv} does not divide the model's {num_heads} query heads; "
                f"allowed: {divisors}."
            )
        if self.layers is not None and max(self.layers) >= num_layers:
            raise ConfigError(
                f"{where}.layers: {list(self.layers)} reaches past the model's {num_layers} layers "
                f"(valid indices 0..{num_layers - 1})."
            )
