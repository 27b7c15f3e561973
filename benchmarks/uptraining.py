"""How far uptraining takes a converted SmolLM2: perplexity against optimizer steps.

The `llm` study trains each variant for 8 steps (16 BBC articles of 512 tokens, batch 2:
8,192 tokens). This script goes on past that budget for the converted variants, with the
same data, batch, learning rate and distillation objective (AdamW at a constant rate, where
the study's Trainer decays it linearly to 0 over its 8 steps), and evaluates the test split's
perplexity at a few step counts, so the distance to a target (multi-query within 1.5x the base model's
perplexity) is a curve, not a guess. Each recipe is compared with the base model's
perplexity measured in the same run.

    python benchmarks/uptraining.py            # about 25 minutes here
    python benchmarks/uptraining.py --steps 16 --recipes mqa_calibrated
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
# name -> (mechanism, modules trained whole beside LoRA)
RECIPES = {
    "mqa_calibrated": ({"name": "mqa", "pooling": "calibrated"}, None),
    "mqa_calibrated_kv": ({"name": "mqa", "pooling": "calibrated"}, ["k_proj", "v_proj"]),
    "mla96": ({"name": "mla", "rank": 96, "rope_pairs": 4}, None),
}
CHECKPOINTS = (0, 8, 16, 32, 48)


def study_inputs():
    """The llm study's settings, tokenizer-free: its corpus and its variant defaults."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT, env="llm") as session:
        context = session.load_context()
        return context.catalog.load("corpus"), context.params["study"]


@torch.no_grad()
def perplexity(model, tokenizer, texts: list[str], length: int) -> float:
    """exp of the mean next-token loss over the texts, each read to ``length`` tokens."""
    model.eval()
    total, count = 0.0, 0
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=length, return_tensors="pt")["input_ids"]
        loss = model(input_ids=ids, labels=ids).loss
        total, count = total + float(loss) * (ids.shape[1] - 1), count + ids.shape[1] - 1
    return math.exp(total / count)


def curve(recipe: str, corpus, study: dict, max_steps: int) -> list[dict]:
    """Perplexity at each checkpoint up to ``max_steps`` for one recipe."""
    from attention_lab.attention.fast_path import fast_attention
    from attention_lab.training.distillation import distillation_loss
    from attention_lab.training.fine_tune import base_teacher, build, label_names
    from attention_lab.variants import parse_variant

    mechanism, whole = RECIPES[recipe]
    lora = {"train_fully": whole} if whole else {}
    variant = {"method": "lora", "mechanism": mechanism, "lora": lora}
    spec = parse_variant(recipe, {**variant, "training": {"objective": "distill"}}, study)
    t = spec.training
    train = corpus.loc[corpus["split"] == "train", "text"].tolist()
    test = corpus.loc[corpus["split"] == "test", "text"].tolist()
    torch.manual_seed(t.seed)
    model, tokenizer = build(spec, label_names(corpus), train)
    teacher = base_teacher(spec)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=t.learning_rate, weight_decay=t.weight_decay)
    encoded = [tokenizer(x, truncation=True, max_length=t.max_length)["input_ids"] for x in train]
    rows, step, start = [], 0, time.perf_counter()
    generator = torch.Generator().manual_seed(t.seed)
    while True:
        if step in CHECKPOINTS or step == max_steps:
            with fast_attention(model):
                rows.append(
                    {
                        "recipe": recipe,
                        "step": step,
                        "tokens": step * t.batch_size * t.max_length,
                        "perplexity": perplexity(model, tokenizer, test, t.max_length),
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )
            print(rows[-1], flush=True)
        if step >= max_steps:
            return rows
        order = torch.randperm(len(encoded), generator=generator).tolist()
        for first in range(0, len(order) - t.batch_size + 1, t.batch_size):
            batch = [encoded[i] for i in order[first : first + t.batch_size]]
            length = min(len(b) for b in batch)  # real tokens only: no padding to mask
            ids = torch.tensor([b[:length] for b in batch])
            model.train()
            with fast_attention(model), fast_attention(teacher.model):
                loss = distillation_loss(
                    model(input_ids=ids).logits, teacher.logits({"input_ids": ids}), None
                )
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            if step in CHECKPOINTS or step == max_steps:
                break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=CHECKPOINTS[-1])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    args = parser.parse_args()
    from attention_lab.models.loading import load_model, load_tokenizer

    corpus, study = study_inputs()
    test = corpus.loc[corpus["split"] == "test", "text"].tolist()
    base = perplexity(
        load_model("smollm2-135m", "causal_lm"), load_tokenizer("smollm2-135m"), test, 512
    )
    print({"base_perplexity": base}, flush=True)
    rows = [r for recipe in args.recipes for r in curve(recipe, corpus, study, args.steps)]
    for row in rows:
        row["ratio_to_base"] = round(row["perplexity"] / base, 2)
    print(f"\n{'recipe':<20}{'step':>6}{'tokens':>8}{'perplexity':>12}{'x base':>8}")
    for row in rows:
        print(
            f"{row['recipe']:<20}{row['step']:>6}{row['tokens']:>8}{row['perplexity']:>12.1f}"
            f"{row['ratio_to_base']:>8.2f}"
        )
    out = RESULTS / "uptraining.json"
    out.write_text(json.dumps({"base_perplexity": base, "curve": rows}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
