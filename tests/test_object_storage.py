"""A study on object storage: `data_root: s3://...` against a real S3 API (moto's server mode,
on 127.0.0.1), opened with s3fs and the credentials in Kedro's credentials.yml."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import dashboard.app
from attention_lab.datasets.store import AttentionStore
from dashboard.selection import Selection
from tests.conftest import BUCKET, PROJECT
from tests.dashboard.conftest import make_study, start_dashboard, stop
from tests.runs import assert_same_run, kedro
from tests.support.endpoint import ask, callback_body, control_inputs, response_value

pytestmark = pytest.mark.slow


def s3_env(scratch_env, options: dict, root: str) -> str:
    """A `test` env whose data_root is ``root`` on the server, its credentials in credentials.yml."""
    env = scratch_env()
    folder = env.folder
    (folder / "globals.yml").write_text(
        yaml.safe_dump({"data_root": root, "storage_credentials": "study_storage"})
    )
    (folder / "credentials.yml").write_text(yaml.safe_dump({"study_storage": options}))
    return env


def test_a_study_on_s3_equals_the_local_one_and_the_dashboard_reads_it(
    test_env_run, scratch_env, s3, tmp_path
):
    import s3fs

    root = f"s3://{BUCKET}/study"
    env = s3_env(scratch_env, s3, root)
    kedro(*env.args)

    fs = s3fs.S3FileSystem(**s3)
    written = fs.find(f"{BUCKET}/study")
    for part in (
        "06_models/lora/seed7/attention_lab.json",
        "07_model_output/lora/seed7/attention.zarr.zip",
        "08_reporting/performance.parquet",
        "08_reporting/attention_report.html",
    ):
        assert f"{BUCKET}/study/{part}" in written, part
    assert not (PROJECT / "s3:").exists()  # no URL was taken for a local path
    fs.get(f"{BUCKET}/study/", str(tmp_path / "copy"), recursive=True)
    assert_same_run(tmp_path / "copy", test_env_run)

    # read in place: a store straight from S3, then the dashboard serving the env
    on_s3 = AttentionStore(f"{root}/07_model_output/lora/seed7/attention.zarr.zip", s3)
    local = AttentionStore(str(test_env_run / "07_model_output/lora/seed7/attention.zarr.zip"))
    example = local.example_ids[0]
    np.testing.assert_array_equal(
        on_s3.attention(example, "encoder"), local.attention(example, "encoder")
    )
    figure = compare_figure_served(env, tmp_path, example)
    base = AttentionStore(str(test_env_run / "07_model_output/base/seed7/attention.zarr.zip"))
    expected = local.attention(example, "encoder", 2, 3) - base.attention(example, "encoder", 2, 3)
    np.testing.assert_allclose(np.asarray(figure["data"][2]["z"], dtype=float), expected, atol=1e-6)


def compare_figure_served(env: str, tmp_path, example: str) -> dict:
    """The compare view's figure (base vs lora, layer 2, head 3) from a dashboard on ``env``."""
    proc, url = start_dashboard("--env", env, "--conf-source", str(env.conf))
    try:
        selection = Selection(
            a="base", b="lora", example=example, kind="encoder", layer=2, head="3"
        )
        body = callback_body(  # the callback map is the same for any study
            dashboard.app.create_app(data=make_study(tmp_path)),
            "compare-graph.figure",
            control_inputs(selection),
        )
        return response_value(ask(url, body), "compare-graph", "figure")
    finally:
        stop(proc)


def test_a_missing_bucket_stops_the_run_before_any_work_and_is_not_created(s3):
    import s3fs

    from attention_lab.errors import ConfigError
    from attention_lab.hooks import check_writable

    check_writable(f"s3://{BUCKET}/study", s3)  # the bucket exists: passes, leaves nothing
    fs = s3fs.S3FileSystem(**s3)
    assert fs.find(BUCKET) == []
    with pytest.raises(ConfigError, match="'s3://no-such-bucket/study' cannot be written"):
        check_writable("s3://no-such-bucket/study", s3)
    fs.invalidate_cache()
    assert "no-such-bucket" not in fs.ls("")
