"""A store's root metadata as one typed object: what was extracted, from which model, how.

Extraction fills the first group of fields (:func:`~attention_lab.extraction.run.store_metadata`);
the writer adds the format's own fields when the store is complete. :meth:`StoreMeta.to_attrs`
writes them in the order format 5 has always used, so a store's ``zarr.json`` is unchanged;
:meth:`StoreMeta.from_attrs` reads format 4 and 5 stores, whose older members may lack a
field (then its default below holds) and keep keys this version does not know in ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from attention_lab.defaults import SEED
from attention_lab.kinds import INTERFACE_PATH, OUTPUT_ATTENTIONS_PATH, AttentionKind


@dataclass(frozen=True)
class ShardInfo:
    """Which block of the probe set a sharded extraction wrote."""

    index: int
    count: int
    start: int = 0  # the block's first row in the whole probe set
    probes: int | None = None  # the whole set's size: shards of one run agree on it


@dataclass(frozen=True)
class StoreMeta:
    # -- written by extraction, in this order ---------------------------------------------
    model_id: str | None = None
    variant: str | None = None
    seed: int | str = SEED  # the job's training seed ("mean" for the dashboard's seed mean)
    task: str | None = None
    method: str | None = None
    mechanism: dict[str, Any] | None = None  # MechanismSpec.to_dict()
    kinds: list[str] = field(default_factory=list)  # encoder | decoder | cross (+ _norm)
    num_layers: int | None = None
    layers: list[int] = field(default_factory=list)  # the model's layer index of each stored one
    heads: list[int] = field(default_factory=list)  # the model's head index of each stored one
    num_heads: int | None = None
    num_kv_heads: int | None = None
    kv_group: list[int] = field(default_factory=list)  # stored head -> key/value head
    causal: dict[str, bool] = field(default_factory=dict)  # per stored kind
    norms: bool = False
    padding_side: str = "right"
    attention_path: str = INTERFACE_PATH  # or OUTPUT_ATTENTIONS_PATH
    precision_bits: int | None = None  # the extraction's grid, 2**-bits; None: exact
    label_names: list[str] | None = None
    attention_lab_version: str | None = None
    shard: ShardInfo | None = None
    # -- written by the writer when the store is complete --------------------------------
    format: str | None = None
    format_version: int | None = None
    dtype: str = "float16"
    compact: bool = False
    sparse_mass: float | None = None
    example_ids: list[str] = field(default_factory=list)
    num_examples: int = 0
    complete: bool = False
    # keys this version does not know, kept so that rewriting loses nothing
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> StoreMeta:
        """The metadata of a store's root attributes (or extraction's dict of them)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {key: value for key, value in attrs.items() if key in known}
        if isinstance(values.get("shard"), Mapping):
            values["shard"] = ShardInfo(**values["shard"])
        extra = {key: value for key, value in attrs.items() if key not in known}
        return cls(**values, extra=extra)

    @classmethod
    def of(cls, meta: StoreMeta | Mapping[str, Any]) -> StoreMeta:
        return meta if isinstance(meta, StoreMeta) else cls.from_attrs(meta)

    def extraction_attrs(self) -> dict[str, Any]:
        """What extraction wrote, as JSON-ready attributes in format 5's order."""
        attrs: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "shard":
                if self.shard is not None:  # unsharded stores have no shard key
                    attrs["shard"] = vars(self.shard).copy()
                break
            attrs[f.name] = getattr(self, f.name)
        return {**attrs, **self.extra}

    # -- questions every reader asks ------------------------------------------------------
    def is_causal(self, kind: str) -> bool:
        return bool(self.causal.get(kind, False))

    @property
    def base_kinds(self) -> list[str]:
        """The stored kinds of attention weights (``encoder``, not ``encoder_norm``)."""
        return [kind for kind in self.kinds if not AttentionKind.parse(kind).norms]

    @property
    def has_norms(self) -> bool:
        return any(AttentionKind.parse(kind).norms for kind in self.kinds)

    @property
    def through_interface(self) -> bool:
        """Whether the maps came through the attention interface, not ``output_attentions``."""
        return self.attention_path != OUTPUT_ATTENTIONS_PATH

    def stored_layer(self, layer: int) -> int:
        """Where the model's layer ``layer`` sits among the stored layers."""
        return self.layers.index(layer)

    def stored_head(self, head: int) -> int:
        return self.heads.index(head)


def token_sides(example: Mapping[str, Any], kind: str) -> tuple[Mapping, Mapping]:
    """(query side, key side) of one example's token metadata (``tokens``, ``token_ids``,
    ``special_mask``) for an attention kind or its norm twin: an encoder-decoder's example
    holds its decoder tokens under ``decoder``; everything else is the example's own tokens."""
    sides = {"encoder": example, "decoder": example.get("decoder", example)}
    parsed = AttentionKind.parse(kind)
    return sides[parsed.query_side], sides[parsed.key_side]
