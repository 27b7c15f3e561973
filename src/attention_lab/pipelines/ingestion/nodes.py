"""Ingestion: read a source, validate and clean it, split it, pick the probe set."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import numpy as np
import pandas as pd

from attention_lab.errors import ConfigError, DataError
from attention_lab.parameters import IngestionSettings, SourceSettings, SplitSettings
from attention_lab.pipelines.ingestion.allocation import allocate, largest_remainder
from attention_lab.pipelines.ingestion.sources import READERS

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
CORPUS_COLUMNS = ["id", "text", "label", "label_name", "split"]


def load_source(params: IngestionSettings) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the configured source into ``text`` and raw ``label`` columns, plus its metadata.

    The metadata holds the source name and the declared label set: bundled sources
    declare theirs; a file or hub source may declare ``label_names`` (else the sorted
    distinct labels are used).
    """
    source = IngestionSettings.of(params).source
    name = source.name
    frame, label_names = READERS[name](source)
    logger.info("Read %d rows from source %r", len(frame), name)
    return frame.reset_index(drop=True), {"source": name, "label_names": label_names}


def _normalise_labels(labels: pd.Series, declared: list[str] | None) -> tuple[pd.Series, list[str]]:
    """Map raw labels (names or integer ids) onto 0..K-1 with a list of names."""
    present = labels.dropna()
    if declared is None:
        declared = sorted(str(v) for v in present.unique())
    declared = [str(v) for v in declared]
    as_text = present.map(
        lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    )
    by_name = {n: i for i, n in enumerate(declared)}
    if as_text.isin(by_name).all():
        ids = as_text.map(by_name)
    elif (
        as_text.str.fullmatch(r"\d+").all()
        and as_text.astype(int).between(0, len(declared) - 1).all()
    ):
        ids = as_text.astype(int)  # integer labels indexing the declared names
    else:
        outside = sorted(set(as_text) - set(by_name))[:5]
        raise DataError(
            f"label(s) {outside} are outside the declared label set {declared}. "
            "Fix the data or list every label in ingestion.source.label_names."
        )
    return ids.reindex(labels.index), declared


def _harmonise_labels(labels: pd.Series, source: SourceSettings) -> tuple[pd.Series, int]:
    """Apply ``source.label_map`` then ``source.normalize_labels``; returns labels and rows changed.

    Without either, labels that differ only in case or surrounding spaces are an error: they
    would silently become separate classes.
    """
    label_map = source.label_map or {}
    out = labels.map(lambda v: label_map.get(v, label_map.get(str(v), v)))
    if source.normalize_labels:
        out = out.map(lambda v: v.strip().casefold() if isinstance(v, str) else v)
    else:
        groups: dict[str, set[str]] = {}
        for value in out.dropna().unique():
            if isinstance(value, str):
                groups.setdefault(value.strip().casefold(), set()).add(value)
        clashes = [sorted(g) for g in groups.values() if len(g) > 1]
        if clashes:
            raise DataError(
                f"labels {', '.join(map(repr, clashes[0]))} differ only in case or spaces. Set "
                "ingestion.source.normalize_labels: true, or map them with ingestion.source.label_map."
            )
    changed = int((out.astype(str) != labels.astype(str)).sum())
    return out, changed


