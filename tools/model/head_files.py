"""Head files: a fitted head as JSON and numpy arrays, never a pickle.

Unpickling runs whatever code the file names, so a head.pkl planted in a run folder (or reached
through a planted `models` link) would run as the alloop user. A head file is one .npz archive,
read with `allow_pickle=False`: its `meta` entry is JSON saying the format, its version and the
head, whose arrays are references to the archive's other entries. Only the classes in
`_classes()` can be rebuilt, through their own constructors and their learned (`…_`)
attributes, so a file can describe a head but cannot carry code.

Every head family is written this way: the logistic head (with its scikit-learn
LogisticRegression) and the GLMM head (with its fits, model frames and terms). The rebuilt head
predicts exactly what the saved one did. An older alloop's head.pkl is refused, never opened,
with the command that retrains its round.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alloop.tools.errors import AlloopError, InputError, StateError

if TYPE_CHECKING:  # pragma: no cover
    from alloop.tools.model.heads import Head

FORMAT = "alloop-head"
FORMAT_VERSION = 1
LEGACY_SUFFIX = ".pkl"
_META = "meta"
_HEADS = ("LogisticHead", "GLMMHead", "OptionHead", "GaussianHead", "ConditionalLogitHead")
"""The classes a head file may have at its top; the other allowed classes are parts of heads."""
_LEARNED = re.compile(r"^[A-Za-z][A-Za-z0-9_]*_$")
"""scikit-learn's convention for learned attributes, which are all a file may set."""


def _classes() -> dict[str, type]:
    """What a head file may rebuild: the heads and the objects they hold, by class name."""
    from sklearn.linear_model import BayesianRidge, LogisticRegression

    from alloop.tools.glmm.design import GLMMSpec, ModelFrame, Term
    from alloop.tools.glmm.head import GLMMHead
    from alloop.tools.glmm.model import GLMMFit
    from alloop.tools.model.choice_head import ConditionalLogitHead
    from alloop.tools.model.gaussian import GaussianHead
    from alloop.tools.model.logistic import LogisticHead
    from alloop.tools.model.option_head import OptionHead

    return {
        cls.__name__: cls
        for cls in (
            LogisticHead,
            GLMMHead,
            OptionHead,
            GaussianHead,
            ConditionalLogitHead,
            LogisticRegression,
            BayesianRidge,
            GLMMFit,
            ModelFrame,
            Term,
            GLMMSpec,
        )
    }


def head_bytes(head: Head) -> bytes:
    """The head file's content."""
    writer = _Writer(_classes())
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "head": head.name, "object": writer.encode(head)}
    handle = io.BytesIO()
    np.savez(handle, **{_META: np.asarray(json.dumps(meta))}, **writer.arrays)
    return handle.getvalue()


def head_from_bytes(data: bytes, where: str) -> Head:
    """The head a file describes; `where` names the file in errors."""
    retrain = "retrain that round with train_glmm (its `round` argument)"
    try:
        arrays = _arrays(data)
        meta = json.loads(str(arrays.pop(_META)[()]))
    except (OSError, EOFError, ValueError, KeyError, IndexError, RecursionError, zipfile.BadZipFile) as exc:
        raise InputError(f"{where} is not an alloop head file ({type(exc).__name__}: {exc}); {retrain}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{where} is not an alloop head file (no {FORMAT!r} format field); {retrain}")
    if meta.get("version") != FORMAT_VERSION:
        raise StateError(
            f"{where} is a head file of format version {meta.get('version')!r}; this alloop reads version "
            f"{FORMAT_VERSION}: {retrain}"
        )
    classes = _classes()
    try:
        head = _Reader(classes, arrays).decode(meta.get("object"))
    except (TypeError, ValueError, KeyError, RecursionError, AlloopError) as exc:
        raise InputError(f"{where} does not describe a head ({type(exc).__name__}: {exc}); {retrain}") from None
    if type(head) not in tuple(classes[name] for name in _HEADS) or head.name != meta.get("head"):
        raise InputError(f"{where} does not describe a {meta.get('head')!r} head; {retrain}")
    return head


