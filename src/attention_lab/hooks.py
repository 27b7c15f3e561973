"""Project hooks: readable errors, and parameters validated before any work."""

from __future__ import annotations

import logging
import sys

from kedro.framework.hooks import hook_impl

from attention_lab.errors import AttentionLabError
from attention_lab.variants import parse_study

logger = logging.getLogger(__name__)


class ConfigHooks:
    @hook_impl
    def after_context_created(self, context) -> None:
        install_excepthook()

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        params = catalog.load("parameters")
        specs = parse_study(params)  # raises ConfigError naming variant, key and allowed values
        logger.info("Study: %d variant(s): %s", len(specs), ", ".join(specs))


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