def clean_corpus(
    raw: pd.DataFrame, raw_meta: dict[str, Any], params: IngestionSettings
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validate and clean: strip and normalise whitespace, drop empty/unlabelled rows and exact duplicates.

    With ``cleaning.on_invalid: error`` an empty text or missing label stops the run instead
    of being dropped. Returns the clean frame (``text``, ``label``, ``label_name``) and a
    report of the counts.
    """
    settings = IngestionSettings.of(params)
    on_invalid = settings.cleaning.on_invalid
    frame = raw.copy()
    text = frame["text"].astype("string").str.replace(r"\s+", " ", regex=True).str.strip()
    empty = text.isna() | (text == "")
    unlabelled = frame["label"].isna()
    if on_invalid == "error" and (empty.any() or unlabelled.any()):
        raise DataError(
            f"{int(empty.sum())} row(s) with empty text and {int(unlabelled.sum())} without a label "
            f"(first at row {int(np.flatnonzero(empty | unlabelled)[0])}). Fix the data, or set "
            "ingestion.cleaning.on_invalid: drop to drop them."
        )
    keep = ~(empty | unlabelled)
    frame = frame.loc[keep].assign(text=text[keep].astype(str))
    harmonised, relabelled = _harmonise_labels(frame["label"], settings.source)
    labels, names = _normalise_labels(harmonised, raw_meta.get("label_names"))
    frame = frame.assign(label=labels.astype(int))
    frame, short = _drop_short(frame, settings.cleaning.min_words)
    before_dedup = len(frame)
    frame = frame.drop_duplicates(subset="text", keep="first")
    report = {
        "source": raw_meta.get("source"),
        "rows_read": len(raw),
        "dropped_empty_text": int(empty.sum()),
        "dropped_missing_label": int((unlabelled & ~empty).sum()),
        "dropped_short": short,
        "dropped_duplicates": before_dedup - len(frame),
        "relabelled": relabelled,
        "rows_kept": len(frame),
        "label_names": names,
    }
    logger.info("Cleaning: %s", {k: v for k, v in report.items() if k != "label_names"})
    if frame.empty:
        raise DataError(
            "Nothing is left after cleaning: every row was empty, unlabelled or a duplicate. Check the source."
        )
    frame["label_name"] = [names[i] for i in frame["label"]]
    return frame[["text", "label", "label_name"]].reset_index(drop=True), report


def _drop_short(frame: pd.DataFrame, min_words: int) -> tuple[pd.DataFrame, int]:
    """Texts of at least ``cleaning.min_words`` words (a long-context study's floor)."""
    long_enough = frame["text"].str.split().str.len() >= min_words
    return frame.loc[long_enough], int((~long_enough).sum())


def _stable_id(source: str, text: str) -> str:
    return f"{source}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"


def _split_sizes(n: int, cfg: SplitSettings) -> np.ndarray:
    """(train, validation, test) sizes: exact ``sizes``, or ``fractions`` of ``n`` under caps."""
    if cfg.sizes:
        return np.array([int(cfg.sizes.get(s, 0)) for s in SPLITS])
    fractions = cfg.fractions
    if set(fractions) - set(SPLITS) or not np.isclose(sum(fractions.values()), 1.0):
        raise ConfigError(
            f"ingestion.split.fractions: {fractions}; give train/validation/test fractions summing to 1."
        )
    counts = largest_remainder(n, np.array([float(fractions.get(s, 0)) for s in SPLITS]))
    cap = cfg.max_per_split or {}
    return np.array([min(int(c), int(cap.get(s, c))) for s, c in zip(SPLITS, counts, strict=True)])


def split_corpus(
    clean: pd.DataFrame, report: dict[str, Any], params: IngestionSettings
) -> pd.DataFrame:
    """Deterministic stratified train/validation/test split by seed, capped per split.

    ``split.sizes`` asks for exact counts; otherwise ``split.fractions`` with an optional
    ``split.max_per_split`` cap. Labels and splits are allocated jointly (see ``allocation``).
    Ids are a hash of the text, so a second run gives identical ids.
    """
    cfg = IngestionSettings.of(params).split
    frame = clean.assign(
        id=[_stable_id(report.get("source") or "corpus", t) for t in clean["text"]]
    )
    frame = frame.sort_values("id", kind="stable").reset_index(drop=True)  # order-independent
    labels = frame.drop_duplicates("label").sort_values("label")
    counts = frame["label"].value_counts().reindex(labels["label"]).to_numpy()
    per_label = allocate(
        counts, _split_sizes(len(frame), cfg), list(labels["label_name"]), list(SPLITS)
    )
    rng = np.random.default_rng(cfg.seed)
    assigned = pd.Series("", index=frame.index, dtype=object)
    for k, label in enumerate(labels["label"]):
        # shuffled examples of this label, handed out split by split: (splits,) counts
        idx = rng.permutation(frame.index[frame["label"] == label].to_numpy())
        assigned[idx[: per_label[k].sum()]] = np.repeat(SPLITS, per_label[k])
    corpus = frame.assign(split=assigned)
    corpus = corpus[corpus["split"] != ""].reset_index(drop=True)
    logger.info("Split sizes: %s", corpus["split"].value_counts().to_dict())
    return corpus[CORPUS_COLUMNS]


def _parse_user_probes(lines: str, label_names: list[str]) -> pd.DataFrame:
    """One probe per line: ``text`` or ``label_name<TAB>text``; ``#`` starts a comment."""
    rows = []
    for line in lines.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        label_name, sep, text = line.partition("\t")
        if not sep:
            label_name, text = "", label_name
        text = re.sub(r"\s+", " ", text).strip()
        if label_name and label_name not in label_names:
            raise DataError(
                f"user probe {text[:40]!r}: label {label_name!r} is not one of {label_names}. "
                "Relabel it in data/01_raw/probe_sentences.txt, or set "
                "ingestion.probe.include_user_sentences: false."
            )
        label = label_names.index(label_name) if label_name else -1
        rows.append({"text": text, "label": label, "label_name": label_name})
    return pd.DataFrame(rows, columns=["text", "label", "label_name"])


def build_probe_set(
    corpus: pd.DataFrame, user_probes: str, params: IngestionSettings
) -> pd.DataFrame:
    """N stratified test examples plus optional user probe sentences (``source`` says which)."""
    settings = IngestionSettings.of(params)
    cfg = settings.probe
    n = cfg.n_examples
    test = corpus[corpus["split"] == "test"]
    if n > len(test):
        raise DataError(
            f"ingestion.probe.n_examples={n} but the test split has {len(test)} examples; lower it."
        )
    rng = np.random.default_rng(settings.split.seed)
    shares = test["label"].value_counts().sort_index()
    picks = []
    for label, k in zip(
        shares.index, largest_remainder(n, shares.to_numpy().astype(float)), strict=True
    ):
        ids = test.index[test["label"] == label].to_numpy()
        picks.extend(rng.choice(ids, size=int(k), replace=False))
    probes = test.loc[sorted(picks)].assign(source="test")
    if cfg.include_user_sentences and user_probes:
        names = list(corpus.drop_duplicates("label").sort_values("label")["label_name"])
        user = _parse_user_probes(user_probes, names)
        user = user.assign(
            id=[f"user-{i:03d}" for i in range(len(user))], split="probe", source="user"
        )
        probes = pd.concat([probes, user], ignore_index=True)
    logger.info(
        "Probe set: %d examples (%d user sentences)",
        len(probes),
        int((probes["source"] == "user").sum()),
    )
    return probes[[*CORPUS_COLUMNS, "source"]].reset_index(drop=True)
