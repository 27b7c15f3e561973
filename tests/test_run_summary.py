"""The lines a run ends with."""

from __future__ import annotations

import pandas as pd

from attention_lab.run_summary import summary_lines


def test_the_summary_names_each_variant_its_interval_the_report_and_the_commands():
    performance = pd.DataFrame(
        {
            "variant": ["base", "mqa_lora"],
            "method": ["none", "lora"],
            "mechanism": ["mha", "mqa"],
            "perplexity": [20.04, 31.5],
            "perplexity_ci_low": [18.0, 28.25],
            "perplexity_ci_high": [22.5, 35.0],
            "kv_bytes_per_token": [46080.0, 15360.0],
        }
    )
    lines = summary_lines(performance, "data/llm/08_reporting/attention_report.html", "llm")
    assert lines[0].startswith("Results (perplexity")
    assert "20.040 (18.000 to 22.500), KV 46,080 bytes/token" in lines[1]
    assert "mqa_lora" in lines[2] and "KV 15,360" in lines[2]
    assert "Report: data/llm/08_reporting/attention_report.html" in lines
    assert 'Dashboard: make dashboard ARGS="--env llm"  (or python -m dashboard --env llm)' in lines
