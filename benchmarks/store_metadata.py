"""The store's zarr metadata written by zarr's own classes against the project's hand-written JSON.

Every example of a store is one zarr array per kind, so its ``zarr.json`` is built once per
example and kind (per layer in the sparse layout); the root and ``examples`` groups once per
store. Both ways make the same metadata (checked here: zarr reads each back to equal values);
this measures what each costs, per array and for the extraction benchmark's store against its
floor (``results/extraction.json``, the bare forward pass of the same examples).

Target: zarr's own classes wherever they add < 1% of the floor.

    python benchmarks/store_metadata.py
"""

from __future__ import annotations

import json
import sys
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, report  # noqa: E402

from attention_lab.datasets.store.format import (  # noqa: E402
    ZSTD_LEVEL,
    array_metadata,
    group_metadata,
)

# one example of the benchmark's probe set: MiniLM's 6 layers x 12 heads, 40 tokens
SHAPE, CHUNK = (6, 12, 40, 40), (1, 12, 40, 40)
ATTRIBUTES = {
    "id": "b0",
    "tokens": ["tok"] * 40,
    "token_ids": list(range(40)),
    "special_mask": [0] * 40,
    "query_length": 40,
    "key_length": 40,
    "layout": "dense",
}


def zarr_array() -> bytes:
    from zarr.codecs import BytesCodec, ZstdCodec
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.dtype import get_data_type_from_native_dtype
    from zarr.core.metadata.v3 import ArrayV3Metadata

    metadata = ArrayV3Metadata(
        shape=SHAPE,
        data_type=get_data_type_from_native_dtype(np.float16),
        chunk_grid={"name": "regular", "configuration": {"chunk_shape": CHUNK}},
        chunk_key_encoding={"name": "v2", "configuration": {"separator": "."}},
        fill_value=0,
        codecs=[BytesCodec(endian="little"), ZstdCodec(level=ZSTD_LEVEL, checksum=False)],
        attributes=ATTRIBUTES,
        dimension_names=None,
        storage_transformers=(),
    )
    return metadata.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()


def zarr_group() -> bytes:
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.group import GroupMetadata

    metadata = GroupMetadata(attributes=ATTRIBUTES)
    return metadata.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()


def ours_array() -> bytes:
    return array_metadata(SHAPE, CHUNK, np.float16, ATTRIBUTES)


def ours_group() -> bytes:
    return group_metadata(ATTRIBUTES)


def same_metadata(a: bytes, b: bytes) -> bool:
    """The two documents say the same (zarr writes 0.0 where we write 0, indented, and leaves
    out ``dimension_names: null``)."""
    left, right = json.loads(a), json.loads(b)
    for document in (left, right):
        document["fill_value"] = float(document["fill_value"])
        document.setdefault("dimension_names", None)
    return left == right


def per_call(function, repeats: int = 2000) -> float:
    return min(timeit.repeat(function, number=repeats, repeat=5)) / repeats


def main() -> None:
    assert same_metadata(zarr_array(), ours_array()), "the two ways disagree on the array"
    assert json.loads(zarr_group())["attributes"] == json.loads(ours_group())["attributes"]
    extraction = json.loads((RESULTS / "extraction.json").read_text())
    floor, arrays = extraction["floor_s"], extraction["examples"]  # one kind: one array each
    rows = [("metadata", "ours (us)", "zarr (us)", "zarr / ours", "zarr's extra, % of floor")]
    data = {"floor_s": floor, "arrays_per_store": arrays}
    for name, ours, theirs, count in (
        ("array (per example and kind)", ours_array, zarr_array, arrays),
        ("group (root, examples: twice a store)", ours_group, zarr_group, 2),
    ):
        mine, zarrs = per_call(ours), per_call(theirs)
        extra = (zarrs - mine) * count / floor * 100
        rows.append(
            (
                name,
                f"{mine * 1e6:.1f}",
                f"{zarrs * 1e6:.1f}",
                f"{zarrs / mine:.1f}x",
                f"{extra:.2f}%",
            )
        )
        data[name.split()[0]] = {"ours_s": mine, "zarr_s": zarrs, "extra_pct_of_floor": extra}
    report("store_metadata", rows, data)


if __name__ == "__main__":
    main()
