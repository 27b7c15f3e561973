"""Places that cannot be written: one clear error, and nothing that looks finished left behind."""

from __future__ import annotations

import errno

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from attention_lab.datasets.model_directory import ModelDirectoryDataset, TrainedModel
from attention_lab.datasets.store import write_store
from attention_lab.errors import ArtifactError, ConfigError
from attention_lab.hooks import check_writable
from attention_lab.model_info import ModelInfo
from tests.datasets.test_store import stream


class FullDisk(MemoryFileSystem):
    """An in-memory file system whose files stop accepting bytes after ``capacity``."""

    protocol = "fulldisk"
    capacity = 2_000

    def _open(self, path, mode="rb", **kwargs):
        f = super()._open(path, mode, **kwargs)
        if "w" in mode:
            write, written = f.write, [0]

            def limited(data):
                written[0] += len(data)
                if written[0] > self.capacity:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return write(data)

            f.write = limited
        return f


@pytest.fixture
def full_disk():
    fsspec.register_implementation("fulldisk", FullDisk, clobber=True)
    fs = FullDisk()
    yield fs
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")


@pytest.mark.parametrize("background", [True, False], ids=["writer thread", "inline"])
def test_a_full_disk_mid_store_gives_one_error_and_leaves_nothing(full_disk, background):
    maps, _ = stream(n=6)
    maps.background = background
    with pytest.raises(ArtifactError, match="Could not write the attention store .*No space left"):
        write_store("fulldisk://study/lora/attention.zarr.zip", maps)
    assert full_disk.find("/study") == []  # no store, no partial temp file


def test_a_store_rerun_removes_the_temp_file_of_a_killed_write(tmp_path):
    target = tmp_path / "attention.zarr.zip"
    stale = tmp_path / "attention.zarr.zip.tmp-deadbeef"
    stale.write_bytes(b"half a zip")  # what SIGKILL leaves
    write_store(str(target), stream(n=2)[0])
    assert target.is_file() and not stale.exists()


def test_a_model_that_cannot_be_saved_is_one_error_and_leaves_nothing(tmp_path, minilm_path):
    from transformers import AutoModel, AutoTokenizer

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    dataset = ModelDirectoryDataset(str(blocker / "lora"))
    model = TrainedModel(
        AutoModel.from_pretrained(minilm_path),
        AutoTokenizer.from_pretrained(minilm_path),
        ModelInfo("lora", "classification"),
    )
    with pytest.raises(
        ArtifactError, match="Could not save the model to .*a_file/lora: .*Nothing was kept"
    ):
        dataset.save(model)


def test_a_model_rerun_removes_the_folder_of_a_killed_save(tmp_path, minilm_path):
    from transformers import AutoModel, AutoTokenizer

    stale = tmp_path / ".lora-abc123"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half written")
    model = TrainedModel(
        AutoModel.from_pretrained(minilm_path),
        AutoTokenizer.from_pretrained(minilm_path),
        ModelInfo("lora", "classification"),
    )
    ModelDirectoryDataset(str(tmp_path / "lora")).save(model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lora"]


def test_an_unwritable_data_root_stops_the_run_before_any_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="data_root '.*' cannot be written .*globals.yml"):
        check_writable(str(blocker / "data"))
    with pytest.raises(ConfigError, match="No space left"):
        fsspec.register_implementation("fulldisk", FullDisk, clobber=True)
        FullDisk.capacity, before = 0, FullDisk.capacity
        try:
            check_writable("fulldisk://study")
        finally:
            FullDisk.capacity = before
    check_writable(str(tmp_path / "fine"))  # a writable place passes and keeps no probe file
    assert list((tmp_path / "fine").iterdir()) == []


def test_storage_credentials_must_name_an_entry_of_credentials_yml():
    from attention_lab.hooks import storage_options

    loader = {"credentials": {"study_storage": {"key": "k", "secret": "s"}}}
    assert storage_options(loader, "study_storage") == {"key": "k", "secret": "s"}
    assert storage_options(loader, None) == {}
    with pytest.raises(ConfigError, match="storage_credentials: 'typo' is not in credentials.yml"):
        storage_options(loader, "typo")
