"""Multi-head latent attention from a trained checkpoint, by the MHA2MLA recipe (Ji et al., 2025).

1. **Partial RoPE, by 2-norm.** For each key/value head, each RoPE frequency pair is scored by
   the mean 2-norm of the keys on that pair times the mean 2-norm of the queries that read it
   (summed over the head's query group), on calibration texts. The ``rope_pairs`` best pairs
   keep RoPE; the others lose it, in keys and queries alike.
2. **Joint SVD.** The key rows without RoPE and the value rows of every key/value head are
   stacked and factored at rank ``rank``: ``[W_k_nope; W_v] ~ U_r S_r V_r^T``. The latent
   ``c = x (S_r^1/2 V_r^T)^T`` is what the cache holds, with the rotated kept pairs; keys and
   values are ``c`` times ``U_r S_r^1/2``'s rows.

The cache then holds ``Hkv * 2 * rope_pairs + rank`` numbers per position instead of
``2 * Hkv * d``. With every pair kept and full rank the model is unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from attention_lab.attention.calibrated import require_full_rope
from attention_lab.attention.calibration import attention_inputs, self_attention_modules
from attention_lab.attention.conversion import head_dim_of
from attention_lab.attention.converted import LatentKV, converted, convertible, record_structure
from attention_lab.attention.discovery import LAYERS_ATTR
from attention_lab.errors import ConfigError


def pair_scores(x: torch.Tensor, module: nn.Module, kv_heads: int, d: int) -> torch.Tensor:
    """(Hkv, d/2): mean key 2-norm times summed mean query 2-norm, per head and pair."""
    half = d // 2

    def norms(projection: nn.Linear, heads: int) -> torch.Tensor:
        states = projection(x).view(len(x), heads, d)  # (N, heads, d)
        return torch.hypot(states[..., :half], states[..., half:]).mean(0)  # (heads, d/2)

    queries = norms(module.q_proj, module.q_proj.out_features // d)
    keys = norms(module.k_proj, kv_heads)
    return keys * queries.view(kv_heads, -1, half).sum(1)


def storage_order(scores: torch.Tensor, rope_pairs: int) -> torch.Tensor:
    """(Hkv, d): per head, the kept pairs' first halves, their partners, then the other dims."""
    heads, half = scores.shape
    kept = scores.topk(rope_pairs, dim=-1).indices.sort(-1).values  # (Hkv, P)
    rows = []
    for h in range(heads):
        dropped = [j for j in range(half) if j not in set(kept[h].tolist())]
        first = kept[h].tolist()
        rows.append(first + [j + half for j in first] + dropped + [j + half for j in dropped])
    return torch.tensor(rows)


def install_latent(
    module: nn.Module, order, rope_pairs: int, rank: int, kv_heads: int, d: int
) -> LatentKV:
    """Swap ``module``'s k_proj/v_proj for an (unfilled) :class:`LatentKV`; returns it."""
    bias = module.k_proj.bias is not None
    weight = module.q_proj.weight
    latent = LatentKV(module.k_proj.in_features, kv_heads, d, rank, rope_pairs, order, bias=bias)
    latent = latent.to(device=weight.device, dtype=weight.dtype)
    converted(module)
    del module.k_proj, module.v_proj
    module.latent = latent
    return latent


@torch.no_grad()
def to_latent(
    module: nn.Module, order: torch.Tensor, rope_pairs: int, rank: int, kv_heads: int, d: int
) -> None:
    """Replace ``module``'s k_proj/v_proj by a :class:`LatentKV` of ``rank`` whose heads keep
    RoPE on the first ``rope_pairs`` pairs of ``order`` (Hkv, d); in place."""
    rope_dims = 2 * rope_pairs
    k_weight = module.k_proj.weight.double().view(kv_heads, d, -1)  # (Hkv, d, in)
    rows = torch.gather(k_weight, 1, order[..., None].expand(-1, -1, k_weight.shape[-1]))
    rope, nope = rows[:, :rope_dims], rows[:, rope_dims:]  # stored order
    joint = torch.cat([nope.reshape(-1, nope.shape[-1]), module.v_proj.weight.double()])
    limit = min(joint.shape)
    if rank > limit:
        raise ConfigError(
            f"mechanism mla: rank {rank} exceeds what the keys and values span ({limit}); "
            f"pick a rank <= {limit}."
        )
    u, s, vt = torch.linalg.svd(joint, full_matrices=False)
    root = s[:rank].sqrt()
    down, up = root[:, None] * vt[:rank], u[:, :rank] * root  # (rank, in), (rows, rank)
    k_bias = module.k_proj.bias
    k_bias = k_bias.view(kv_heads, d).gather(1, order) if k_bias is not None else None
    v_bias = module.v_proj.bias
    latent = install_latent(module, order, rope_pairs, rank, kv_heads, d)
    split = nope.shape[0] * nope.shape[1]
    latent.k_rope.weight.copy_(rope.reshape(-1, rope.shape[-1]))
    latent.kv_down.weight.copy_(down)
    latent.k_up.weight.copy_(up[:split])
    latent.v_up.weight.copy_(up[split:])
    if k_bias is not None:
        latent.k_rope.bias.copy_(k_bias[:, :rope_dims].reshape(-1))
        latent.k_up.bias.copy_(k_bias[:, rope_dims:].reshape(-1))
        latent.v_up.bias.copy_(v_bias)


@torch.no_grad()
def convert_to_latent(
    model: nn.Module, rank: int, rope_pairs: int, calibration: torch.Tensor
) -> nn.Module:
    """Every self-attention layer to multi-head latent attention, RoPE pairs chosen on the
    token ids ``calibration`` (B, T); in place. The choice is recorded in the config."""
    modules = self_attention_modules(model)
    convertible(model, modules, "mla")
    require_full_rope(model, "mechanism mla")
    config = model.config.get_text_config()
    kv_heads, d = config.num_key_value_heads, head_dim_of(config)
    if rope_pairs > d // 2:
        raise ConfigError(
            f"mechanism mla: rope_pairs {rope_pairs} exceeds the {d // 2} pairs of a {d}-dim head."
        )
    inputs = attention_inputs(model, calibration)
    orders = []
    for module in modules:
        scores = pair_scores(inputs[module].to(module.q_proj.weight), module, kv_heads, d)
        order = storage_order(scores, rope_pairs)
        to_latent(module, order, rope_pairs, rank, kv_heads, d)
        orders.append(order.tolist())
    record_structure(model, "latent", {"rank": rank, "rope_pairs": rope_pairs, "orders": orders})
    setattr(model, LAYERS_ATTR, None)
    return model


def restore_latent(model: nn.Module, record: dict) -> None:
    """Give a freshly loaded base-architecture model the latent modules its record describes
    (their weights are loaded afterwards)."""
    config = model.config.get_text_config()
    kv_heads, d = config.num_key_value_heads, head_dim_of(config)
    for module, order in zip(self_attention_modules(model), record["orders"], strict=True):
        install_latent(module, order, record["rope_pairs"], record["rank"], kv_heads, d)
