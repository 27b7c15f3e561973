"""The project's Trainer: the cross-attention of an encoder-decoder can train at its own
learning rate, and training prints progress bars but no log lines."""

from __future__ import annotations

import pytest
from transformers import TrainingArguments

from attention_lab.attention.discovery import discover
from attention_lab.errors import ConfigError
from attention_lab.training.fine_tune import StudyTrainer
from tests.conformance.families import BY_NAME


def family(name: str):
    return BY_NAME[name].build()


def trainer(model, tmp_path, cross_lr):
    args = TrainingArguments(
        output_dir=str(tmp_path), learning_rate=1e-4, weight_decay=0.01, use_cpu=True
    )
    return StudyTrainer(model=model, args=args, cross_attention_lr=cross_lr)


def test_cross_attention_parameters_get_their_own_rate_and_keep_the_decay_split(tmp_path):
    model = family("bart")
    study_trainer = trainer(model, tmp_path, 1e-3)
    optimizer = study_trainer.create_optimizer()
    expected = {
        id(p)
        for layer in discover(model)
        if layer.kind == "cross"
        for p in layer.module.parameters()
    }
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        assert ids <= expected if group["lr"] == 1e-3 else not ids & expected
        if group["weight_decay"]:  # the Trainer's own split: no decay on biases and norms
            assert not any("bias" in names[i] or "norm" in names[i] for i in ids)
    assert {group["lr"] for group in optimizer.param_groups} == {1e-4, 1e-3}
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    groups = len(optimizer.param_groups)
    assert study_trainer.create_optimizer() is optimizer and len(optimizer.param_groups) == groups


def test_no_rate_keeps_the_trainers_optimizer_and_a_decoder_only_model_is_refused(tmp_path):
    groups = trainer(family("bart"), tmp_path, None).create_optimizer().param_groups
    assert {group["lr"] for group in groups} == {1e-4}
    with pytest.raises(ConfigError, match="no cross-attention"):
        trainer(family("llama"), tmp_path, 1e-3)


@pytest.mark.parametrize("bar", [True, False])
def test_training_prints_no_log_lines_and_keeps_them_in_the_history(tmp_path, capfd, bar):
    args = TrainingArguments(
        disable_tqdm=not bar,  # without a bar, transformers prints each log line instead
        output_dir=str(tmp_path),
        max_steps=2,
        logging_steps=1,
        per_device_train_batch_size=2,
        use_cpu=True,
        report_to=[],
    )
    data = [{"input_ids": [5, 6, 7, 8], "labels": [5, 6, 7, 8]} for _ in range(4)]
    study_trainer = StudyTrainer(model=family("llama"), args=args, train_dataset=data)
    study_trainer.train()
    printed = "".join(capfd.readouterr())
    assert "'loss'" not in printed and "train_runtime" not in printed
    assert ("2/2" in printed) == bar  # the progress bar is still drawn
    assert [step["step"] for step in study_trainer.state.log_history if "loss" in step] == [1, 2]
