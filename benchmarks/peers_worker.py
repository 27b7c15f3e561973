"""One tool, one input length, in this fresh process: the child of ``benchmarks/peers.py``.

It loads SmolLM2 from the bundled folder, warms the tool up on 8 tokens, then gets every
layer's and head's attention maps of each example the tool's own documented way, one example
at a time (what the tool returns for an example is dropped before the next). It reports the
seconds of that loop, the process's peak resident set (``VmHWM``) read right after it, and
only then, unmeasured, the largest absolute difference between the tool's maps of the first
example and the project's exact float32 maps (a ``.npy`` the ``project`` run of the same
length wrote). The last line of stdout is one JSON object.

Only the ``project`` tool imports ``attention_lab``: the others run in their own
environments (``make setup-peers``), with torch, numpy and their library.

    python benchmarks/peers_worker.py TOOL --model DIR --inputs inputs.json --length 512 \
        --reference ref-512.npy [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

# per tool: the distributions whose versions the result names
PACKAGES = {
    "project": ["attention_lab", "transformers", "torch"],
    "transformers": ["transformers", "torch"],
    "nnsight": ["nnsight", "transformers", "torch"],
    "transformer_lens": ["transformer-lens", "transformers", "torch"],
    "inseq": ["inseq", "transformers", "torch"],
}
WARMUP_TOKENS = 8

# Maps of one example: per layer, a [heads, query, key] tensor (Inseq: one query row fewer).
Layers = Sequence[torch.Tensor]


def memory_mb(field: str = "VmHWM") -> float:
    """This process's peak (``VmHWM``) or current (``VmRSS``) resident set, as
    ``attention_lab.models.costs.peak_memory_mb`` reads it on CPU (not ``ru_maxrss``, which
    carries the parent's peak across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def versions(tool: str) -> dict[str, str]:
    found = {}
    for name in PACKAGES[tool]:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def hf_model(folder: str):
    """The checkpoint with transformers' eager attention (the only one that returns weights)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(folder)


def transformers_tool(folder: str) -> Callable[[list[int]], Layers]:
    """``output_attentions=True``: the per-layer tuple BertViz takes."""
    model, _ = hf_model(folder)

    def extract(ids: list[int]) -> Layers:
        with torch.inference_mode():
            out = model(torch.tensor([ids]), output_attentions=True)
        return [layer[0] for layer in out.attentions]

    return extract


def nnsight_tool(folder: str) -> Callable[[list[int]], Layers]:
    """``LanguageModel.trace``, saving each attention module's weights (its output ``[1]``)."""
    from nnsight import LanguageModel

    model, tokenizer = hf_model(folder)
    traced = LanguageModel(model, tokenizer=tokenizer)

    def extract(ids: list[int]) -> Layers:
        batch = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids))}
        with torch.inference_mode(), traced.trace(batch):
            maps = list().save()
            for layer in traced.model.layers:
                maps.append(layer.self_attn.output[1])
        return [layer[0] for layer in maps]

    return extract


def transformer_lens_tool(folder: str) -> Callable[[list[int]], Layers]:
    """``TransformerBridge.boot_transformers`` (TransformerLens 4's ``HookedTransformer``) on the
    loaded model, then ``run_with_cache`` keeping the ``hook_pattern`` hook points."""
    from transformer_lens.model_bridge import TransformerBridge

    model, tokenizer = hf_model(folder)
    bridge = TransformerBridge.boot_transformers(
        folder, hf_model=model, tokenizer=tokenizer, device="cpu"
    )
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(bridge.cfg.n_layers)]

    def extract(ids: list[int]) -> Layers:
        with torch.inference_mode():
            _, cache = bridge.run_with_cache(
                torch.tensor([ids]), names_filter=lambda name: name.endswith("hook_pattern")
            )
        return [cache[name][0] for name in names]

    return extract


def inseq_tool(folder: str) -> Callable[[list[int]], Layers]:
    """``inseq.load_model(model, "attention")``, attributing the example's text as the
    generation that follows its first token: one forward pass (the method needs only the final
    step), which yields the attention of the T - 1 generation steps, NaN above the diagonal."""
    import inseq

    model, tokenizer = hf_model(folder)
    attribution = inseq.load_model(model, "attention", tokenizer=tokenizer)

    def extract(ids: list[int]) -> Layers:
        text = tokenizer.decode(ids)
        out = attribution.attribute(tokenizer.decode(ids[:1]), text, show_progress=False)
        sequence = out.sequence_attributions[0]
        got = [token.id for token in sequence.target]
        if got != ids:
            raise RuntimeError(f"Inseq tokenized the text to other ids ({len(got)} vs {len(ids)})")
        maps = sequence.target_attributions.permute(2, 3, 1, 0)  # [layers, heads, query, key]
        return list(maps)

    return extract


