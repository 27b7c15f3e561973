"""A refactor keeps every output: the `test` env run at HEAD against the same run of a
baseline commit, in a git worktree of it, on this machine: every parquet table and JSON file
(figures, summaries, metrics) to the last float and every stored map exactly, except what
measures the machine (:mod:`tests.outputs.compare`)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import KEDRO, PROJECT
from tests.outputs.compare import differences, outputs

# the last commit before the typed-contracts refactor (#27). Move it forward, in the same
# commit, when a change alters an output on purpose, and say so in the commit message.
BASELINE = "716bee17f00bacadd3ede174454822de1999094d"

pytestmark = pytest.mark.slow


def git(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    if git("cat-file", "-e", f"{BASELINE}^{{commit}}").returncode != 0:
        pytest.skip(
            f"baseline {BASELINE[:7]} is not in this clone (shallow?): git fetch --unshallow"
        )
    folder = tmp_path_factory.mktemp("baseline")
    tree, data = folder / "tree", folder / "data"
    added = git("worktree", "add", "--detach", str(tree), BASELINE)
    assert added.returncode == 0, added.stderr
    try:
        env_dir = tree / "conf" / "identical"
        shutil.copytree(tree / "conf" / "test", env_dir)
        (env_dir / "globals.yml").write_text(f"data_root: {data}\n")
        # the baseline's own package first on the path: its code, this checkout's installs;
        # its own conf/ (where the env above is), not the tests' temporary copy
        environment = {**os.environ, "PYTHONPATH": str(tree / "src")}
        environment.pop("ATTENTION_LAB_CONF_SOURCE", None)
        result = subprocess.run(
            [KEDRO, "run", "--env=identical"],
            cwd=tree,
            env=environment,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield data
    finally:
        git("worktree", "remove", "--force", str(tree))


def test_the_test_env_run_is_identical_to_the_baseline_commits(test_env_run, baseline_run):
    compared = outputs(test_env_run)
    kinds = {name.rsplit(".", 1)[-1] for name in compared}
    assert {"parquet", "json", "zip"} <= kinds, kinds  # tables, figures and stores are all there
    found = differences(baseline_run, test_env_run)
    assert not found, "\n".join(found[:20])
