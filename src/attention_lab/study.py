"""A study's shape: its jobs (variant × seed), what each is compared with, and the names of
what the study-level step reads from each job. Read from the parameters that
:mod:`attention_lab.variants` checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attention_lab.variants import DEFAULT_MODEL, merge_config, study_reference, study_seeds


def references(params: dict[str, Any]) -> dict[str, str]:
    """Each variant's reference: ``study.reference`` when it shares that variant's base model,
    else the first variant (in config order) of its own base model.

    Maps of different base models have different tokens and shapes, so a study that compares
    two checkpoints (SmolLM2 and Gemma-3 in ``llm``) compares each variant within its model.
    """
    variants = params.get("variants") or {}
    if not variants:
        return {}
    default = ((params.get("study") or {}).get("defaults") or {}).get("model", DEFAULT_MODEL)

    def model(name: str) -> Any:  # as parse_variant merges it
        return (variants[name] or {}).get("model", default)

    first_of: dict[Any, str] = {}
    for name in variants:
        first_of.setdefault(model(name), name)
    reference = study_reference(params)
    if reference in variants:
        first_of[model(reference)] = reference
    return {name: first_of[model(name)] for name in variants}


@dataclass(frozen=True)
class Job:
    """One training run: a variant trained, evaluated, extracted and analysed with one seed.

    Its name is its Kedro namespace (``lora__seed43``): one job each for ``--namespaces`` and
    one Airflow task each; no job reads another's namespace.
    """

    variant: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.variant}__seed{self.seed}"

    def with_variant(self, variant: str) -> Job:
        """The same seed of another variant (its reference's run, paired by seed)."""
        return Job(variant, self.seed)


def jobs(params: dict[str, Any]) -> list[Job]:
    """Every (variant, seed) pair, variant by variant in config order."""
    seeds = study_seeds(params.get("study") or {})
    return [Job(variant, seed) for variant in params.get("variants") or {} for seed in seeds]


def exported(owner: str | Job, name: str) -> str:
    """The catalog name of a job's (or a variant's) dataset that the study-level step reads:
    ``lora__seed42__attention``, ``lora__head_changes``. Undotted, because Kedro reserves
    ``lora__seed42.x`` for what stays inside that job's namespace; so one job never needs
    another's namespace."""
    return f"{owner.name if isinstance(owner, Job) else owner}__{name}"


def _mechanism_of(raw: Any) -> dict[str, Any]:
    """A variant's mechanism as a mapping (``mqa`` and ``{name: mqa}`` are one mechanism)."""
    if raw is None:
        return {"name": "mha"}
    return {"name": raw} if isinstance(raw, str) else dict(raw)


@dataclass(frozen=True)
class Study:
    """The study's shape: its variants, seeds, jobs and what each is compared with.

    Read leniently from the raw parameters (the pipelines are built before the parameters are
    checked; :func:`parse_study` stops a run with a wrong value before any work).
    """

    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    references: dict[str, str]  # variant -> the variant it is compared with
    recipes: dict[str, tuple[Any, str, dict]]  # variant -> (base model, method, mechanism)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Study:
        variants = params.get("variants") or {}
        study = params.get("study") or {}
        defaults = study.get("defaults") or {}

        def recipe(name: str) -> tuple[Any, str, dict]:
            merged = merge_config(defaults, variants[name] or {})
            return (
                merged.get("model", DEFAULT_MODEL),
                merged.get("method", "none"),
                _mechanism_of(merged.get("mechanism")),
            )

        return cls(
            variants=tuple(variants),
            seeds=study_seeds(study),
            references=references(params),
            recipes={name: recipe(name) for name in variants},
        )

    @property
    def jobs(self) -> list[Job]:
        return [Job(v, s) for v in self.variants for s in self.seeds]

    def jobs_of(self, variant: str) -> list[Job]:
        return [Job(variant, s) for s in self.seeds]

    @property
    def has_pairs(self) -> bool:
        """Whether there are two seeds to compare (the attention noise floor needs them)."""
        return len(self.seeds) > 1

    def reference_of(self, variant: str) -> str:
        return self.references[variant]

    def reference_job(self, job: Job) -> Job:
        """The reference's run with the job's own seed: comparisons are paired by seed."""
        return job.with_variant(self.references[job.variant])

    def mechanism_pairs(self) -> list[tuple[str, str]]:
        """Every pair of variants of one base model and fine-tuning method whose attention
        mechanisms differ, in config order: what question 1 compares."""
        names = self.variants
        return [
            (a, b)
            for i, a in enumerate(names)
            for b in names[i + 1 :]
            if self.recipes[a][:2] == self.recipes[b][:2]
            and self.recipes[a][2] != self.recipes[b][2]
        ]
