"""Fine-tune one variant with transformers' ``Trainer``; ``none`` only loads it."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import pandas as pd
import torch
from transformers import Trainer, TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from attention_lab.attention.calibration import calibration_ids
from attention_lab.attention.discovery import discover
from attention_lab.attention.fast_path import fast_attention
from attention_lab.datasets.model_directory import TrainedModel
from attention_lab.errors import ConfigError
from attention_lab.methods import method_named
from attention_lab.model_info import ModelInfo
from attention_lab.models.costs import peak_memory_mb
from attention_lab.models.loading import device as default_device
from attention_lab.models.loading import load_model, load_tokenizer
from attention_lab.tasks import get_task
from attention_lab.training.distillation import Teacher, distillation_loss
from attention_lab.training.head_features import feature_dataset
from attention_lab.training.methods import count_parameters, prepare
from attention_lab.variants import TrainingSpec, VariantSpec

logger = logging.getLogger(__name__)


def label_names(corpus: pd.DataFrame) -> list[str]:
    """Label names in label order, from the corpus contract."""
    return list(corpus.drop_duplicates("label").sort_values("label")["label_name"])


def processes() -> int:
    """How many processes train together (``torchrun`` sets ``WORLD_SIZE``); 1 alone."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def fast_bfloat16() -> bool:
    """Whether this machine has native bfloat16 kernels (on a CPU without them, autocast is slower)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def trains_in_bfloat16(t: TrainingSpec) -> bool:
    """``training.precision`` resolved: ``auto`` is bfloat16 on the fast path where it is fast."""
    if t.precision == "auto":
        return t.fast_path and fast_bfloat16()
    return t.precision == "bf16"


def training_arguments(
    t: TrainingSpec, output_dir: str, n_train: int, by_length: bool = False
) -> TrainingArguments:
    return TrainingArguments(
        bf16=trains_in_bfloat16(t),  # autocast; the master weights stay float32
        output_dir=output_dir,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,
        seed=t.seed,
        # similar lengths per batch pad less; the grouping is shuffled from the seed
        train_sampling_strategy="group_by_length" if by_length else "random",
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        # a progress bar for the longest step of a job (TRANSFORMERS_VERBOSITY=error would hide
        # it); its log lines go to state.log_history only (StudyTrainer)
        disable_tqdm=False,
        logging_steps=max(1, n_train // t.batch_size // 4),
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        # several processes (torchrun): gloo between CPUs, nccl (the default) between GPUs
        ddp_backend="gloo" if processes() > 1 and not torch.cuda.is_available() else None,
    )


def cross_attention_parameters(model) -> set[int]:
    """Ids of the parameters inside cross-attention layers; a ConfigError when there are none."""
    cross = {
        id(p)
        for layer in discover(model)
        if not layer.is_self_attention
        for p in layer.module.parameters()
    }
    if not cross:
        raise ConfigError(
            "training.cross_attention_learning_rate is set, but the model has no cross-attention; "
            "remove it or use an encoder-decoder."
        )
    return cross


class BarOnly(ProgressCallback):
    """The Trainer's progress bars without its log lines: a dict per logging step and one at
    the end printed for every job (about 160 lines of `make run`). The logs stay in
    ``trainer.state.log_history``."""

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        return None


class StudyTrainer(Trainer):
    """transformers' ``Trainer``, whose cross-attention layers may train at their own rate,
    and which shows its progress bars but prints no log lines (:class:`BarOnly`).

    A warm-started encoder-decoder (bert2bert) starts with random cross-attention; at the
    body's small step it stays almost uniform. The Trainer's own optimizer (its class, and
    its split of decayed and undecayed parameters) is kept; each group is split in two.
    """

    def __init__(
        self,
        *args,
        cross_attention_lr: float | None = None,
        teacher: Teacher | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if self.pop_callback(ProgressCallback) is not None:
            self.add_callback(BarOnly)
        self.pop_callback(PrinterCallback)
        self.cross_attention_lr = cross_attention_lr
        self.cross = cross_attention_parameters(self.model) if cross_attention_lr else set()
        self.teacher = teacher

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The task's loss, or with a teacher, KL divergence to its next-token distribution."""
        if self.teacher is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        outputs = model(**inputs)
        mask = inputs.get("attention_mask")
        loss = distillation_loss(outputs.logits, self.teacher.logits(inputs), mask)
        return (loss, outputs) if return_outputs else loss

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        if self.optimizer is not None or not self.cross:  # already built, or nothing to split
            return super().create_optimizer(model)
        optimizer = super().create_optimizer(model)
        groups = [
            {**group, "params": [p for p in group["params"] if (id(p) in self.cross) == is_cross]}
            | ({"lr": self.cross_attention_lr} if is_cross else {})
            for group in optimizer.param_groups
            for is_cross in (False, True)
        ]
        optimizer.param_groups = []  # no step taken yet: regroup in place
        for group in groups:
            if group["params"]:
                optimizer.add_param_group(group)
        return optimizer


