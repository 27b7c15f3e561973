"""Project hooks: remember the run's configuration and validate parameters before any work."""

from __future__ import annotations

import logging

from kedro.framework.hooks import hook_impl

from attention_lab.variants import parse_study

logger = logging.getLogger(__name__)


class ConfigHooks:
    """Lets :mod:`pipeline_registry` build namespaces from the *active* env's variants."""

    config_loader = None

    @hook_impl
    def after_context_created(self, context) -> None:
        ConfigHooks.config_loader = context.config_loader

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        params = catalog.load("parameters")
        specs = parse_study(params)  # raises ConfigError naming variant, key and allowed values
        logger.info("Study: %d variant(s): %s", len(specs), ", ".join(specs))
