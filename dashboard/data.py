"""All data access for the dashboard goes through the project's Kedro catalog, lazily.

Opening the app reads the parameters and the probe set; a variant's attention store is
opened (root metadata only) the first time it is shown, and each view reads one example's
chunk. Missing artifacts raise :class:`MissingArtifact` with the command that makes them.
"""

from __future__ import annotations

import os
from functools import cached_property, lru_cache
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from attention_lab.datasets.store import AttentionStore
from attention_lab.defaults import SEED
from attention_lab.session_env import record_conf_source
from attention_lab.study import Job, exported, references
from attention_lab.variants import study_reference, study_seeds
from dashboard.seed_mean import SEED_MEAN, SeedMeanStore

PROJECT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "probe_set": "kedro run --pipeline=ingestion",
    "attention": "kedro run --pipeline=attention_extraction",
    "analysis": "kedro run --pipeline=analysis",
}


class MissingArtifact(Exception):
    """An artifact the view needs is not there; ``command`` makes it."""

    def __init__(self, what: str, command: str, env: str | None):
        suffix = f" --env={env}" if env and env != "local" else ""
        self.what, self.command = what, command + suffix
        super().__init__(f"{what} is missing. Run `{self.command}` (or `make run` for everything).")


class StudyData:
    """The catalog of one Kedro env, with caches so each artifact is read at most once."""

    def __init__(
        self, env: str | None = None, project: Path = PROJECT, conf_source: str | None = None
    ):
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
        bootstrap_project(project)
        self.env = env
        self._session = KedroSession.create(project_path=project, env=env, conf_source=conf_source)
        record_conf_source(conf_source)
        context = self._session.load_context()
        self.catalog = context.catalog
        self.params = context.params
        self.store = lru_cache(maxsize=None)(self._store)
        self._analysis: dict[str, tuple[object, object]] = {}  # name -> (file stamp, value)

    @property
    def variants(self) -> list[str]:
        return list(self.params.get("variants") or {})

    @property
    def seeds(self) -> tuple[int, ...]:
        """The study's seeds: every variant has one run (and one store) per seed."""
        return study_seeds(self.params.get("study") or {})

    @property
    def reference(self) -> str:
        return study_reference(self.params)

    def reference_of(self, variant: str) -> str:
        """The variant ``variant`` is compared with: the study's, or its own model's reference."""
        return references(self.params).get(variant, self.reference)

    @cached_property
    def probe_set(self) -> pd.DataFrame:
        try:
            return self.catalog.load("probe_set")
        except Exception as exc:
            raise MissingArtifact("The probe set", COMMANDS["probe_set"], self.env) from exc

    @cached_property
    def example_ids(self) -> frozenset[str]:
        return frozenset(self.probe_set["id"])

    @cached_property
    def labels(self) -> list[str]:
        """The probe set's label names, for the label filter."""
        return sorted({x for x in self.probe_set["label_name"] if x})

    def _store(self, variant: str, seed: int | str | None = None) -> AttentionStore:
        """The store of ``variant``'s run with ``seed`` (default: the first seed), or with
        ``seed="mean"`` the mean over its seeds' maps."""
        if variant not in self.variants:
            raise KeyError(
                f"unknown variant {variant!r}; this study has {', '.join(self.variants)}"
            )
        if seed == SEED_MEAN:
            return SeedMeanStore([self.store(variant, s) for s in self.seeds])
        job = Job(variant, self.seeds[0] if seed is None else int(seed))
        try:
            return self.catalog.load(exported(job, "attention"))
        except Exception as exc:
            raise MissingArtifact(
                f"The attention store of {variant!r} (seed {job.seed})",
                COMMANDS["attention"],
                self.env,
            ) from exc

    def table(self, name: str) -> pd.DataFrame | go.Figure:
        """An analysis table or figure, read again whenever its file changes (a new ``kedro run``)."""
        stamp = self._stamp(name)
        cached = self._analysis.get(name)
        if cached is not None and stamp is not None and cached[0] == stamp:
            return cached[1]
        try:
            value = self.catalog.load(name)
        except Exception as exc:
            raise MissingArtifact(
                f"The analysis output {name!r}", COMMANDS["analysis"], self.env
            ) from exc
        self._analysis[name] = (stamp, value)
        return value

    def _stamp(self, name: str):
        """When the dataset's file last changed; ``None`` when it cannot be told (read again)."""
        dataset = self.catalog.get(name)
        path, fs = getattr(dataset, "_filepath", None), getattr(dataset, "_fs", None)
        try:
            info = fs.info(str(path))  # one call: local "mtime", S3 "LastModified"
        except Exception:  # a missing file, a dataset without a file system
            return None
        return info.get("mtime") or info.get("LastModified"), info.get("size")

    figure = table  # figures are catalog outputs too

    def check_ready(self) -> None:
        """Raise :class:`MissingArtifact` unless the probe set and every store exist (cheap checks)."""
        self.probe_set  # noqa: B018 - loads and caches
        for variant in self.variants:
            for seed in self.seeds:
                if not self.catalog.exists(exported(Job(variant, seed), "attention")):
                    raise MissingArtifact(
                        f"The attention store of {variant!r} (seed {seed})",
                        COMMANDS["attention"],
                        self.env,
                    )


class InMemoryStudy(StudyData):
    """The same interface over objects already in hand (tests, benchmarks, notebooks)."""

    def __init__(
        self,
        stores: dict[str, AttentionStore | list[AttentionStore]],
        probe_set: pd.DataFrame,
        tables: dict[str, pd.DataFrame] | None = None,
        reference: str | None = None,
        seeds: list[int] | None = None,
    ):
        """``stores``: each variant's store, or its stores in ``seeds`` order (one per seed)."""
        self.env, self._tables = "memory", tables or {}
        self._stores = {v: s if isinstance(s, list) else [s] for v, s in stores.items()}
        seeds = seeds or [SEED]
        self.params = {
            "variants": dict.fromkeys(stores),
            "study": {"reference": reference or next(iter(stores)), "seeds": seeds},
        }
        self.__dict__["probe_set"] = probe_set  # fills the cached_property
        self.store = lru_cache(maxsize=None)(self._store)

    def _store(self, variant: str, seed: int | str | None = None) -> AttentionStore:
        if variant not in self._stores:
            raise KeyError(f"unknown variant {variant!r}; this study has {', '.join(self._stores)}")
        if seed == SEED_MEAN:
            return SeedMeanStore(self._stores[variant])
        index = 0 if seed is None else self.seeds.index(int(seed))
        return self._stores[variant][index]

    def table(self, name: str):
        if name not in self._tables:
            raise MissingArtifact(f"The analysis output {name!r}", COMMANDS["analysis"], None)
        return self._tables[name]

    figure = table

    def check_ready(self) -> None:
        return None