def project_store(model, tokenizer, texts: list[str], length: int, path: str, exact: bool) -> None:
    """The project's extraction of ``texts`` (cut to ``length`` tokens) into its store, as
    ``benchmarks/long_context.py`` calls it: the defaults (11-bit grid, float16), or ``exact``
    (no grid, float32)."""
    import pandas as pd

    from attention_lab.datasets.store import AttentionStream, write_store
    from attention_lab.extraction.options import ExtractionOptions
    from attention_lab.extraction.run import (
        encode_beside,
        iter_attention,
        padding_side,
        store_metadata,
    )
    from attention_lab.model_info import ModelInfo
    from attention_lab.models.shape import model_shape
    from attention_lab.tasks import get_task

    task, shape = get_task("causal_lm"), model_shape(model)
    params = {"max_length": length, "batch_size": 1, **({"precision_bits": None} if exact else {})}
    opts = ExtractionOptions.parse(params, shape)
    side = padding_side(model, tokenizer, shape)
    meta = store_metadata(model, shape, ModelInfo("peers", "causal_lm", "smollm2"), opts, side)
    probes = pd.DataFrame({"id": [f"p{i}" for i in range(len(texts))], "text": texts, "label": 0})
    examples = iter_attention(model, tokenizer, task, probes, shape, opts, side)
    stream = AttentionStream(meta, examples, background=encode_beside(model))
    write_store(path, stream, dtype="float32" if exact else "float16")


def store_layers(path: str, example: int = 0) -> Iterator[torch.Tensor]:
    """One stored example's maps, a layer at a time (float32 [heads, query, key])."""
    from attention_lab.datasets.store import AttentionStore

    store = AttentionStore(path)
    for i in range(len(store.meta.layers)):
        yield torch.from_numpy(store.attention(example, "decoder", layer=i))


def max_abs_diff(layers: Iterable[torch.Tensor], reference: np.ndarray) -> float:
    """Largest |tool - project| over every layer, head and cell the tool returned."""
    worst = 0.0
    for got, want in zip(layers, reference, strict=True):  # a missing layer raises
        heads, query, key = got.shape
        expected = torch.from_numpy(np.asarray(want[:heads, :query, :key], dtype=np.float32))
        got = got.float().nan_to_num(0.0)  # Inseq: NaN where a causal map holds 0
        worst = max(worst, float((got - expected).abs().max()))
    return worst


def run_project(args, inputs: dict) -> dict:
    """Time the store of all examples; then write the exact maps of the first as the reference."""
    from attention_lab.datasets.store import AttentionStore
    from attention_lab.models.loading import load_model, load_tokenizer

    texts, ids = inputs["texts"], inputs["ids"]
    model, tokenizer = load_model(args.model, "causal_lm").eval(), load_tokenizer(args.model)
    loaded = memory_mb("VmRSS")
    with tempfile.TemporaryDirectory(prefix="peers-project-") as work:
        store, exact = f"{work}/store.zarr.zip", f"{work}/exact.zarr.zip"
        project_store(model, tokenizer, texts[:1], WARMUP_TOKENS, f"{work}/warm.zarr.zip", False)
        start = time.perf_counter()
        project_store(model, tokenizer, texts, args.length, store, exact=False)
        seconds = time.perf_counter() - start
        peak = memory_mb()
        stored = AttentionStore(store)
        if [stored.example_meta(i)["token_ids"] for i in range(len(ids))] != ids:
            raise RuntimeError("the project's store holds other token ids than the inputs file")
        project_store(model, tokenizer, texts[:1], args.length, exact, exact=True)
        layers, heads = len(stored.meta.layers), len(stored.meta.heads)
        shape = (layers, heads, args.length, args.length)
        reference = np.lib.format.open_memmap(args.reference, "w+", np.float32, shape)
        for i, layer in enumerate(store_layers(exact)):
            reference[i] = layer.numpy()
        reference.flush()
        diff = max_abs_diff(store_layers(store), reference)
    return {"seconds": seconds, "peak_mb": peak, "loaded_mb": loaded, "max_abs_diff": diff}


def run_peer(args, inputs: dict) -> dict:
    """Time each example through the tool; then compare the first with the reference."""
    ids = inputs["ids"]
    extract = TOOLS[args.tool](args.model)
    loaded = memory_mb("VmRSS")
    extract(ids[0][:WARMUP_TOKENS])
    start, per_example = time.perf_counter(), []
    for example in ids:
        began = time.perf_counter()
        maps = extract(example)
        per_example.append(time.perf_counter() - began)
        del maps
    seconds = time.perf_counter() - start
    peak = memory_mb()
    diff = None  # without the project's maps (its run failed), nothing to compare with
    if Path(args.reference).exists():
        diff = max_abs_diff(extract(ids[0]), np.load(args.reference, mmap_mode="r"))
    return {
        "seconds": seconds,
        "peak_mb": peak,
        "loaded_mb": loaded,
        "max_abs_diff": diff,
        "per_example_s": per_example,
    }


TOOLS: dict[str, Callable[[str], Callable[[list[int]], Layers]]] = {
    "transformers": transformers_tool,
    "nnsight": nnsight_tool,
    "transformer_lens": transformer_lens_tool,
    "inseq": inseq_tool,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=["project", *TOOLS])
    parser.add_argument("--model", required=True, help="the bundled SmolLM2 folder")
    parser.add_argument("--inputs", required=True, type=Path, help="peers.py's token ids")
    parser.add_argument("--length", required=True, type=int)
    parser.add_argument("--reference", required=True, help="the project's exact maps (.npy)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    inputs = json.loads(args.inputs.read_text())["lengths"][str(args.length)]
    result = {"tool": args.tool, "length": args.length, "examples": len(inputs["ids"])}
    result["versions"] = versions(args.tool)
    try:
        result.update(
            run_project(args, inputs) if args.tool == "project" else run_peer(args, inputs)
        )
        result["error"] = None
    except Exception as exc:  # reported with the row, not dropped
        traceback.print_exc()
        result["error"] = f"{type(exc).__name__}: {exc}"[:500]
        result["peak_mb"] = memory_mb()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
