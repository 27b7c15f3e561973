"""`benchmarks/peers.py --dry-run` plans every tool at every length without loading a model."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import PROJECT

TOOLS = ["project", "transformers", "nnsight", "transformer_lens", "inseq"]


def test_dry_run_plans_every_tool_at_every_length():
    result = subprocess.run(
        [sys.executable, "benchmarks/peers.py", "--dry-run"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    runs = {
        int(line.split("tokens:")[0]): [t.strip() for t in line.split("tokens:")[1].split(",")]
        for line in result.stdout.splitlines()
        if "tokens:" in line
    }
    assert runs == {length: TOOLS for length in (64, 512, 2048)}
    for tool in TOOLS:  # each with the interpreter it runs in
        assert any(line.startswith(f"{tool} ") for line in result.stdout.splitlines()), tool
    assert "8 examples" in result.stdout
