"""A model folder's info as one typed object: written in the order it always had, read back
equal, older folders read with the defaults that training uses, unknown keys kept."""

from __future__ import annotations

import json

from attention_lab.datasets.model_directory import ModelDirectoryDataset, TrainedModel
from attention_lab.model_info import ModelInfo
from attention_lab.variants import TrainingSpec

# attention_lab.json as fine-tuning wrote it before the info was typed
WRITTEN_ORDER = [
    "variant", "seed", "base_model", "task", "method", "mechanism", "label_names",
    "num_labels", "adapter", "objective", "max_length", "eval_batch_size", "fast_path",
    "allow_pickle", "trust_remote_code", "training_precision",
]  # fmt: skip


def test_json_keeps_the_written_order_and_round_trips():
    info = ModelInfo("lora", "classification", "minilm", seed=43, method="lora", num_labels=2)
    data = info.to_json()
    assert list(data) == WRITTEN_ORDER
    assert ModelInfo.from_json(json.loads(json.dumps(data))) == info


def test_defaults_are_the_trainings_own():
    """One default per field: a folder without max_length or eval_batch_size gets what
    TrainingSpec trains with (the evaluation fallback of 128 tokens is gone)."""
    old = ModelInfo.from_json({"variant": "v", "task": "causal_lm", "someday": 1})
    assert old.max_length == TrainingSpec().max_length
    assert old.eval_batch_size == TrainingSpec().eval_batch_size
    assert old.seed == TrainingSpec().seed
    assert old.extra == {"someday": 1} and old.to_json()["someday"] == 1


def test_a_saved_folder_reads_back_typed(tmp_path, minilm_path):
    from attention_lab.models.loading import load_model, load_tokenizer

    info = ModelInfo("base", "classification", "minilm", num_labels=2, max_length=24)
    model = load_model("minilm", "classification", num_labels=2)
    ModelDirectoryDataset(str(tmp_path / "base")).save(
        TrainedModel(model, load_tokenizer("minilm"), info)
    )
    artifact = ModelDirectoryDataset(str(tmp_path / "base")).load()
    assert artifact.info == info
