"""The documented "your own data" recipe (docs/installation.md), on a messy spreadsheet export."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import PROJECT
from tests.runs import data_root, kedro

pytestmark = pytest.mark.slow

RECIPE = PROJECT / "docs" / "installation.md"


def recipe() -> dict:
    """The first YAML block under "## Your own data"."""
    section = RECIPE.read_text().split("## Your own data", 1)[1]
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))


def messy_csv(path) -> None:
    """A BOM, spaced header names, a row without label, one without text, case-variant labels."""
    spellings = {"positive": ["Positive", "positive "], "negative": ["NEGATIVE", "negative"]}
    rows = []
    for i in range(56):
        sentiment = ("positive", "negative")[i % 2]
        word = "wonderful" if sentiment == "positive" else "dreadful"
        rows.append(f'"a {word} film, review {i}",{spellings[sentiment][i // 2 % 2]}')
    rows += ['"a film without a verdict",', ",Positive"]
    path.write_bytes(("\ufeffreview , verdict \n" + "\n".join(rows) + "\n").encode())


def test_recipe_runs_end_to_end_and_stops_with_one_line_without_its_label_map(
    tmp_path, scratch_env
):
    csv = tmp_path / "my_reviews.csv"
    messy_csv(csv)
    params = recipe()
    params["ingestion"]["source"]["path"] = str(csv)

    env = scratch_env(yaml.safe_dump(params))
    kedro(*env.args)
    report = json.loads((data_root(env) / "02_intermediate/ingestion_report.json").read_text())
    assert report["label_names"] == ["negative", "positive"]
    assert (report["dropped_empty_text"], report["dropped_missing_label"]) == (1, 1)
    assert report["relabelled"] == 42  # every spelling but the canonical `negative`
    assert (data_root(env) / "08_reporting/attention_report.html").is_file()

    del params["ingestion"]["source"]["label_map"]
    bare = scratch_env(yaml.safe_dump(params))
    result = kedro(*bare.args, "--pipeline=ingestion", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "differ only in case or spaces" in errors[0]
    assert not (data_root(bare) / "03_primary/corpus.parquet").exists()
