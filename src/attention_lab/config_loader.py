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


class StudyConfigLoader(OmegaConfigLoader):
    def __init__(self, *args, merge_strategy: dict[str, str] | None = None, **kwargs):
        super().__init__(
            *args,
            # airflow.yml (kedro-airflow): an env setting `variant_queue` keeps the base's others
            merge_strategy={"parameters": "soft", "airflow": "soft", **(merge_strategy or {})},
            **kwargs,
        )
        self._env_file_keys: set[str] = set()

    def _resolve_from_raw_config(self, key, base_configs, env_configs, *rest):
        # top-level keys the env's own files set (``--params`` are merged into env_config too)
        self._env_file_keys = {name for config in env_configs.values() for name in config}
        return super()._resolve_from_raw_config(key, base_configs, env_configs, *rest)

    def _merge_configs(
        self, config: dict[str, Any], env_config: dict[str, Any], key: str, env_path: str
    ) -> Any:
        merged = super()._merge_configs(config, env_config, key, env_path)
        if key == "parameters" and "variants" in self._env_file_keys:
            # a new study: its own variants, and its own reference (or the first variant)
            merged["variants"] = env_config["variants"]
            reference = (env_config.get("study") or {}).get("reference")
            study = merged.setdefault("study", {})
            if reference is None:
                study.pop("reference", None)
        return merged
