"""Variants are configuration: each is a named entry under ``variants`` in the parameters.

A variant = base model + attention mechanism + fine-tuning method + training settings.
Study-wide ``study.defaults`` fill whatever a variant leaves out. Everything is checked
before any work starts; an error names the variant, the key and the allowed values.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pydantic import ConfigDict, StrictBool
from pydantic.dataclasses import dataclass as pydantic_dataclass

from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.defaults import EVAL_BATCH_SIZE, MAX_LENGTH, SEED
from attention_lab.errors import ConfigError
from attention_lab.methods import method_named
from attention_lab.models.zoo import ALIASES, check_model_name
from attention_lab.validation import Count, Index, NonNegative, PositiveNumber, validated

# the names of attention_lab.tasks.TASKS, kept here so that config checks import no torch
TASKS = ("classification", "causal_lm", "seq2seq")
PRECISIONS = ("auto", "bf16", "fp32")
# lm: the task's own loss; distill: KL divergence to the base checkpoint's next-token
# distribution (uptraining a converted mechanism toward the model it came from)
OBJECTIVES = ("lm", "distill")
DEFAULT_MODEL = "minilm"
# a valid Kedro namespace, without "__": that joins a variant to its seed in a job's name
VARIANT_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*$")
# the namespaces of the jobs before and after the variants; the bundled models' cache folder
RESERVED_NAMES = ("ingestion", "study", "zoo")
DEFAULT_SEEDS = (SEED,)  # a study without study.seeds trains each variant once
# settings as pydantic checks them: no unknown key, and values converted only where lossless
SETTINGS = ConfigDict(extra="forbid")


@pydantic_dataclass(frozen=True, config=SETTINGS)
class TrainingSpec:
    """Trainer settings; ``max_steps > 0`` overrides ``epochs``."""

    epochs: PositiveNumber = 1.0
    max_steps: int = -1
    batch_size: Count = 16
    eval_batch_size: Count = EVAL_BATCH_SIZE
    learning_rate: PositiveNumber = 5e-5
    weight_decay: float = 0.0
    warmup_ratio: NonNegative = 0.0
    max_length: Count = MAX_LENGTH
    seed: Index = SEED  # set from the job (study.seeds), never from config
    # SDPA attention, length-grouped batches, and a classifier head trained on features
    # computed once; false: the eager, randomly batched path (benchmarks/training.py's baseline)
    fast_path: StrictBool = True
    # fast path only: auto trains under bfloat16 autocast where the hardware has fast bfloat16
    # kernels (AVX-512 BF16/AMX CPUs, Ampere+ GPUs); weights, evaluation and extraction stay float32
    precision: str = "auto"
    # its own step for cross-attention (new in a warm-started encoder-decoder); null: the same
    cross_attention_learning_rate: PositiveNumber | None = None
    objective: str = "lm"


@pydantic_dataclass(frozen=True, config=SETTINGS)
class LoraSpec:
    """peft LoRA settings; ``targets: null`` resolves the attention projections per architecture."""

    r: Count = 8
    alpha: Count = 16
    dropout: NonNegative = 0.05
    targets: tuple[str, ...] | None = None
    # modules trained whole beside the adapters (peft's modules_to_save), e.g. [k_proj, v_proj]
    # where a converted mechanism needs more than a low-rank change to its projections
    train_fully: tuple[str, ...] | None = None


@dataclass(frozen=True)
class VariantSpec:
    name: str
    model: str
    task: str
    mechanism: MechanismSpec
    method: str
    training: TrainingSpec = field(default_factory=TrainingSpec)
    lora: LoraSpec = field(default_factory=LoraSpec)
    trust_remote_code: bool = False
    allow_pickle: bool = False  # pickle checkpoints can run code when loaded: refused unless set

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mechanism"] = self.mechanism.to_dict()
        return data


def merge_config(base: dict, override: dict) -> dict:
    """``override`` over ``base``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in (override or {}).items():
        out[key] = (
            merge_config(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


VARIANT_KEYS = (
    "model",
    "mechanism",
    "method",
    "training",
    "lora",
    "trust_remote_code",
    "allow_pickle",
)


def _check_keys(merged: dict[str, Any], where: str) -> None:
    unknown = set(merged) - set(VARIANT_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(VARIANT_KEYS)}."
        )
    for key in ("trust_remote_code", "allow_pickle"):
        if not isinstance(merged.get(key, False), bool):
            raise ConfigError(f"{where}.{key}: expected true or false, got {merged[key]!r}.")


def _check_method(method: str, task: str, where: str) -> None:
    if task not in TASKS:
        raise ConfigError(f"study.task: unknown task {task!r}; allowed: {', '.join(TASKS)}.")
    if method_named(method, f"{where}.method").needs_classifier and task != "classification":
        raise ConfigError(
            f"{where}.method: {method!r} trains a classifier head, but study.task is {task!r}; "
            "use none, lora or full."
        )


def _training(raw: Any, task: str, where: str, seed: int) -> TrainingSpec:
    if isinstance(raw, dict) and "seed" in raw:
        raise ConfigError(
            f"{where}.seed: seeds are set for the whole study, e.g. `study: {{seeds: [42, 43, 44]}}`; "
            "remove it here."
        )
    training = replace(validated(TrainingSpec, raw, where), seed=seed)
    if training.precision not in PRECISIONS:
        raise ConfigError(
            f"{where}.precision: unknown precision {training.precision!r}; "
            f"allowed: {', '.join(PRECISIONS)}."
        )
    if training.objective not in OBJECTIVES:
        raise ConfigError(
            f"{where}.objective: unknown objective {training.objective!r}; "
            f"allowed: {', '.join(OBJECTIVES)}."
        )
    if training.objective == "distill" and task != "causal_lm":
        raise ConfigError(
            f"{where}.objective: distill matches the base model's next-token distribution, so it "
            f"needs study.task causal_lm (it is {task!r}); use lm."
        )
    if training.cross_attention_learning_rate is not None and task != "seq2seq":
        raise ConfigError(
            f"{where}.cross_attention_learning_rate: only a seq2seq study has "
            f"cross-attention, but study.task is {task!r}; remove it."
        )
    return training


def parse_variant(
    name: str, raw: dict[str, Any], study: dict[str, Any], seed: int | None = None
) -> VariantSpec:
    """Build and check one variant (study defaults merged under its own keys), trained with
    ``seed`` (default: the study's first seed)."""
    where = f"variants.{name}"
    if not VARIANT_NAME.match(name):
        raise ConfigError(
            f"{where}: variant names must start with a letter and use letters, digits and "
            "single '_' ('__' joins a variant to its seed in a job's name)."
        )
    if name in RESERVED_NAMES:
        raise ConfigError(
            f"{where}: {name!r} is reserved (the ingestion and study jobs, the model cache "
            "under 06_models/zoo); rename the variant."
        )
    merged = merge_config(study.get("defaults") or {}, raw or {})
    _check_keys(merged, where)
    task, method = study.get("task", "classification"), merged.get("method", "none")
    _check_method(method, task, where)
    model = merged.get("model", DEFAULT_MODEL)
    check_model_name(model, f"{where}.model")
    mechanism = MechanismSpec.from_config(merged.get("mechanism"), f"{where}.mechanism")
    if model in ALIASES:  # bundled: check shapes now; hub models are checked when loaded
        alias = ALIASES[model]
        mechanism.check_against(alias.num_layers, alias.num_heads, f"{where}.mechanism")
    return VariantSpec(
        name=name,
        model=model,
        task=task,
        mechanism=mechanism,
        method=method,
        training=_training(
            merged.get("training"),
            task,
            f"{where}.training",
            study_seeds(study)[0] if seed is None else seed,
        ),
        lora=validated(LoraSpec, merged.get("lora"), f"{where}.lora"),
        trust_remote_code=merged.get("trust_remote_code", False),
        allow_pickle=merged.get("allow_pickle", False),
    )


def parse_study(params: dict[str, Any]) -> dict[str, VariantSpec]:
    """Check every variant and the reference; return them by name, in config order."""
    variants = params.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise ConfigError(
            "variants: declare at least one variant, e.g. `variants: {base: {method: head}}`."
        )
    study = params.get("study") or {}
    study_seeds(study)  # checked before any variant
    specs = {name: parse_variant(name, raw, study) for name, raw in variants.items()}
    reference = study_reference(params)
    if reference not in specs:
        raise ConfigError(
            f"study.reference: {reference!r} is not a variant; allowed: {', '.join(specs)}."
        )
    return specs


def study_reference(params: dict[str, Any]) -> str | None:
    """``study.reference``, else the first variant (``None`` without variants)."""
    variants = params.get("variants") or {}
    return (params.get("study") or {}).get("reference", next(iter(variants), None))


def study_seeds(study: dict[str, Any]) -> tuple[int, ...]:
    """``study.seeds``: the seeds every variant is trained with, one job each (checked)."""
    seeds = study.get("seeds", list(DEFAULT_SEEDS))
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    valid = isinstance(seeds, list | tuple) and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds
    )
    if not valid or not seeds:
        raise ConfigError(
            f"study.seeds: expected a list of whole numbers >= 0, got {seeds!r}; "
            "e.g. `seeds: [42, 43, 44]`."
        )
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"study.seeds: {list(seeds)} repeats a seed; list each seed once.")
    return tuple(seeds)