def read_head(path: Path) -> Head:
    """The head saved at `path`; an older alloop's pickle beside it is refused, never opened."""
    if not path.is_file():
        legacy = path.with_suffix(LEGACY_SUFFIX)
        if legacy.is_file():
            raise StateError(legacy_head_message(legacy))
        raise StateError(f"{path} is missing: this round has no saved head; retrain it with train_glmm")
    return head_from_bytes(path.read_bytes(), str(path))


def legacy_head_message(legacy: Path) -> str:
    """Why an old head.pkl is not loaded, and the command that replaces it."""
    found = re.fullmatch(r"round_(\d+)", legacy.parent.name)
    round_ = int(found[1]) if found else None
    run = legacy.parent.parent.parent.name if found else "<run>"
    command = (
        f"`alloop train-glmm {run} --round {round_}` (MCP: train_glmm with round={round_})"
        if round_ is not None
        else "train_glmm with that round"
    )
    return (
        f"{legacy} is a head saved by an older alloop as a Python pickle, which could run any code when "
        f"loaded, so alloop no longer reads it; retrain the round to save its head in the safe format: {command}"
    )


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    """The archive's entries; a pickle, an object array or a lone .npy is a ValueError, never run."""
    loaded = np.load(io.BytesIO(data), allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError("a single array, not an .npz archive")
    with loaded:
        return {key: loaded[key] for key in loaded.files}


class _Writer:
    """Turns a head into JSON-ready values, collecting its arrays under generated names."""

    def __init__(self, classes: dict[str, type]) -> None:
        self.classes = classes
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | str):
            return str(value) if isinstance(value, str) else value
        if isinstance(value, np.generic) and not isinstance(value, np.ndarray):
            return self.encode(value.item())
        if isinstance(value, int | float):
            return value
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise TypeError(f"a head file cannot hold an object array (shape {value.shape})")
            name = f"a{len(self.arrays)}"
            self.arrays[name] = value
            return {"array": name}
        if isinstance(value, tuple):
            return {"tuple": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                raise TypeError("a head file holds dicts with string keys only")
            return {"dict": {key: self.encode(v) for key, v in value.items()}}
        return self._object(value)

    def _object(self, value: Any) -> dict[str, Any]:
        name = type(value).__name__
        if self.classes.get(name) is not type(value):
            raise TypeError(f"a head file cannot hold a {type(value).__module__}.{type(value).__qualname__}")
        if dataclasses.is_dataclass(value):
            fields = {f.name: self.encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return {"object": name, "fields": fields}
        params = value.get_params(deep=False)
        learned = {key: v for key, v in vars(value).items() if key not in params}
        odd = sorted(key for key in learned if not _LEARNED.match(key))
        if odd:
            raise TypeError(f"{name} has attributes {odd} that are neither parameters nor learned (…_)")
        return {
            "object": name,
            "params": {key: self.encode(v) for key, v in params.items()},
            "learned": {key: self.encode(v) for key, v in learned.items()},
        }


class _Reader:
    """Rebuilds what `_Writer` wrote; anything else is a TypeError, KeyError or ValueError."""

    def __init__(self, classes: dict[str, type], arrays: dict[str, np.ndarray]) -> None:
        self.classes = classes
        self.arrays = arrays

    def decode(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            raise TypeError(f"unexpected {type(value).__name__}")
        if "object" in value:
            return self._object(value)
        if len(value) != 1:
            raise ValueError(f"unexpected entry with keys {sorted(value)}")
        ((tag, body),) = value.items()
        if tag == "array":
            return self.arrays[body]
        if tag == "tuple":
            return tuple(self.decode(v) for v in _list(body))
        if tag == "dict":
            if not isinstance(body, dict):
                raise TypeError("a dict entry must hold an object")
            return {str(key): self.decode(v) for key, v in body.items()}
        raise ValueError(f"unknown tag {tag!r}")

    def _object(self, value: dict[str, Any]) -> Any:
        cls = self.classes.get(value["object"])
        if cls is None:
            raise ValueError(f"{value['object']!r} is not a class a head file may hold")
        if dataclasses.is_dataclass(cls):
            return cls(**{key: self.decode(v) for key, v in _dict(value["fields"]).items()})
        made = cls(**{key: self.decode(v) for key, v in _dict(value["params"]).items()})
        for key, v in _dict(value["learned"]).items():
            if not _LEARNED.match(key):
                raise ValueError(f"{key!r} is not a learned attribute")
            setattr(made, key, self.decode(v))
        return made


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value
