"""Retrieval heads (Wu et al., 2024): which heads point at the needle while a model copies it.

A probe is a haystack of real text (the corpus's test articles) with a needle sentence
inserted at a seeded depth, a question, and the needle's answer after it:

    <haystack ... The secret passphrase is w1 w2 ... w6. ... haystack>
    What is the secret passphrase? The secret passphrase is w1 w2 ... w6

Wu et al.'s score of head h is ``|g_h ∩ k| / |k|``: ``k`` is the set of needle tokens, and a
token ``w`` joins ``g_h`` when, at a step where the model produces ``w`` and ``w`` is in the
needle, h's top-1 attention lands on a needle position that holds ``w``. They decode
greedily; here the answer is teacher-forced and a step counts only where the model's own
top-1 prediction is the answer's next token, which is the same event as long as the model
copies (a step where it does not copy counts for no head either way). A head with score
>= 0.1 is a retrieval head, their threshold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from attention_lab.errors import DataError

RETRIEVAL_THRESHOLD = 0.1  # Wu et al. (2024)
# concrete nouns that are one or two tokens in common vocabularies
WORDS = (
    "apple river candle tiger violin garden mirror pencil rocket castle "
    "pepper island lantern harbor falcon meadow copper saddle orchid glacier "
    "anchor basket cactus dolphin feather helmet jacket kettle ladder marble"
).split()
QUESTION = "\nWhat is the secret passphrase? The secret passphrase is"


def build_needle_probes(
    texts: list[str], tokenizer, count: int, length: int, seed: int
) -> pd.DataFrame:
    """``count`` probes of about ``length`` tokens: ``input_ids``, the needle's token span
    (``needle_start``, ``needle_end``) and where the answer starts (``answer_start``)."""
    rng = np.random.default_rng(seed)
    haystack = tokenizer(" ".join(texts), add_special_tokens=False)["input_ids"]
    prefix = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    rows = []
    for i in range(count):
        words = " " + " ".join(rng.choice(WORDS, size=6, replace=False))
        needle = tokenizer(" The secret passphrase is" + words + ".", add_special_tokens=False)
        question = tokenizer(QUESTION, add_special_tokens=False)["input_ids"]
        answer = tokenizer(words, add_special_tokens=False)["input_ids"]
        room = length - len(needle["input_ids"]) - len(question) - len(answer) - len(prefix)
        if room < 16 or len(haystack) < room:
            raise DataError(
                f"retrieval probes: {len(haystack)} tokens of test text cannot make a "
                f"{length}-token haystack; give the test split more text or lower the length."
            )
        start = int(rng.integers(0, len(haystack) - room + 1))
        hay = haystack[start : start + room]
        depth = int(rng.uniform(0.2, 0.8) * room)
        before = prefix + hay[:depth]
        ids = before + needle["input_ids"] + hay[depth:] + question + answer
        rows.append(
            {
                "id": f"needle{i}",
                "input_ids": ids,
                "needle_start": len(before),
                "needle_end": len(before) + len(needle["input_ids"]),
                "answer_start": len(ids) - len(answer),
            }
        )
    return pd.DataFrame(rows)


@torch.inference_mode()
def _run(model: nn.Module, probe: dict, attentions: bool):
    ids = torch.tensor([probe["input_ids"]], device=model.device)
    return ids[0], model(input_ids=ids, output_attentions=attentions)


def _copy_steps(ids: torch.Tensor, logits: torch.Tensor, answer_start: int) -> list[int]:
    """Query positions where the model's top-1 prediction is the answer's next token."""
    positions = range(answer_start - 1, len(ids) - 1)  # position p predicts token p + 1
    return [p for p in positions if int(logits[p].argmax()) == int(ids[p + 1])]


def retrieval_score(model: nn.Module, probe: dict) -> np.ndarray:
    """[L, H]: Wu et al.'s retrieval score of every head on one probe."""
    ids, out = _run(model, probe, attentions=True)
    maps = torch.stack(out.attentions, dim=1)[0]  # (L, H, T, T)
    needle = range(probe["needle_start"], probe["needle_end"])
    answer_tokens = {int(t) for t in ids[probe["answer_start"] :]}
    in_needle = torch.zeros(len(ids), dtype=torch.bool)
    in_needle[list(needle)] = True
    found = [[set() for _ in range(maps.shape[1])] for _ in range(maps.shape[0])]
    for p in _copy_steps(ids, out.logits[0], probe["answer_start"]):
        token = int(ids[p + 1])
        top = maps[:, :, p].argmax(dim=-1).cpu()  # (L, H): each head's top-1 key
        hits = in_needle[top] & (ids.cpu()[top] == token)  # (L, H)
        for layer, head in hits.nonzero().tolist():
            found[layer][head].add(token)
    return np.array([[len(g & answer_tokens) / len(answer_tokens) for g in row] for row in found])


def needle_copy_accuracy(model: nn.Module, probe: dict) -> float:
    """Share of the answer's tokens the model predicts (teacher-forced, top-1)."""
    ids, out = _run(model, probe, attentions=False)
    steps = len(ids) - probe["answer_start"]
    return len(_copy_steps(ids, out.logits[0], probe["answer_start"])) / steps
