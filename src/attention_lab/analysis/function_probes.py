"""Head functions of a trained variant: probe sequences, detector scores, and the causal
check that ablating the induction heads costs more than ablating random heads.

Probes are repeated random tokens drawn from the model's own vocabulary (special tokens
left out), one sequence ``[BOS] r_1..r_n r_1..r_n`` each, generated from a seed so that every
variant of one model reads the same ones. Weights come from the model's own eager
``output_attentions`` on unpadded, equal-length sequences: exactly its attention.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from attention_lab.analysis.head_functions import (
    FUNCTIONS,
    function_scores,
    repeated_random_tokens,
)
from attention_lab.analysis.pruning import heads_masked
from attention_lab.analysis.retrieval import needle_copy_accuracy, retrieval_score
from attention_lab.analysis.statistics import bootstrap_interval, statistics_settings
from attention_lab.errors import ConfigError
from attention_lab.parameters import AnalysisSettings, FunctionSettings

FUNCTION_COLUMNS = [
    "variant",
    "seed",
    "kind",
    "layer",
    "head",
    "function",
    "score",
    "ci_low",
    "ci_high",
]
# value: the loss on the repeated half (induction) or the needle-copy accuracy (retrieval)
ABLATION_COLUMNS = ["function", "k", "condition", "draw", "probe", "value", "variant", "seed"]


def build_probes(tokenizer, settings: FunctionSettings) -> pd.DataFrame:
    """One row per probe: ``id`` and ``input_ids`` (``[BOS] + 2 * half`` tokens), and
    ``offset`` (1 with a BOS or [CLS] token in front, else 0)."""
    special = set(tokenizer.all_special_ids)
    vocabulary = np.array([i for i in range(len(tokenizer)) if i not in special])
    if len(vocabulary) < settings.half:
        raise ConfigError(
            f"analysis.head_functions.half: {settings.half} distinct tokens asked for, the "
            f"vocabulary has {len(vocabulary)}; lower half."
        )
    body = repeated_random_tokens(vocabulary, settings.sequences, settings.half, settings.seed)
    first = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    prefix = [] if first is None else [int(first)]
    return pd.DataFrame(
        {
            "id": [f"repeat{i}" for i in range(len(body))],
            "input_ids": [prefix + [int(t) for t in row] for row in body],
            "offset": len(prefix),
            "half": settings.half,
        }
    )


def _ids(probes: pd.DataFrame, device) -> torch.Tensor:
    return torch.tensor(np.stack(probes["input_ids"].to_numpy()), device=device)  # (N, T)


@torch.inference_mode()
def score_heads(
    model: nn.Module, probes: pd.DataFrame, labels: dict, params: AnalysisSettings
) -> pd.DataFrame:
    """One row per (layer, head, function): the mean score over probes, with its bootstrap
    interval over probes."""
    ids = _ids(probes, model.device)
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
    maps = torch.stack(out.attentions, dim=1).float().cpu().numpy()  # (N, L, H, T, T)
    offset, half = int(probes["offset"].iloc[0]), int(probes["half"].iloc[0])
    per_probe = [function_scores(m, ids[i].cpu().numpy(), half, offset) for i, m in enumerate(maps)]
    stats = statistics_settings(params)
    rows = []
    layers, heads = maps.shape[1:3]
    for name in FUNCTIONS:
        values = np.stack([p[name] for p in per_probe]).reshape(len(maps), -1)  # (N, L*H)
        low, high = bootstrap_interval(values, stats.bootstrap_resamples, stats.seed)
        for index, (layer, head) in enumerate(np.ndindex(layers, heads)):
            rows.append(
                labels
                | {
                    "layer": layer,
                    "head": head,
                    "function": name,
                    "score": float(values[:, index].mean()),
                    "ci_low": float(low[index]),
                    "ci_high": float(high[index]),
                }
            )
    return pd.DataFrame(rows)


@torch.inference_mode()
def repeated_half_loss(model: nn.Module, ids: torch.Tensor, offset: int, half: int) -> np.ndarray:
    """(N,): each probe's mean next-token loss over its second copy, which a model that
    copies from the first can predict."""
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float()
    start = offset + half  # first token of the second copy
    predicted = logits[:, start - 1 : -1]  # (N, half, V): position t predicts token t + 1
    targets = ids[:, start:]  # (N, half)
    loss = torch.nn.functional.cross_entropy(predicted.transpose(1, 2), targets, reduction="none")
    return loss.mean(dim=1).cpu().numpy()


def _random_heads(top: list[tuple[int, int]], heads: int, rng) -> list[tuple[int, int]]:
    """One head per top head, from the same layer and outside the top set where possible."""
    taken = set(top)
    chosen = []
    for layer, _ in top:
        free = [h for h in range(heads) if (layer, h) not in taken]
        head = int(rng.choice(free)) if free else int(rng.integers(heads))
        taken.add((layer, head))
        chosen.append((layer, head))
    return chosen


def ablation_runs(
    model: nn.Module, ranked: pd.DataFrame, heads: int, ks, settings: FunctionSettings, measure
) -> pd.DataFrame:
    """Per k, condition (none; the top-k heads of ``ranked``; k random heads of the same
    layers, per draw) and probe: ``measure(model)``, one value per probe."""
    rng = np.random.default_rng(settings.seed)
    runs = [(0, "none", 0, [])]
    for k in ks:
        top = list(zip(ranked["layer"][:k], ranked["head"][:k], strict=True))
        runs.append((k, "top", 0, top))
        runs += [
            (k, "random", d, _random_heads(top, heads, rng)) for d in range(settings.random_draws)
        ]
    rows = []
    for k, condition, draw, masked in runs:
        with heads_masked(model, [(int(a), int(b)) for a, b in masked]):
            values = measure(model)
        rows += [
            {"k": k, "condition": condition, "draw": draw, "probe": p, "value": float(v)}
            for p, v in enumerate(values)
        ]
    return pd.DataFrame(rows)


def _ranked(scores: pd.DataFrame, function: str) -> pd.DataFrame:
    """Heads by ``function`` score, strongest first (ties by position, for determinism)."""
    rows = scores[scores["function"] == function]
    return rows.sort_values(
        ["score", "layer", "head"], ascending=[False, True, True], kind="stable"
    ).reset_index(drop=True)


def induction_ablation(
    model: nn.Module, probes: pd.DataFrame, scores: pd.DataFrame, settings: FunctionSettings
) -> pd.DataFrame:
    """The loss on the repeated half with the top-k induction heads (by prefix matching)
    ablated, against k random heads of the same layers."""
    ids = _ids(probes, model.device)
    offset, half = int(probes["offset"].iloc[0]), int(probes["half"].iloc[0])
    heads = int(scores["head"].max()) + 1
    runs = ablation_runs(
        model,
        _ranked(scores, "prefix_matching"),
        heads,
        settings.ablation_k,
        settings,
        lambda m: repeated_half_loss(m, ids, offset, half),
    )
    return runs.assign(function="induction")


SUMMARY_COLUMNS = [
    "variant",
    "seed",
    "function",
    "measure",
    "k",
    "intact",
    "top_ablated",
    "random_ablated",
    "difference",
    "ci_low",
    "ci_high",
    "n_probes",
    "random_draws",
]
MEASURES = {"induction": "loss on the repeated half", "retrieval": "needle-copy accuracy"}


def summarise_ablations(ablations: pd.DataFrame, params: AnalysisSettings) -> pd.DataFrame:
    """Per (variant, seed, function, k): the measure intact, with the function's top-k heads
    ablated and with k random heads of the same layers ablated (mean over draws), and the
    difference top − random with its bootstrap interval over probes (draws averaged within
    each probe)."""
    stats = statistics_settings(params)
    rows = []
    keys = ["variant", "seed", "function"]
    for (variant, seed, function), runs in ablations.groupby(keys, sort=False):
        intact = runs[runs["condition"] == "none"].set_index("probe")["value"]
        for k in sorted(set(runs["k"]) - {0}):
            mine = runs[runs["k"] == k]
            top = mine[mine["condition"] == "top"].set_index("probe")["value"]
            random = mine[mine["condition"] == "random"].groupby("probe")["value"].mean()
            difference = (top - random.reindex(top.index)).to_numpy()  # (probes,)
            low, high = bootstrap_interval(
                difference[:, None], stats.bootstrap_resamples, stats.seed
            )
            rows.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "function": function,
                    "measure": MEASURES[function],
                    "k": int(k),
                    "intact": float(intact.mean()),
                    "top_ablated": float(top.mean()),
                    "random_ablated": float(random.mean()),
                    "difference": float(difference.mean()),
                    "ci_low": float(low[0]),
                    "ci_high": float(high[0]),
                    "n_probes": len(difference),
                    "random_draws": int(mine["draw"].max()) + 1,
                }
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def retrieval_rows(
    model: nn.Module, needles: pd.DataFrame, labels: dict, params: AnalysisSettings
) -> pd.DataFrame:
    """One row per (layer, head): Wu et al.'s retrieval score, mean over the needle probes,
    with its bootstrap interval."""
    probes = needles.to_dict("records")
    per_probe = np.stack([retrieval_score(model, p) for p in probes])  # (N, L, H)
    layers, heads = per_probe.shape[1:]
    per_probe = per_probe.reshape(len(probes), -1)  # (N, L*H)
    stats = statistics_settings(params)  # the study's resamples and seed, as for every interval
    low, high = bootstrap_interval(per_probe, stats.bootstrap_resamples, stats.seed)
    return pd.DataFrame(
        [
            labels
            | {
                "layer": layer,
                "head": head,
                "function": "retrieval",
                "score": float(per_probe[:, i].mean()),
                "ci_low": float(low[i]),
                "ci_high": float(high[i]),
            }
            for i, (layer, head) in enumerate(np.ndindex(layers, heads))
        ]
    )


def retrieval_ablation(
    model: nn.Module, needles: pd.DataFrame, scores: pd.DataFrame, settings: FunctionSettings
) -> pd.DataFrame:
    """Needle-copy accuracy with the top-k retrieval heads ablated, against k random heads of
    the same layers."""
    probes = needles.to_dict("records")
    heads = int(scores["head"].max()) + 1
    runs = ablation_runs(
        model,
        _ranked(scores, "retrieval"),
        heads,
        settings.retrieval_k,
        settings,
        lambda m: [needle_copy_accuracy(m, p) for p in probes],
    )
    return runs.assign(function="retrieval")
