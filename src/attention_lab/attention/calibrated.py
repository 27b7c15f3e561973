"""Calibrated key/value pooling: fewer key/value heads fitted to activations, without training.

Mean-pooling the projections of grouped heads (Ainslie et al., 2023) is the least-squares fit
of one shared head to the heads it replaces. It ignores that each head may be reparametrised
first without changing the model:

- **Keys.** RoPE turns each frequency pair ``(j, j + d/2)`` of a head into one complex number
  and multiplies it by ``e^{i theta t}``. Multiplying a head's key pair by a complex constant
  ``c`` and its queries' pair by ``conj(1/c)`` leaves every logit ``Re(q conj(k))`` unchanged
  and commutes with RoPE. So for each pair, the grouped heads' keys ``z_g`` (N complex values
  over the calibration tokens) are replaced by the best rank-1 fit ``z_g ~ c_g s``: ``s`` is the
  shared key, ``c_g`` goes into the queries of head ``g``'s group. Heads are weighted by the
  energy their queries put on that pair, since a key error counts as much as the queries that
  read it.
- **Values.** A value head reaches the output only through its queries' slices of ``o_proj``,
  so any invertible map on it can be undone there. The grouped heads' values, whitened by
  ``o_proj``'s Gram matrix (which weighs an error by what it does to the output), are replaced
  by their best rank-``d`` joint fit (an SVD); ``o_proj`` absorbs each head's reconstruction.

Both fits need only the layer's input activations on a few calibration texts. With no pooling
(each group one head) both are exact reparametrisations (``tests/attention/test_conversions.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from attention_lab.attention.calibration import attention_inputs, self_attention_modules
from attention_lab.attention.conversion import head_dim_of, set_kv_heads, supports_native_kv_heads
from attention_lab.errors import ConfigError


def require_full_rope(model: nn.Module, what: str) -> None:
    """Refuse a model whose keys are not plain RoPE over the whole head (a partial rotary
    factor, or a norm on each head's keys, breaks the pairwise algebra the fits rely on)."""
    config = model.config.get_text_config()
    partial = getattr(config, "partial_rotary_factor", 1.0) or 1.0
    normed = any(hasattr(m, "k_norm") for m in self_attention_modules(model))
    if partial != 1.0 or normed:
        raise ConfigError(
            f"{what}: {type(model).__name__} "
            + (
                "rotates only part of each head"
                if partial != 1.0
                else "normalises each head's keys"
            )
            + "; the conversion needs RoPE over whole heads and linear keys (Llama, Mistral, Qwen2)."
        )


def _pairs(weight: torch.Tensor, heads: int, head_dim: int) -> torch.Tensor:
    """Projection rows (heads * d, in) as complex rows per RoPE pair: (heads, d/2, in)."""
    rows = weight.view(heads, head_dim, -1)
    half = head_dim // 2
    return torch.complex(rows[:, :half], rows[:, half:])  # pair j = dims (j, j + d/2)


def _unpairs(pairs: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_pairs`: (heads, d/2, in) complex -> (heads * d, in) real."""
    rows = torch.cat([pairs.real, pairs.imag], dim=1)  # (heads, d, in)
    return rows.reshape(-1, rows.shape[-1])


def _with_bias(linear: nn.Linear) -> torch.Tensor:
    """(out, in [+1]) float64: the weight, with the bias as a last column when there is one."""
    weight = linear.weight.detach().double()
    if linear.bias is None:
        return weight
    return torch.cat([weight, linear.bias.detach().double()[:, None]], dim=1)


def _store(linear: nn.Linear, weight: torch.Tensor) -> nn.Linear:
    """A Linear holding ``weight`` (out, in [+1]) split back into weight and bias."""
    has_bias = linear.bias is not None
    new = nn.Linear(linear.in_features, weight.shape[0], bias=has_bias)
    new = new.to(device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight[:, : linear.in_features])
        if has_bias:
            new.bias.copy_(weight[:, -1])
    return new


def _fit_keys(w_k, w_q, second, kv_heads, target, q_per_kv, d):
    """Shared key rows (target * d, in) and the query rows (Hq * d, in) that read them.

    ``second``: the inputs' second moment (in, in); the query energy on pair ``j`` of head
    ``h`` is ``a^H second a`` for its complex row ``a``.
    """
    keys = _pairs(w_k, kv_heads, d)  # (Hkv, d/2, in)
    queries = _pairs(w_q, kv_heads * q_per_kv, d)  # (Hq, d/2, in)
    second_c = second.to(keys.dtype)
    energy = torch.einsum("hpi,ij,hpj->hp", queries.conj(), second_c, queries).real  # (Hq, d/2)
    energy = energy.view(kv_heads, q_per_kv, -1).sum(1).clamp_min(1e-12).sqrt()  # (Hkv, d/2)
    group = kv_heads // target
    shared = torch.empty(target, d // 2, keys.shape[-1], dtype=keys.dtype)
    scale = torch.empty(kv_heads, d // 2, dtype=keys.dtype)  # each query pair's factor
    for t in range(target):
        heads = slice(t * group, (t + 1) * group)
        rows = keys[heads] * energy[heads, :, None]  # (m, d/2, in): weighted key rows
        gram = torch.einsum("mpi,ij,npj->pmn", rows.conj(), second_c, rows)  # (d/2, m, m)
        _, vectors = torch.linalg.eigh(gram)  # ascending: the last column is the top one
        top = vectors[..., -1]  # (d/2, m)
        shared[t] = torch.einsum("pm,mpi->pi", top, rows)  # s = sum_g v_g w_g z_g
        scale[heads] = (top / energy[heads].T).T  # q' = q v_g / w_g keeps Re(q conj(z_g))
    queries = queries * scale.repeat_interleave(q_per_kv, dim=0)[..., None]
    return _unpairs(shared), _unpairs(queries)


def _fit_values(w_v, w_o, second, kv_heads, target, q_per_kv, d):
    """Shared value rows (target * d, in) and o_proj (hidden, Hq * d) that undoes the fit."""
    values = w_v.view(kv_heads, d, -1)  # (Hkv, d, in)
    blocks = w_o.view(w_o.shape[0], kv_heads, q_per_kv, d)  # (hidden, Hkv, per, d)
    group = kv_heads // target
    new_values = []
    new_o = blocks.clone()
    for t in range(target):
        heads = range(t * group, (t + 1) * group)
        roots, inverse_roots, whitened = [], [], []
        for g in heads:
            reads = blocks[:, g].reshape(-1, d)  # (hidden * per, d): the queries' o_proj slices
            evals, evecs = torch.linalg.eigh(reads.T @ reads)  # Gram (d, d)
            evals = evals.clamp_min(evals.max() * 1e-10)
            roots.append(evecs @ torch.diag(evals.sqrt()) @ evecs.T)
            inverse_roots.append(evecs @ torch.diag(evals.rsqrt()) @ evecs.T)
            whitened.append(values[g].T @ roots[-1])  # (in, d): V_g G_g^1/2 = X this
        basis = torch.cat(whitened, dim=1)  # (in, m d)
        _, vectors = torch.linalg.eigh(basis.T @ second @ basis)  # (m d, m d)
        top = vectors[:, -d:]  # (m d, d): the joint fit's directions
        new_values.append((basis @ top).T)  # (d, in): S = X basis top
        for i, g in enumerate(heads):
            # V_g ~ S top_g^T G_g^-1/2, so o_proj's slice becomes W_o,h G_g^-1/2 top_g
            new_o[:, g] = blocks[:, g] @ inverse_roots[i] @ top[i * d : (i + 1) * d]
    return torch.cat(new_values), new_o.reshape(w_o.shape[0], -1)


@torch.no_grad()
def calibrate_kv_heads(model: nn.Module, target: int, calibration: torch.Tensor) -> nn.Module:
    """Rewrite every self-attention layer to ``target`` key/value heads fitted on the token ids
    ``calibration`` (B, T); in place. Query and output projections absorb the fits."""
    if not supports_native_kv_heads(model):
        raise ConfigError(
            f"pooling: calibrated rewrites separate k_proj/v_proj projections and the config's "
            f"num_key_value_heads; {type(model).__name__} has not both (Llama, Mistral, Qwen2 do)."
        )
    require_full_rope(model, "pooling: calibrated")
    config = model.config.get_text_config()
    kv_heads, q_heads = config.num_key_value_heads, config.num_attention_heads
    if target >= kv_heads or kv_heads % target:
        raise ConfigError(
            f"pooling: calibrated fits fewer key/value heads; {target} must divide the model's "
            f"{kv_heads} and be smaller (repeating heads needs no calibration: use mean)."
        )
    inputs = attention_inputs(model, calibration)  # module -> (N, in)
    for module in self_attention_modules(model):
        fit_layer(module, inputs[module], target, kv_heads, q_heads, head_dim_of(config))
    return set_kv_heads(model, target)


@torch.no_grad()
def fit_layer(
    module: nn.Module, x: torch.Tensor, target: int, kv_heads: int, q_heads: int, d: int
) -> None:
    """Fit ``module``'s ``kv_heads`` key/value heads into ``target`` on its inputs x (N, in)."""
    x = x.double()
    if module.k_proj.bias is not None:  # the bias is a weight on a constant input
        x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    second = x.T @ x / len(x)  # (in, in)
    w_k, w_q = _with_bias(module.k_proj), _with_bias(module.q_proj)
    w_v, w_o = _with_bias(module.v_proj), module.o_proj.weight.detach().double()
    per = q_heads // kv_heads
    keys, queries = _fit_keys(w_k, w_q, second, kv_heads, target, per, d)
    values, o_proj = _fit_values(w_v, w_o, second, kv_heads, target, per, d)
    module.k_proj, module.q_proj = _store(module.k_proj, keys), _store(module.q_proj, queries)
    module.v_proj = _store(module.v_proj, values)
    module.o_proj.weight.copy_(o_proj)
