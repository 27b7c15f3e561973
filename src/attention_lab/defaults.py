"""Defaults that more than one stage reads, each written once."""

from __future__ import annotations

SEED = 42  # a study without study.seeds trains each variant once, with this seed
EVAL_BATCH_SIZE = 64  # examples per evaluation batch
MAX_LENGTH = 64  # tokens per training and evaluation example (TrainingSpec.max_length)
