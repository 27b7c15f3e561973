"""Attention mechanisms as configuration: one documented dataclass per variant.

A mechanism says how keys and values are shared between heads and which keys a query
may see. It is applied at run time by :mod:`attention_lab.attention.interface`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from attention_lab.errors import ConfigError

MECHANISMS = ("mha", "gqa", "mqa", "sliding_window")
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
    """

    name: str = "mha"
    kv_heads: int | None = None
    window: int | None = None
    layers: tuple[int, ...] | None = None
    sink_tokens: int = 0

    @property
    def target_kv_heads(self) -> int | None:
        """Key/value heads this mechanism asks for, or ``None`` to keep the checkpoint's."""
        if self.name == "mqa":
            return 1
        if self.name == "gqa":
            return self.kv_heads
        return None

    def applies_to(self, layer: int) -> bool:
        return self.layers is None or layer in self.layers

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layers"] = list(self.layers) if self.layers is not None else None
        if not self.sink_tokens:
            del data["sink_tokens"]  # the record of a plain mechanism stays as it was
        return data

    @classmethod
    def from_config(cls, raw: Any, where: str = "mechanism") -> MechanismSpec:
        """Parse ``"mha"`` or ``{name: gqa, kv_heads: 4, layers: [0, 1]}``, checking each key."""
        if raw is None:
            raw = {"name": "mha"}
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a name or a mapping, got {raw!r}.")
        unknown = set(raw) - {"name", "kv_heads", "window", "layers", "sink_tokens"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {sorted(unknown)}; "
                "allowed: name, kv_heads, window, layers, sink_tokens."
            )
        name = raw.get("name", "mha")
        if name not in MECHANISMS:
            raise ConfigError(
                f"{where}.name: unknown mechanism {name!r}; allowed: {', '.join(MECHANISMS)}."
            )
        kv_heads = _owned_integer(raw, "kv_heads", name, "gqa", 1, where)
        window = _owned_integer(raw, "window", name, "sliding_window", 1, where)
        sink_tokens = _owned_integer(raw, "sink_tokens", name, "sliding_window", 0, where) or 0
        layers = raw.get("layers")
        if layers is not None:
            if not isinstance(layers, list | tuple) or not all(
                isinstance(i, int) and i >= 0 for i in layers
            ):
                raise ConfigError(
                    f"{where}.layers: expected a list of layer indices >= 0, got {layers!r}."
                )
            layers = tuple(sorted(set(layers)))
        return cls(name, kv_heads, window, layers, sink_tokens)

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


def _owned_integer(
    raw: dict[str, Any], key: str, name: str, owner: str, minimum: int, where: str
) -> int | None:
    """``raw[key]``, a setting only mechanism ``owner`` takes: required there (unless its
    minimum is 0, meaning optional), refused elsewhere."""
    value = raw.get(key)
    if name != owner:
        if value is not None and (minimum > 0 or value):  # an optional count may say 0
            raise ConfigError(f"{where}.{key}: only {owner} takes {key} (mechanism is {name!r}).")
        return None
    if value is None and minimum == 0:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{where}.{key}: {owner} needs an integer >= {minimum}, got {value!r}.")
    return value
