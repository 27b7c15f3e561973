"""Tasks: one object each that knows how to load, encode, collate, evaluate and extract."""

from __future__ import annotations

from attention_lab.errors import ConfigError
from attention_lab.tasks.base import AttentionBatch, Task
from attention_lab.tasks.causal_lm import CausalLM
from attention_lab.tasks.classification import Classification
from attention_lab.tasks.seq2seq import Seq2Seq

TASKS: dict[str, Task] = {task.name: task for task in (Classification(), CausalLM(), Seq2Seq())}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"task: unknown task {name!r}; allowed: {', '.join(TASKS)}.")
    return TASKS[name]


__all__ = ["TASKS", "AttentionBatch", "Task", "get_task"]