def _fit(model, data, t: TrainingSpec, collator=None, by_length=False, teacher=None) -> int:
    """Train ``model`` on ``data`` (toward ``teacher``'s logits if given); returns the number
    of optimizer steps."""
    with tempfile.TemporaryDirectory() as out:
        trainer = StudyTrainer(
            model=model,
            args=training_arguments(t, out, len(data), by_length),
            train_dataset=data,
            data_collator=collator,
            cross_attention_lr=t.cross_attention_learning_rate,
            teacher=teacher,
        )
        return trainer.train().global_step


def train(model, tokenizer, spec: VariantSpec, corpus: pd.DataFrame) -> tuple[float, int]:
    """Train on the corpus's train split; returns (seconds, optimizer steps).

    The fast path (``training.fast_path``) trains a lone classifier head on features computed
    once, and everything else with SDPA attention; the clock includes computing features.
    """
    task = get_task(spec.task)
    t = spec.training
    data = task.encode(corpus[corpus["split"] == "train"], tokenizer, t.max_length)
    start = time.perf_counter()
    if t.fast_path and method_named(spec.method).head_only and task.name == "classification":
        prepared = feature_dataset(model, data, task.collate(tokenizer, model), t.eval_batch_size)
        if prepared is not None:
            # a linear head on fixed features: float32, cheap either way
            steps = _fit(
                *prepared, replace(t, cross_attention_learning_rate=None, precision="fp32")
            )
            return time.perf_counter() - start, steps
    teacher = base_teacher(spec) if t.objective == "distill" else None
    teacher_path = (  # the teacher's passes through SDPA too, where it matches eager
        fast_attention(teacher.model, enabled=t.fast_path) if teacher else nullcontext()
    )
    with fast_attention(model, enabled=t.fast_path), teacher_path:
        steps = _fit(
            model, data, t, task.collate(tokenizer, model), by_length=t.fast_path, teacher=teacher
        )
    return time.perf_counter() - start, steps


def base_teacher(spec: VariantSpec) -> Teacher:
    """The variant's base checkpoint, unconverted, as the distillation teacher."""
    model = load_model(
        spec.model,
        spec.task,
        trust_remote_code=spec.trust_remote_code,
        allow_pickle=spec.allow_pickle,
    )
    return Teacher(model.to(default_device()))


CALIBRATION_TEXTS = 4  # training texts a conversion fits its weights on (at training.max_length)


def build(spec: VariantSpec, labels: list[str], train_texts: list[str] | None = None):
    """The variant's tokenizer and model: base checkpoint, mechanism, method applied.

    A mechanism that fits weights calibrates on the first training texts."""
    tokenizer = load_tokenizer(spec.model, spec.trust_remote_code)
    calibration = None
    if spec.mechanism.converts_weights:
        length = spec.training.max_length
        calibration = calibration_ids(tokenizer, train_texts or [], CALIBRATION_TEXTS, length)
    model = load_model(
        spec.model,
        spec.task,
        spec.mechanism,
        num_labels=len(labels),
        trust_remote_code=spec.trust_remote_code,
        pad_token_id=tokenizer.pad_token_id,
        allow_pickle=spec.allow_pickle,
        calibration=calibration,
    )
    get_task(spec.task).configure(model, tokenizer)
    return prepare(model, spec.method, spec.task, spec.lora), tokenizer


