"""Fine-tuning: train one variant with transformers' Trainer, then evaluate it on the test split."""

from __future__ import annotations

import logging
import math
import resource
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import Trainer, TrainingArguments, set_seed

from attention_lab.models.artifact import ModelArtifact, TrainedModel
from attention_lab.models.loading import load_model, load_tokenizer
from attention_lab.pipelines.fine_tuning.data import collate, encode
from attention_lab.pipelines.fine_tuning.methods import count_parameters, prepare
from attention_lab.variants import VariantSpec, parse_variant

logger = logging.getLogger(__name__)


def peak_memory_mb() -> float:
    """CUDA: peak allocated by torch. CPU: the process's peak resident set (a high-water mark)."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _labels(corpus: pd.DataFrame) -> list[str]:
    return list(corpus.drop_duplicates("label").sort_values("label")["label_name"])


def fine_tune(
    corpus: pd.DataFrame, variant: dict[str, Any], study: dict[str, Any], variant_name: str
) -> tuple[TrainedModel, dict[str, Any]]:
    """Train ``variant`` on the train split (``none`` skips training).

    Returns the trained model for ``{variant}.model`` and a training log (seconds,
    parameter counts, peak memory, examples per second).
    """
    spec: VariantSpec = parse_variant(variant_name, variant, study)
    set_seed(spec.training.seed)
    labels = _labels(corpus)
    tokenizer = load_tokenizer(spec.model, spec.trust_remote_code)
    model = load_model(
        spec.model,
        spec.task,
        spec.mechanism,
        num_labels=len(labels),
        trust_remote_code=spec.trust_remote_code,
        pad_token_id=tokenizer.pad_token_id,
    )
    if spec.task == "seq2seq" and getattr(model.config, "decoder_start_token_id", None) is None:
        # a warm-started bert2bert knows no special decoder tokens: [CLS] starts, [SEP] ends
        for config in (model.config, model.generation_config):
            config.decoder_start_token_id = tokenizer.cls_token_id or tokenizer.bos_token_id
            config.eos_token_id = tokenizer.sep_token_id or tokenizer.eos_token_id
            config.pad_token_id = tokenizer.pad_token_id
    model = prepare(model, spec.method, spec.task, spec.lora)
    trainable, total = count_parameters(model)
    logger.info(
        "%s: %s/%s/%s, %d of %d parameters train",
        variant_name,
        spec.model,
        spec.mechanism.name,
        spec.method,
        trainable,
        total,
    )
    train = encode(
        corpus[corpus["split"] == "train"], tokenizer, spec.task, spec.training.max_length
    )
    seconds, steps = 0.0, 0
    if spec.method != "none":
        t = spec.training
        with tempfile.TemporaryDirectory() as out:
            args = TrainingArguments(
                output_dir=out,
                num_train_epochs=t.epochs,
                max_steps=t.max_steps,
                per_device_train_batch_size=t.batch_size,
                learning_rate=t.learning_rate,
                weight_decay=t.weight_decay,
                warmup_steps=t.warmup_ratio,
                seed=t.seed,
                save_strategy="no",
                eval_strategy="no",
                report_to="none",
                logging_steps=max(1, len(train) // t.batch_size // 4),
                remove_unused_columns=False,
                use_cpu=not torch.cuda.is_available(),
            )
            trainer = Trainer(
                model=model,
                args=args,
                train_dataset=train,
                data_collator=collate(tokenizer, spec.task),
            )
            start = time.perf_counter()
            result = trainer.train()
            seconds, steps = time.perf_counter() - start, result.global_step
    seen = steps * spec.training.batch_size
    info = {
        "variant": variant_name,
        "base_model": spec.model,
        "task": spec.task,
        "method": spec.method,
        "mechanism": spec.mechanism.to_dict(),
        "label_names": labels,
        "num_labels": len(labels),
        "adapter": spec.method == "lora",
        "max_length": spec.training.max_length,
    }
    log = {
        "train_seconds": round(seconds, 2),
        "train_steps": steps,
        "train_examples_per_second": round(seen / seconds, 2) if seconds else None,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "peak_memory_mb": round(peak_memory_mb(), 1),
    }
    return TrainedModel(model.cpu(), tokenizer, info), log


@torch.no_grad()
def evaluate(
    model_artifact: ModelArtifact, corpus: pd.DataFrame, train_log: dict[str, Any]
) -> dict[str, Any]:
    """Task metrics on the test split plus the training cost.

    Classification: accuracy, macro-F1, loss (``untrained_head`` flags method ``none``).
    Causal LM: loss and perplexity. Seq2seq: loss and exact-match accuracy of the label name.
    """
    info = model_artifact.info
    model, tokenizer = model_artifact.load()
    test = corpus[corpus["split"] == "test"]
    data = encode(test, tokenizer, info["task"], info.get("max_length", 128))
    batches = torch.utils.data.DataLoader(
        data, batch_size=64, collate_fn=collate(tokenizer, info["task"])
    )
    losses, weights, predictions, correct = [], [], [], []
    for batch in tqdm(batches, desc=f"evaluate {info['variant']}", leave=False):
        batch = {k: v.to(model.device) for k, v in batch.items()}
        out = model(**batch)
        losses.append(float(out.loss))
        weights.append(
            int((batch["labels"] != -100).sum())
            if info["task"] != "classification"
            else len(batch["labels"])
        )
        if info["task"] == "classification":
            predictions.extend(out.logits.argmax(-1).tolist())
        elif info["task"] == "seq2seq":
            mask = batch["labels"] != -100
            hit = (out.logits.argmax(-1) == batch["labels"]) | ~mask
            correct.extend(hit.all(dim=-1).tolist())
    loss = float(np.average(losses, weights=weights))
    metrics: dict[str, Any] = {
        "variant": info["variant"],
        "task": info["task"],
        "method": info["method"],
        "mechanism": info["mechanism"]["name"],
        "eval_loss": round(loss, 4),
        "test_examples": len(test),
    }
    if info["task"] == "classification":
        truth = test["label"].to_numpy()
        pred = np.array(predictions)
        f1s = []
        for k in range(info["num_labels"]):
            tp, fp, fn = (
                np.sum((pred == k) & (truth == k)),
                np.sum((pred == k) & (truth != k)),
                np.sum((pred != k) & (truth == k)),
            )
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
        metrics.update(
            accuracy=round(float((pred == truth).mean()), 4),
            macro_f1=round(float(np.mean(f1s)), 4),
            untrained_head=info["method"] == "none",
        )
    elif info["task"] == "causal_lm":
        metrics["perplexity"] = round(math.exp(loss), 3)
    else:
        metrics["accuracy"] = round(float(np.mean(correct)), 4)
    metrics.update(train_log)
    logger.info(
        "%s: %s",
        info["variant"],
        {k: metrics[k] for k in ("eval_loss", "accuracy", "perplexity") if k in metrics},
    )
    return metrics
