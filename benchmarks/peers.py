"""Side by side with the tools researchers use today: every layer's and head's attention maps.

The same model (the bundled SmolLM2-135M: 30 layers, 9 query heads, 3 key/value heads) and the
same token ids (BBC News articles joined to 64, 512 and 2,048 tokens, 8 examples per length,
written once to a JSON file every process reads) go through each tool's documented way:

- ``project``: this project's extraction into its store (defaults: streamed a layer at a time
  at long lengths, 11-bit grid, float16, zstd), as ``benchmarks/long_context.py`` calls it;
- ``transformers``: ``model(ids, output_attentions=True)`` with eager attention (what BertViz
  takes);
- ``nnsight``: ``LanguageModel.trace``, saving each layer's attention weights;
- ``transformer_lens``: ``TransformerBridge.boot_transformers`` (TransformerLens 4's
  ``HookedTransformer``) on the loaded model, ``run_with_cache`` on the ``hook_pattern`` points;
- ``inseq``: ``inseq.load_model(model, "attention")``, the text attributed as the generation
  that follows its first token.

Each (tool, length) runs in its own fresh process (``benchmarks/peers_worker.py``) under a
timeout, one example at a time, with one torch thread. Measured: the seconds of the loop over
the examples (after loading and an 8-token warm-up), the process's peak resident set
(``VmHWM``) right after it, and, on the first example of each length, the largest absolute
difference of the tool's maps from the project's exact ones (the project's extraction with no
grid, float32), over every layer, head and cell. A tool that fails keeps its row, with its
error. The project and transformers run in the project's environment; nnsight and
TransformerLens in ``.venv-peers``, Inseq in ``.venv-inseq`` (its typeguard pin clashes with
TransformerLens'): ``make setup-peers``.

    python benchmarks/peers.py [--lengths 64 512 2048] [--examples 8] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("peers_worker.py")
MODEL = "smollm2-135m"


@dataclass(frozen=True)
class Tool:
    name: str
    venv: str | None  # None: the interpreter running this script (the project's)
    way: str


TOOLS = [
    Tool("project", None, "extraction into the attention store (defaults)"),
    Tool("transformers", None, "model(ids, output_attentions=True), eager"),
    Tool("nnsight", ".venv-peers", "LanguageModel.trace, layers[i].self_attn.output[1].save()"),
    Tool("transformer_lens", ".venv-peers", "TransformerBridge.run_with_cache, hook_pattern"),
    Tool("inseq", ".venv-inseq", 'inseq.load_model(model, "attention").attribute'),
]


def python_of(tool: Tool) -> Path:
    return Path(sys.executable) if tool.venv is None else ROOT / tool.venv / "bin" / "python"


def plan(lengths: list[int], examples: int, timeout: int) -> list[str]:
    """What a run does, without loading anything."""
    lines = [
        f"Plan: {len(TOOLS)} tools x {len(lengths)} lengths ({', '.join(map(str, lengths))} "
        f"tokens) x {examples} examples of {MODEL}; one fresh process per (tool, length), "
        f"timeout {timeout} s each, one torch thread",
        "",
    ]
    for tool in TOOLS:
        python = python_of(tool)
        shown = python.relative_to(ROOT) if python.is_relative_to(ROOT) else python
        missing = "" if python.exists() else "  (missing: make setup-peers)"
        lines.append(f"{tool.name:<17} {shown}{missing}\n{'':<17} {tool.way}")
    lines.append("")
    for length in lengths:
        lines.append(f"{length:>5} tokens: {', '.join(tool.name for tool in TOOLS)}")
    return lines


def write_inputs(path: Path, lengths: list[int], examples: int) -> str:
    """Texts and their token ids (the project's tokenizer, cut to each length); the model folder."""
    from long_context import long_texts

    from attention_lab.models.loading import load_tokenizer
    from attention_lab.models.zoo import resolve

    folder = str(Path(resolve(MODEL)).resolve())
    tokenizer = load_tokenizer(MODEL)
    data = {"model": folder, "lengths": {}}
    for length in lengths:
        texts = list(long_texts(examples, length, tokenizer)["text"])
        ids = [tokenizer(t, truncation=True, max_length=length)["input_ids"] for t in texts]
        assert all(len(i) == length for i in ids), "a text is shorter than the length"
        data["lengths"][str(length)] = {"texts": texts, "ids": ids}
    path.write_text(json.dumps(data))
    return folder


def first_to_kill() -> None:
    """Out of memory, the kernel ends this benchmark's process before a job beside it."""
    Path("/proc/self/oom_score_adj").write_text("1000")


def child_peak_mb(pid: int) -> float:
    """A running child's ``VmHWM`` (0 once it is gone): what a killed child had reached."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1]) / 1024


def run_worker(tool: Tool, length: int, folder: str, work: Path, args) -> dict:
    """One (tool, length) in a fresh process; its JSON line, or its failure as an error (with
    the peak it had reached, read every half second)."""
    command = [
        str(python_of(tool)),
        str(WORKER),
        tool.name,
        *("--model", folder, "--inputs", str(work / "inputs.json"), "--length", str(length)),
        *("--reference", str(work / f"reference-{length}.npy"), "--threads", str(args.threads)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    row, start, seen = {"tool": tool.name, "length": length}, time.perf_counter(), 0.0
    try:
        child = subprocess.Popen(
            command,
            stdout=PIPE,
            stderr=PIPE,
            text=True,
            env=env,
            cwd=ROOT,
            preexec_fn=first_to_kill,
        )
    except OSError as exc:  # the peers' environment is missing
        return {**row, "error": f"{type(exc).__name__}: {exc}"}
    while True:
        try:
            stdout, stderr = child.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            seen = max(seen, child_peak_mb(child.pid))
            if time.perf_counter() - start > args.timeout:
                child.kill()
                child.communicate()
                return {**row, "error": f"timed out after {args.timeout} s", "peak_mb_seen": seen}
    row["process_s"] = time.perf_counter() - start
    lines = stdout.strip().splitlines()
    if child.returncode == 0 and lines:
        return {**row, **json.loads(lines[-1])}
    killed = -child.returncode if child.returncode < 0 else None
    cause = f"killed by {signal.Signals(killed).name}" if killed else f"exit {child.returncode}"
    if killed == signal.SIGKILL:
        cause += f" (out of memory?) at {seen:,.0f} MB resident or more"
    return {**row, "error": f"{cause}: {stderr.strip()[-300:]}", "peak_mb_seen": seen}


def ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value is not None and base else "-"


def table(results: list[dict]) -> list[tuple[str, ...]]:
    rows = [("tokens", "tool", "seconds", "vs project", "peak MB", "vs project", "max |diff|")]
    # the project's own diff is its store's (11-bit grid, float16) from its exact maps
    for row in results:
        same = (r for r in results if r["tool"] == "project" and r["length"] == row["length"])
        base = next(same, {})
        if row.get("error"):
            rows.append(
                (str(row["length"]), row["tool"], "failed: " + row["error"][:60], *[""] * 4)
            )
            continue
        rows.append(
            (
                str(row["length"]),
                row["tool"],
                f"{row['seconds']:.1f}",
                ratio(row["seconds"], base.get("seconds")),
                f"{row['peak_mb']:,.0f}",
                ratio(row["peak_mb"], base.get("peak_mb")),
                f"{row['max_abs_diff']:.1e}" if row.get("max_abs_diff") is not None else "-",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 512, 2048])
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--tools", nargs="+", default=[t.name for t in TOOLS])
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    args = parser.parse_args()
    print("\n".join(plan(args.lengths, args.examples, args.timeout)), flush=True)
    if args.dry_run:
        return
    tools = [t for t in TOOLS if t.name in args.tools]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as folder:
        work = Path(folder)
        model = write_inputs(work / "inputs.json", args.lengths, args.examples)
        for length in args.lengths:
            for tool in tools:  # the project first: it writes the reference maps
                results.append(run_worker(tool, length, model, work, args))
                shown = {k: results[-1].get(k) for k in ("seconds", "peak_mb", "max_abs_diff")}
                print(f"{length} {tool.name}: {shown} {results[-1].get('error') or ''}", flush=True)
            (work / f"reference-{length}.npy").unlink(missing_ok=True)
    data = {
        "machine": f"{os.cpu_count()}-core CPU, no GPU, shared with another heavy job during "
        f"the run; {args.threads} torch thread(s) per process, one process at a time",
        "model": MODEL,
        "lengths": args.lengths,
        "examples": args.examples,
        "timeout_s": args.timeout,
        "seconds": "the loop over the examples, one at a time, after loading and a warm-up",
        "peak_mb": "VmHWM of the tool's process right after that loop",
        "max_abs_diff": "first example of each length, every layer, head and cell, float32, "
        "against the project's exact maps (no grid, float32); Inseq returns T - 1 query rows",
        "versions": {r["tool"]: r["versions"] for r in results if r.get("versions")},
        "results": results,
    }
    print(
        f"\nPeers benchmark: {MODEL}, every layer and head, {args.examples} examples per length\n"
    )
    report("peers", table(results), data)


if __name__ == "__main__":
    main()
