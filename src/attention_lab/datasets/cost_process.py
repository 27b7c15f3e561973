"""A saved variant's inference costs (:mod:`attention_lab.models.costs`), measured in a new
Python process, so that its peak memory is that variant's alone and no earlier work in the
caller counts. ``python -m attention_lab.datasets.cost_process REQUEST ANSWER`` is that
process: it reads a JSON request and writes a JSON answer."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from attention_lab.attention.fast_path import fast_attention
from attention_lab.attention.interface import INTERFACE_PATH, attention_path
from attention_lab.datasets.model_directory import ModelArtifact
from attention_lab.model_info import ModelInfo
from attention_lab.models.costs import CostSettings, context_ids, measure_costs, peak_memory_mb


def _measure_artifact(path: str, raw_info: dict[str, Any], texts: list[str], raw: dict) -> dict:
    """In the fresh process: load the variant, measure, add the process's peak memory."""
    settings, info = CostSettings(**raw), ModelInfo.from_json(raw_info)
    model, tokenizer = ModelArtifact(Path(path), info).load()
    config = model.config.get_text_config()
    limit = getattr(config, "max_position_embeddings", None) or settings.context_tokens
    ids = context_ids(tokenizer, texts, min(settings.context_tokens, limit)).to(model.device)
    # the KV cache is measured where the cache layout is transformers' own (the interface's
    # families); a family outside it (BLOOM, MPT) gets prefill speed and memory only
    decoder = info.task == "causal_lm" and attention_path(model) == INTERFACE_PATH
    with fast_attention(model, enabled=info.fast_path):  # as evaluation runs
        costs = measure_costs(model, ids, settings, decoder=decoder)
    return costs | {
        "inference_peak_memory_mb": peak_memory_mb(),
        "cost_threads": torch.get_num_threads(),
    }


def measure_in_fresh_process(
    artifact: ModelArtifact, texts: list[str], settings: CostSettings
) -> dict[str, Any]:
    """:func:`attention_lab.models.costs.measure_costs` of a saved variant, in a new process."""
    request = {
        "path": str(artifact.path),
        "info": artifact.info.to_json(),
        "texts": texts,
        "settings": settings.model_dump(),
    }
    with tempfile.TemporaryDirectory() as folder:
        request_file, answer_file = Path(folder) / "request.json", Path(folder) / "answer.json"
        request_file.write_text(json.dumps(request))
        done = subprocess.run(
            [sys.executable, "-m", __name__, str(request_file), str(answer_file)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not answer_file.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"measuring the costs of {artifact.info.variant!r} failed: {last}")
        return json.loads(answer_file.read_text())


if __name__ == "__main__":
    request = json.loads(Path(sys.argv[1]).read_text())
    answer = _measure_artifact(
        request["path"], request["info"], request["texts"], request["settings"]
    )
    Path(sys.argv[2]).write_text(json.dumps(answer))
