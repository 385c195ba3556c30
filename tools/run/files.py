"""The run package's file primitives: nothing is written through a link, and every write is whole or absent.

A folder is opened component by component with O_NOFOLLOW, so a symbolic link planted anywhere
on the way (`models`, `cache/embeddings`, `models/round_01`) is refused instead of followed; files
are created with O_NOFOLLOW under names no one can guess in advance (the writer's pid and a random
token), then renamed over the target, which replaces a planted link instead of writing through it.
`fsync` and `rename` are the two points where a kill matters: the crash test injects its kills there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from alloop.tools.errors import InputError, PathEscapeError
from alloop.tools.run import journal

TEMP_SUFFIX = ".tmp"
TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
"""`.<target>.<pid>-<token>.tmp`: whose temp file it is, so a stale one can be told from a live one."""
OLD_TEMP_AGE = 3600.0
"""A temp file of an older alloop (no pid in its name) is stale after this many seconds."""
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_MODE = 0o600
CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def fsync(fd: int) -> None:
    """Flush a file or folder to disk (one of the points the crash test kills at)."""
    os.fsync(fd)


def rename(source: str, target: str, dir_fd: int, target_dir_fd: int | None = None) -> None:
    """Rename inside open folders, replacing a file or link at the target (a crash-test kill point)."""
    os.replace(source, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd if target_dir_fd is None else target_dir_fd)


def temp_name(target: str) -> str:
    """A fresh temp name beside `target`: its writer's pid and a random token, never a fixed name."""
    return f".{target}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


def is_stale_temp(name: str, mtime: float) -> bool:
    """Whether a temp file was left by a writer that is gone (a kill): its pid is dead, or it is old."""
    match = TEMP_NAME.match(name)
    if match is None:
        return name.startswith(".") and name.endswith(TEMP_SUFFIX) and time.time() - mtime > OLD_TEMP_AGE
    return not pid_alive(int(match["pid"]))


def pid_alive(pid: int) -> bool:
    """Whether a process of that id runs on this machine (our own pid counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _link_error(folder: Path, part: str, exc: OSError) -> Exception:
    where = folder / part
    if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and where.is_symlink()):
        return PathEscapeError(
            f"{where} is a symbolic link; alloop writes nothing through a link in a run: remove the link "
            "(or replace it with the real folder)"
        )
    if exc.errno == errno.ENOTDIR:
        return InputError(f"{where} is a file where alloop needs a folder; move it away")
    return exc


@contextlib.contextmanager
def open_folder(folder: Path, create: bool = False) -> Iterator[int]:
    """A descriptor of `folder`, reached without following any link (made on the way with `create`)."""
    folder = Path(os.path.abspath(folder))
    fd = os.open("/", _DIR_FLAGS)
    try:
        reached = Path("/")
        for part in folder.parts[1:]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise _link_error(reached, part, exc) from exc
            except OSError as exc:
                raise _link_error(reached, part, exc) from exc
            os.close(fd)
            fd, reached = child, reached / part
        yield fd
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_bytes(path: Path, data: bytes) -> None:
    """Write a file whole or not at all: a fresh temp file beside it, fsynced, renamed over it.

    Under a run's lock the old version is kept in the run's journal first, so an interrupted step
    can be undone as a whole.
    """
    with open_folder(path.parent, create=True) as folder:
        tmp = temp_name(path.name)
        fd = os.open(tmp, CREATE_NEW, _FILE_MODE, dir_fd=folder)
        try:
            try:
                _write_all(fd, data)
                fsync(fd)
            finally:
                os.close(fd)
            journal.before_put(path, folder)
            rename(tmp, path.name, folder)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=folder)
            raise
        fsync(folder)


def append_text(path: Path, text: str) -> None:
    """Append and fsync, never through a link; under a run's lock the old length is journaled first."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{path}: the text to append holds a lone surrogate, which is not a character") from None
    with open_folder(path.parent, create=True) as folder:
        journal.before_append(path, folder)
        try:
            fd = os.open(path.name, APPEND, _FILE_MODE, dir_fd=folder)
        except OSError as exc:
            raise _link_error(path.parent, path.name, exc) from exc
        try:
            _write_all(fd, data)
            fsync(fd)
        finally:
            os.close(fd)


def remove(path: Path) -> None:
    """Remove a file or folder (a link is removed, never followed); journaled under a run's lock."""
    try:
        with open_folder(path.parent) as folder:
            os.stat(path.name, dir_fd=folder, follow_symlinks=False)
            if journal.move_aside(path, folder):
                return
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path.name, dir_fd=folder)
            else:
                os.unlink(path.name, dir_fd=folder)
            fsync(folder)
    except FileNotFoundError:
        return  # nothing there (or not even its folder)


def place_folder(staging: Path, target: Path) -> None:
    """Move a finished folder (say, trained encoder weights) into place; what was there goes first."""
    remove(target)
    with open_folder(staging.parent) as source, open_folder(target.parent, create=True) as folder:
        journal.before_place(target, folder)
        rename(staging.name, target.name, source, folder)
        fsync(folder)


def open_lock_file(folder: Path) -> int:
    """The run's `.lock`, opened read-write without following a link (a planted link is refused)."""
    with open_folder(folder) as fd:
        try:
            return os.open(".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, _FILE_MODE, dir_fd=fd)
        except OSError as exc:
            raise _link_error(folder, ".lock", exc) from exc


def refuse_link(path: Path) -> None:
    """Refuse a run file that is a symbolic link (say, a planted labels.jsonl → elsewhere)."""
    if path.is_symlink():
        raise PathEscapeError(
            f"{path} is a symbolic link; alloop reads and writes a run's own files only: remove the link"
        )


STAGING_NAME = re.compile(r"^\..+[.-](?P<pid>\d+)-[0-9a-f]{8}$")


def make_folder(parent: Path, prefix: str) -> Path:
    """A fresh staging folder `<prefix><pid>-<token>` under `parent` (reached without following links)."""
    with open_folder(parent, create=True) as folder:
        name = f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
        os.mkdir(name, 0o700, dir_fd=folder)
    return parent / name


def is_stale_folder(name: str, mtime: float) -> bool:
    """Whether a staging folder was left by a writer that is gone (its pid is dead, or it is old)."""
    match = STAGING_NAME.match(name)
    if match is None:
        return time.time() - mtime > OLD_TEMP_AGE
    return not pid_alive(int(match["pid"]))
