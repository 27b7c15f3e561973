"""Shared fixtures: tiny models built from config, the bundled MiniLM, and one `test`-env run.

Every `kedro` a test starts, and every session a test opens, reads a copy of ``conf/`` in a
temporary folder (``ATTENTION_LAB_CONF_SOURCE``, see the project's settings) whose envs write
there too: the tests leave nothing in the checkout, even when interrupted.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))


def _temporary_conf() -> Path:
    """``conf/`` copied to a temporary folder, each env's data_root moved beside it."""
    root = Path(tempfile.mkdtemp(prefix="attention-lab-tests-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    conf = root / "conf"
    shutil.copytree(PROJECT / "conf", conf, ignore=shutil.ignore_patterns("scratch_*"))
    for globals_file in conf.glob("*/globals.yml"):
        globals_ = yaml.safe_load(globals_file.read_text()) or {}
        if "data_root" in globals_ and "://" not in str(globals_["data_root"]):
            globals_["data_root"] = str(root / globals_["data_root"])
            globals_file.write_text(yaml.safe_dump(globals_, sort_keys=False))
    return conf


# set before anything loads the project's settings, which read it once
CONF = Path(os.environ.setdefault("ATTENTION_LAB_CONF_SOURCE", str(_temporary_conf())))


def free_port(below: int | None = None) -> int:
    """A port on 127.0.0.1 that nothing listens on right now (optionally below ``below``).

    kedro-viz refuses ports above 49151, which the OS often hands out, hence ``below``.
    """
    if below is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for port in random.Random().sample(range(20000, below), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {below}")


# fixtures that run the whole `test` study (or a scratch copy of it), a browser or a server:
# a test that uses one is slow whatever its own marker says, so `pytest -m "not slow"` stays fast
SLOW_FIXTURES = {"test_env_run", "scratch_env", "server", "page", "browser", "s3", "airflow"}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from attention_lab.models.zoo import resolve

    return resolve("minilm")


@pytest.fixture(scope="session")
def bert_tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def tiny_llama(
    num_heads: int = 4, kv_heads: int = 2, vocab: int = 30522, layers: int = 2, seed: int = 0
):
    """A random Llama small enough for exact float comparisons in milliseconds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=8 * num_heads,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=num_heads,
        num_key_value_heads=kv_heads,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
        attention_bias=True,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def test_env_run() -> Path:
    """Run `kedro run --env=test` once per session (about two minutes); returns its data root
    (in the temporary configuration's folder), emptied first."""
    root = data_of_test_env()
    shutil.rmtree(root, ignore_errors=True)
    result = subprocess.run(
        [KEDRO, "run", "--env=test"], cwd=PROJECT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root


def data_of_test_env() -> Path:
    """Where the `test` env writes while the tests run."""
    return Path(yaml.safe_load((CONF / "test" / "globals.yml").read_text())["data_root"])


BUCKET = "attention-lab"  # the bucket the ``s3`` fixture creates


@pytest.fixture
def s3():
    """moto's S3 server in its own process group, stopped by its id; yields its storage options."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        from tests.support.endpoint import wait_until_answers

        assert wait_until_answers(f"http://127.0.0.1:{port}/", proc, 60), "moto did not start"
        options = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {
                "endpoint_url": f"http://127.0.0.1:{port}",
                "region_name": "us-east-1",
            },
        }
        import boto3

        boto3.client(
            "s3",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **options["client_kwargs"],
        ).create_bucket(Bucket=BUCKET)
        yield options
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


class ScratchEnv(str):
    """A Kedro env (its name, as a ``str``) in a configuration of its own under pytest's
    temporary folder: ``conf`` holds ``base`` (the project's) and the env, so an interrupted
    run leaves nothing in the checkout. ``args`` are ``kedro run``'s options for it."""

    conf: Path

    def __new__(cls, name: str, conf: Path) -> ScratchEnv:
        env = super().__new__(cls, name)
        env.conf = conf
        return env

    @property
    def folder(self) -> Path:
        return self.conf / str(self)

    @property
    def args(self) -> list[str]:
        return [f"--conf-source={self.conf}", f"--env={self}"]


@pytest.fixture
def scratch_env(tmp_path):
    """Make Kedro envs that copy `test` but live and write under ``tmp_path``.

    ``make(parameters=None)`` returns a :class:`ScratchEnv`; ``parameters`` (YAML text) are
    merged over the `test` env's, as a user's own env file would be.
    """
    import uuid

    def make(parameters: str | None = None) -> ScratchEnv:
        name = f"scratch_{uuid.uuid4().hex[:8]}"
        env = ScratchEnv(name, tmp_path / f"conf_{name}")
        shutil.copytree(PROJECT / "conf" / "base", env.conf / "base")
        shutil.copytree(PROJECT / "conf" / "test", env.folder)
        (env.folder / "globals.yml").write_text(f"data_root: {tmp_path / name}\n")
        if parameters:
            merged = _deep_merge(
                yaml.safe_load((env.folder / "parameters.yml").read_text()),
                yaml.safe_load(parameters),
            )
            (env.folder / "parameters.yml").write_text(yaml.safe_dump(merged, sort_keys=False))
        return env

    return make


def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _deep_merge(out[key], value) if nested else value
    return out