def fine_tune_variant(
    spec: VariantSpec, corpus: pd.DataFrame
) -> tuple[TrainedModel, dict[str, Any]]:
    """Build and train ``spec``; returns the model for ``{variant}.model`` and a training log
    (seconds, steps, examples per second, parameter counts, peak memory)."""
    set_seed(spec.training.seed)
    labels = label_names(corpus)
    model, tokenizer = build(spec, labels, list(corpus.loc[corpus["split"] == "train", "text"]))
    trainable, total = count_parameters(model)
    logger.info(
        "%s: %s/%s/%s, %d of %d parameters train",
        spec.name,
        spec.model,
        spec.mechanism.name,
        spec.method,
        trainable,
        total,
    )
    method = method_named(spec.method)
    seconds, steps = train(model, tokenizer, spec, corpus) if method.updates_weights else (0.0, 0)
    adapter = method.saves_adapter(spec.mechanism.converts_weights)
    stored_whole = method.adapter and not adapter
    if stored_whole:  # the base checkpoint cannot rebuild the conversion: keep the whole model
        model = model.merge_and_unload()
    info = model_info(spec, labels, adapter)
    log = {
        "train_seconds": round(seconds, 2),
        "train_steps": steps,
        # every process's examples (torchrun: the batch here is one process's share)
        "train_examples_per_second": round(
            steps * spec.training.batch_size * processes() / seconds, 2
        )
        if seconds
        else None,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "peak_memory_mb": round(peak_memory_mb(), 1),
    }
    return TrainedModel(model.cpu(), tokenizer, info), log


def model_info(spec: VariantSpec, labels: list[str], adapter: bool) -> ModelInfo:
    """What ``attention_lab.json`` records of how the variant was made."""
    return ModelInfo(
        variant=spec.name,
        seed=spec.training.seed,
        base_model=spec.model,
        task=spec.task,
        method=spec.method,
        mechanism=spec.mechanism.to_dict(),
        label_names=labels,
        num_labels=len(labels),
        adapter=adapter,
        objective=spec.training.objective,
        max_length=spec.training.max_length,
        eval_batch_size=spec.training.eval_batch_size,
        fast_path=spec.training.fast_path,
        allow_pickle=spec.allow_pickle,
        trust_remote_code=spec.trust_remote_code,
        training_precision="bf16" if trains_in_bfloat16(spec.training) else "fp32",
    )


def evaluate_variant(
    model, tokenizer, info: ModelInfo, corpus: pd.DataFrame
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The task's metrics on the test split, labelled with the variant and seed, and each
    test example's outcome."""
    test = corpus[corpus["split"] == "test"]
    batch_size = info.eval_batch_size
    with fast_attention(model, enabled=info.fast_path):
        metrics, examples = get_task(info.task).evaluate_examples(
            model, tokenizer, test, info, batch_size
        )
    labels = {"variant": info.variant, "seed": info.seed}
    metrics = {
        **labels,
        "task": info.task,
        "method": info.method,
        "mechanism": info.mechanism["name"],
        **metrics,
        "test_examples": len(test),
    }
    return metrics, examples.assign(**labels)


def evaluate_artifact(
    model_artifact, corpus: pd.DataFrame, train_log: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """A saved variant's metrics (with its training log) and per-example outcomes."""
    model, tokenizer = model_artifact.load()
    metrics, predictions = evaluate_variant(model, tokenizer, model_artifact.info, corpus)
    metrics = {**metrics, **train_log}
    summary = {k: metrics[k] for k in ("eval_loss", "accuracy", "perplexity") if k in metrics}
    logger.info("%s (seed %s): %s", metrics["variant"], metrics["seed"], summary)
    return metrics, predictions
