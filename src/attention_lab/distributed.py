"""Train one job (a variant and a seed) with several processes, then hand its outputs to the usual job.

    torchrun --nproc_per_node=2 -m attention_lab.distributed --variant lora [--seed 43] [--env ENV]
    kedro run --namespaces=lora__seed43 \
        --from-nodes=lora__seed43.extract_attention,lora__seed43.compute_head_importance

Every process trains: distributed data parallel through transformers' ``Trainer`` (gloo on
CPUs, nccl on GPUs). Each process takes ``batch_size / N`` examples per step, so the global
batch and the number of optimizer steps are those of a single process; only the order in
which examples are drawn differs. Rank 0 alone evaluates and writes ``{job}.model``,
``{job}.metrics`` and ``{job}__predictions`` through the catalog; the other ranks write nothing.
Without ``--seed``, the study's first seed.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import replace
from pathlib import Path

from attention_lab.errors import ConfigError

logger = logging.getLogger(__name__)
PROJECT = Path(__file__).resolve().parents[2]


def per_process(spec, processes: int):
    """``spec`` with each process's share of the batch; the global batch is unchanged."""
    batch = spec.training.batch_size
    if batch % processes:
        raise ConfigError(
            f"variants.{spec.name}.training.batch_size {batch} does not divide among {processes} "
            f"processes; use a multiple of {processes}."
        )
    return replace(spec, training=replace(spec.training, batch_size=batch // processes))


def train_variant(
    variant: str, env: str | None, seed: int | None = None, conf_source: str | None = None
) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from attention_lab.session_env import record_conf_source
    from attention_lab.study import Job, exported
    from attention_lab.training.fine_tune import evaluate_artifact, fine_tune_variant
    from attention_lab.training.fine_tune import processes as training_processes
    from attention_lab.variants import parse_variant, study_seeds

    rank, processes = int(os.environ.get("RANK", 0)), training_processes()
    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT, env=env, conf_source=conf_source) as session:
        record_conf_source(conf_source)
        context = session.load_context()
        params, catalog = context.params, context.catalog
        if variant not in (params.get("variants") or {}):
            raise ConfigError(f"--variant {variant!r} is not a variant of this study.")
        study = params.get("study") or {}
        seeds = study_seeds(study)
        if seed is not None and seed not in seeds:
            raise ConfigError(f"--seed {seed} is not in study.seeds {list(seeds)}.")
        job = Job(variant, seeds[0] if seed is None else seed)
        spec = parse_variant(variant, params["variants"][variant], study, seed=job.seed)
        corpus = catalog.load("corpus")
        trained, log = fine_tune_variant(per_process(spec, processes), corpus)
        if rank != 0:
            logger.info("rank %d of %d: trained; rank 0 writes the outputs", rank, processes)
            return
        catalog.save(f"{job.name}.model", trained)
        metrics, predictions = evaluate_artifact(
            catalog.load(f"{job.name}.model"), corpus, log | {"processes": processes}
        )
        catalog.save(f"{job.name}.metrics", metrics)
        catalog.save(exported(job, "predictions"), predictions)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", required=True)
    parser.add_argument(
        "--seed", type=int, default=None, help="one of study.seeds (default: the first)"
    )
    parser.add_argument("--env", default=None)
    parser.add_argument("--conf-source", default=None, help="configuration outside conf/")
    args = parser.parse_args(argv)
    from attention_lab.hooks import install_excepthook

    install_excepthook()
    train_variant(args.variant, args.env, args.seed, args.conf_source)


if __name__ == "__main__":
    main()
