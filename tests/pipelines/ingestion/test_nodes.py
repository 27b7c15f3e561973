"""Ingestion nodes: bundled sources, files, cleaning, splitting, probes, and every kind of bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from attention_lab.errors import ConfigError, DataError
from attention_lab.pipelines.ingestion.nodes import (
    build_probe_set,
    clean_corpus,
    load_source,
    split_corpus,
)

SPLIT = {"seed": 3, "fractions": {"train": 0.6, "validation": 0.2, "test": 0.2}}


def params(**source):
    return {
        "source": {"text_column": "text", "label_column": "label", **source},
        "split": SPLIT,
        "probe": {"n_examples": 4},
    }


def ingest(p, raw=None, meta=None):
    if raw is None:
        raw, meta = load_source(p)
    clean, report = clean_corpus(raw, meta, p)
    return split_corpus(clean, report, p), report


@pytest.fixture
def csv_file(tmp_path):
    rows = [
        {
            "text": f"review number {i} is {'good' if i % 3 else 'bad'}",
            "label": "pos" if i % 3 else "neg",
        }
        for i in range(60)
    ]
    path = tmp_path / "reviews.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_rotten_tomatoes_has_its_documented_size_and_labels():
    raw, meta = load_source(params(name="rotten_tomatoes"))
    assert len(raw) == 12808
    assert meta["label_names"] == ["rotten", "fresh"]
    assert set(raw["label"]) == {"rotten", "fresh"}


def test_bbc_news_reads_five_topics_in_sorted_order():
    raw, meta = load_source(params(name="bbc_news"))
    assert len(raw) == 2225
    assert meta["label_names"] == ["business", "entertainment", "politics", "sports", "tech"]
    assert raw["text"].iloc[0].startswith("Ad sales boost Time Warner profit.")


def test_split_is_stratified_deterministic_and_follows_the_contract():
    p = {
        **params(name="rotten_tomatoes"),
        "split": {
            "seed": 42,
            "fractions": {"train": 0.8, "validation": 0.1, "test": 0.1},
            "max_per_split": {"train": 2400, "validation": 400, "test": 600},
        },
    }
    corpus, _ = ingest(p)
    again, _ = ingest(p)
    assert list(corpus.columns) == ["id", "text", "label", "label_name", "split"]
    assert corpus["id"].is_unique
    pd.testing.assert_frame_equal(corpus, again)
    assert corpus["split"].value_counts().to_dict() == {
        "train": 2400,
        "test": 600,
        "validation": 400,
    }
    source_share = 7403 / 12808  # fresh in the source
    for split, share in corpus.groupby("split")["label"].mean().items():
        assert abs(share - source_share) < 0.02, split


def test_ids_do_not_depend_on_row_order(csv_file):
    p = params(name="file", path=str(csv_file))
    raw, meta = load_source(p)
    a, _ = ingest(p, raw, meta)
    b, _ = ingest(p, raw.sample(frac=1, random_state=1).reset_index(drop=True), meta)
    pd.testing.assert_frame_equal(a, b)


def test_cleaning_strips_normalises_and_drops_with_counts():
    raw = pd.DataFrame(
        {"text": ["  a   b ", "a b", "", None, "c", "d"], "label": ["x", "x", "y", "y", None, "y"]}
    )
    clean, report = clean_corpus(raw, {"source": "t", "label_names": None}, {})
    assert list(clean["text"]) == ["a b", "d"]
    assert report["dropped_duplicates"] == 1
    assert report["dropped_empty_text"] == 2
    assert report["dropped_missing_label"] == 1
    assert list(clean["label_name"]) == ["x", "y"]


def test_convention_speeches_are_long_texts_labelled_by_party():
    raw, meta = load_source(params(name="convention_speeches"))
    assert len(raw) == 189
    assert meta["label_names"] == ["democrat", "republican"]
    assert raw["text"].str.split().str.len().max() > 2048  # long enough for 2,048 tokens


def test_min_words_drops_and_counts_short_texts():
    raw = pd.DataFrame({"text": ["one two three", "one two", "a b c d"], "label": ["x", "y", "x"]})
    clean, report = clean_corpus(raw, {"source": "t"}, {"cleaning": {"min_words": 3}})
    assert list(clean["text"]) == ["one two three", "a b c d"]
    assert report["dropped_short"] == 1
    with pytest.raises(
        ConfigError, match="ingestion.cleaning.min_words: expected a whole number, got 'many'"
    ):
        clean_corpus(raw, {"source": "t"}, {"cleaning": {"min_words": "many"}})


def test_integer_labels_index_declared_names(tmp_path):
    path = tmp_path / "d.jsonl"
    pd.DataFrame({"sentence": ["one", "two", "three"], "y": [0, 1, 1]}).to_json(
        path, orient="records", lines=True
    )
    raw, meta = load_source(
        params(
            name="file",
            path=str(path),
            text_column="sentence",
            label_column="y",
            label_names=["neg", "pos"],
        )
    )
    clean, _ = clean_corpus(raw, meta, {})
    assert list(clean["label_name"]) == ["neg", "pos", "pos"]


def test_probe_set_is_stratified_from_test_plus_user_sentences(csv_file):
    p = params(name="file", path=str(csv_file))
    corpus, _ = ingest(p)
    probes = build_probe_set(corpus, "# comment\npos\tnot bad at all\nplain sentence\n", p)
    assert list(probes.columns) == ["id", "text", "label", "label_name", "split", "source"]
    from_test = probes[probes["source"] == "test"]
    assert len(from_test) == 4 and set(from_test["id"]) <= set(
        corpus.loc[corpus["split"] == "test", "id"]
    )
    assert from_test["label"].nunique() == 2
    user = probes[probes["source"] == "user"]
    assert list(user["text"]) == ["not bad at all", "plain sentence"]
    assert list(user["label"]) == [1, -1]


# --- bad input: one clear message each -----------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_source(params(name="file", path=str(tmp_path / "nope.csv")))


def test_unknown_source():
    with pytest.raises(
        ConfigError,
        match="ingestion.source.name: unknown value 'imdb'; allowed: rotten_tomatoes, bbc_news, convention_speeches, file, hub",
    ):
        load_source(params(name="imdb"))


def test_csv_without_the_text_column(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"review": ["a"], "label": ["p"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['text'\].*text_column"):
        load_source(params(name="file", path=str(path)))


def test_csv_without_the_label_column(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"text": ["a"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['label'\]"):
        load_source(params(name="file", path=str(path)))


def test_empty_rows_are_an_error_when_configured():
    raw = pd.DataFrame({"text": ["fine", "  "], "label": ["a", "a"]})
    with pytest.raises(DataError, match="1 row\\(s\\) with empty text.*on_invalid: drop"):
        clean_corpus(
            raw, {"source": "t", "label_names": None}, {"cleaning": {"on_invalid": "error"}}
        )


def test_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9 au lait,a\n".encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8"):
        load_source(params(name="file", path=str(path)))


def test_label_outside_the_declared_set(csv_file):
    raw, meta = load_source(params(name="file", path=str(csv_file), label_names=["pos"]))
    with pytest.raises(DataError, match=r"\['neg'\] are outside the declared label set \['pos'\]"):
        clean_corpus(raw, meta, {})


def test_split_asking_for_more_than_exists(csv_file):
    p = {
        **params(name="file", path=str(csv_file)),
        "split": {"sizes": {"train": 50, "validation": 10, "test": 10}},
    }
    with pytest.raises(DataError, match="The splits ask for 70 examples but only 60 remain"):
        ingest(p)


def test_nothing_left_after_cleaning():
    raw = pd.DataFrame({"text": ["", " "], "label": ["a", "b"]})
    with pytest.raises(DataError, match="Nothing is left after cleaning"):
        clean_corpus(raw, {"source": "t", "label_names": None}, {})


def test_hub_source_offline_names_the_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="network is probably unavailable"):
        load_source(params(name="hub", dataset_id="cornell-movie-review-data/rotten_tomatoes"))


def test_invalid_utf8_names_the_line_and_the_byte_offset(tmp_path):
    path = tmp_path / "messy.csv"
    good = "\ufefftext,label\nfine review,pos\n".encode()  # a BOM, then two good lines
    path.write_bytes(good + b"caf\xe9,neg\n")
    offset = len(good) + 3
    with pytest.raises(DataError, match=rf"line 3, byte 4 of that line \(byte offset {offset} "):
        load_source(params(name="file", path=str(path)))


def test_a_byte_order_mark_and_spaced_column_names_are_read(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeff text , label \ngood film,pos\n".encode())
    raw, _ = load_source(params(name="file", path=str(path)))
    assert raw.to_dict("records") == [{"text": "good film", "label": "pos"}]


MESSY_LABELS = pd.DataFrame(
    {"text": ["a", "b", "c", "d"], "label": ["Positive", " positive", "negative", "NEGATIVE "]}
)


def test_labels_differing_only_in_case_or_spaces_stop_with_the_fix():
    with pytest.raises(DataError, match="differ only in case or spaces.*normalize_labels: true"):
        clean_corpus(MESSY_LABELS, {"source": "t", "label_names": None}, {"source": {}})


def test_normalize_labels_merges_case_and_space_variants():
    p = {"source": {"normalize_labels": True}}
    clean, report = clean_corpus(MESSY_LABELS, {"source": "t", "label_names": None}, p)
    assert report["label_names"] == ["negative", "positive"]
    assert clean["label_name"].tolist() == ["positive", "positive", "negative", "negative"]
    assert report["relabelled"] == 3


def test_label_map_renames_raw_labels():
    p = {
        "source": {
            "label_map": {
                "Positive": "pos",
                " positive": "pos",
                "negative": "neg",
                "NEGATIVE ": "neg",
            }
        }
    }
    clean, report = clean_corpus(MESSY_LABELS, {"source": "t", "label_names": None}, p)
    assert report["label_names"] == ["neg", "pos"]
    assert clean["label"].tolist() == [1, 1, 0, 0]


def test_label_map_must_be_a_mapping():
    with pytest.raises(ConfigError, match="label_map: expected a mapping"):
        clean_corpus(
            MESSY_LABELS, {"source": "t", "label_names": None}, {"source": {"label_map": ["x"]}}
        )
