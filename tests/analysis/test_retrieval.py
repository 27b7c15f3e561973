"""Wu et al.'s retrieval score on hand-set attention, and the needle probes' layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_lab.analysis import retrieval
from attention_lab.analysis.retrieval import build_needle_probes, retrieval_score

TEXTS = ["The committee met on Tuesday to discuss the budget for schools and hospitals. " * 40]


def test_needle_probes_hold_the_needle_and_end_with_its_answer(bert_tokenizer):
    probes = build_needle_probes(TEXTS, bert_tokenizer, count=3, length=200, seed=0)
    for probe in probes.to_dict("records"):
        ids = probe["input_ids"]
        assert len(ids) == 200
        needle = bert_tokenizer.decode(ids[probe["needle_start"] : probe["needle_end"]])
        answer = bert_tokenizer.decode(ids[probe["answer_start"] :])
        assert needle.startswith("the secret passphrase is")  # the uncased tokenizer
        assert needle.endswith(answer + ".")
    again = build_needle_probes(TEXTS, bert_tokenizer, count=3, length=200, seed=0)
    assert probes["input_ids"].map(tuple).equals(again["input_ids"].map(tuple))


class HandSetModel(torch.nn.Module):
    """Two heads: head 0 attends from each answer position to the needle position holding
    the next answer token (a retrieval head); head 1 to the first token. The logits predict
    every next token except the last, so 3 of the 4 steps are copy steps."""

    def __init__(self, probe: dict, vocab: int = 50):
        super().__init__()
        self.device = torch.device("cpu")
        self.probe, self.vocab = probe, vocab

    def forward(self, input_ids, output_attentions=False):
        ids = input_ids[0]
        length = len(ids)
        maps = torch.zeros(1, 2, length, length)
        maps[0, 1, :, 0] = 1.0
        needle = list(range(self.probe["needle_start"], self.probe["needle_end"]))
        for p in range(length):
            target = int(ids[p + 1]) if p + 1 < length else -1
            where = [j for j in needle if int(ids[j]) == target]
            maps[0, 0, p, where[0] if where else 0] = 1.0
        logits = torch.zeros(1, length, self.vocab)
        logits[0, torch.arange(length - 1), ids[1:]] = 1.0
        logits[0, length - 2] = 0.0
        logits[0, length - 2, 0] = 1.0  # the last answer token is not predicted
        out = type("Out", (), {})()
        out.logits, out.attentions = logits, (maps,)
        return out


def test_a_head_pointing_at_the_copied_needle_token_scores_the_copied_share():
    # BOS, haystack 5..9, needle [20 21 22 23], haystack, question [30], answer [20 21 22 23]
    ids = [1, 5, 6, 20, 21, 22, 23, 7, 8, 30, 20, 21, 22, 23]
    probe = {"input_ids": ids, "needle_start": 3, "needle_end": 7, "answer_start": 10}
    model = HandSetModel(probe)
    scores = retrieval_score(model, probe)  # [L=1, H=2]
    # copy steps produce 21 and 22 (answer positions 10, 11) and 20 (position 9); 23 is missed
    assert scores[0, 0] == pytest.approx(3 / 4)
    assert scores[0, 1] == 0.0
    assert retrieval.needle_copy_accuracy(model, probe) == pytest.approx(3 / 4)
    assert np.all((scores >= 0) & (scores <= 1))
