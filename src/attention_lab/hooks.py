"""Project hooks: readable errors, and parameters validated before any work."""

from __future__ import annotations

import logging
import sys
import uuid

import fsspec
from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

from attention_lab.errors import AttentionLabError, ConfigError
from attention_lab.location import Location
from attention_lab.models import zoo
from attention_lab.parameters import check_parameters
from attention_lab.run_summary import summary_lines
from attention_lab.variants import parse_study, study_seeds

logger = logging.getLogger(__name__)


class ConfigHooks:
    def __init__(self) -> None:
        self._data_root: str | None = None
        self._storage: dict = {}

    @hook_impl
    def after_context_created(self, context) -> None:
        install_excepthook()
        check_parameters(_config(context.config_loader, "parameters"))
        globals_ = _config(context.config_loader, "globals")
        self._data_root = globals_.get("data_root")
        self._storage = storage_options(context.config_loader, globals_.get("storage_credentials"))
        remote = self._data_root and not Location.of(self._data_root).local
        zoo.share_cache(f"{self._data_root}/06_models/zoo" if remote else None, self._storage)

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        params = catalog.load("parameters")
        specs = parse_study(params)  # raises ConfigError naming variant, key and allowed values
        if self._data_root:
            check_writable(self._data_root, self._storage)
        seeds = study_seeds(params.get("study") or {})
        logger.info(
            "Study: %d variant(s) x %d seed(s) %s: %s",
            len(specs),
            len(seeds),
            list(seeds),
            ", ".join(specs),
        )

    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:
        """A run that built the study's tables ends by saying what they hold and where."""
        if "performance" not in pipeline.all_outputs():
            return
        report = catalog.get("attention_report") if "attention_report" in catalog else None
        where = getattr(report, "_filepath", None) or "attention_report (see the catalog)"
        env = run_params.get("env")
        for line in summary_lines(catalog.load("performance"), str(where), env):
            logger.info(line)


def _config(loader, name: str) -> dict:
    try:
        return dict(loader[name] or {})
    except MissingConfigException:
        return {}


def storage_options(loader, name: str | None) -> dict:
    """The credentials.yml entry ``name`` (globals' ``storage_credentials``) that opens data_root."""
    if not name:
        return {}
    credentials = _config(loader, "credentials")
    if name not in credentials:
        raise ConfigError(
            f"globals.storage_credentials: {name!r} is not in credentials.yml; add it to "
            "conf/local/credentials.yml (or your env's), see docs/scale-out.md."
        )
    return dict(credentials[name])


def check_writable(data_root: str, storage: dict | None = None) -> None:
    """Write and remove a small file under ``data_root``, so a read-only or missing place
    stops the run before any work, with one message.

    A local folder is created if missing. On object storage nothing is created: s3fs would
    create a bucket whose name has a typo, so a missing bucket is an error here."""
    try:
        fs, root = fsspec.core.url_to_fs(data_root, **(storage or {}))
        probe = f"{root.rstrip('/')}/.attention-lab-write-check-{uuid.uuid4().hex[:8]}"
        if "file" in fs.protocol:
            fs.makedirs(root, exist_ok=True)
        with fs.open(probe, "wb") as f:
            f.write(b"ok")
        fs.rm(probe)
    except Exception as exc:  # noqa: BLE001 - OSError, or a storage client's own (botocore)
        reason = getattr(exc, "strerror", None) or f"{type(exc).__name__}: {exc}"
        raise ConfigError(
            f"data_root {data_root!r} cannot be written ({reason}). Point data_root in "
            "conf/<env>/globals.yml at a writable folder or an existing bucket, fix its "
            "permissions, or check storage_credentials and credentials.yml."
        ) from exc


def install_excepthook() -> None:
    """Show our errors as one line a person can act on; anything else keeps its full traceback.

    Installed after Kedro's logging set-up, which replaces ``sys.excepthook`` with rich's.
    """
    previous = sys.excepthook
    if getattr(previous, "_attention_lab", False):
        return

    def hook(exc_type, exc, tb):
        cause = exc
        while cause is not None and not isinstance(cause, AttentionLabError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            print(f"\nError: {cause}", file=sys.stderr)
            return
        previous(exc_type, exc, tb)

    hook._attention_lab = True
    sys.excepthook = hook
