"""Kedro's ``OmegaConfigLoader``, with parameters merged into ``conf/base`` key by key.

Kedro's default replaces a whole top-level key, so a ``conf/local`` that overrides only
``ingestion.source`` would silently drop the base's split caps and probe count. Parameters
here merge softly (nested keys are kept unless overridden), with one exception: an env's
``variants`` replace the base's as a whole, because a study's set of variants is one decision
(the ``test`` env must not inherit the default study's six variants).
"""

from __future__ import annotations

from typing import Any

from kedro.config import OmegaConfigLoader

REPLACED_WHOLE = ("variants",)


class StudyConfigLoader(OmegaConfigLoader):
    def __init__(self, *args, merge_strategy: dict[str, str] | None = None, **kwargs):
        super().__init__(
            *args, merge_strategy={"parameters": "soft", **(merge_strategy or {})}, **kwargs
        )

    def _merge_configs(
        self, config: dict[str, Any], env_config: dict[str, Any], key: str, env_path: str
    ) -> Any:
        merged = super()._merge_configs(config, env_config, key, env_path)
        if key == "parameters":
            for name in REPLACED_WHOLE:
                if name in env_config:
                    merged[name] = env_config[name]
        return merged
