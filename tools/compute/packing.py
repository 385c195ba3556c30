"""Model folders as bytes, for workers that cannot read this machine's files (Modal containers).

A trained encoder or a local base model is a folder here. `pack` turns it into one uncompressed
tar with its digest; `unpack` writes it once per process under a temporary folder named by that
digest, so a warm container that gets many shards unpacks it once. Unpacking uses tarfile's
`data` filter: no absolute paths, no `..`, no links out, no device files.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from alloop.tools.errors import InputError

_UNPACKED: dict[str, Path] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Packed:
    """A folder's files as one tar, named by the sha256 of that tar."""

    digest: str
    data: bytes

    def __repr__(self) -> str:  # a log line or error never prints megabytes of weights
        return f"Packed({self.digest[:12]}, {len(self.data)} bytes)"


ModelRef = str | Packed
"""A model a worker loads: an installed name or a path it can read, or a packed folder."""


def pack(folder: Path) -> Packed:
    """The folder's regular files, sorted and with fixed metadata, so the same files give the same digest."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"model folder {str(folder)!r} does not exist; nothing to send to the workers")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            info.size, info.mode = path.stat().st_size, 0o644
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    data = buffer.getvalue()
    return Packed(hashlib.sha256(data).hexdigest(), data)


def unpack(packed: Packed) -> Path:
    """The packed folder on this machine's disk: unpacked on first use, checked against its digest."""
    with _LOCK:
        known = _UNPACKED.get(packed.digest)
        if known is not None and known.is_dir():
            return known
        target = Path(tempfile.mkdtemp(prefix=f"alloop-model-{packed.digest[:12]}-"))
        extract(packed, target)
        _UNPACKED[packed.digest] = target
        return target


def extract(packed: Packed, target: Path) -> None:
    """The packed files into `target`, after checking them against their digest."""
    if hashlib.sha256(packed.data).hexdigest() != packed.digest:
        raise InputError(f"packed model {packed.digest[:12]} arrived damaged (its bytes do not match its digest)")
    with tarfile.open(fileobj=io.BytesIO(packed.data), mode="r") as tar:
        tar.extractall(target, filter="data")


def ship(location: str | Path | None, packs: bool) -> ModelRef | None:
    """What to send for a model: a local folder packed when the worker cannot read it, else the name as given."""
    if location is None:
        return None
    if packs and Path(location).is_dir():
        return pack(Path(location))
    return str(location)


def local(ref: ModelRef | None) -> str | None:
    """In the worker: a name or path the loaders take."""
    if ref is None:
        return None
    return str(unpack(ref)) if isinstance(ref, Packed) else ref
