"""JATOS study archives (.jzip): write one from a study folder, read and validate any.

A .jzip is a zip with exactly one `.jas` file (the study's properties as JSON, format
version 3) and at most one folder (the study assets) at its top. The checks here follow
JATOS's own import code (ImportExportService, ZipUtil.unzip, StudyProperties,
ComponentProperties, BatchProperties): entry names may not leave the archive, titles are
non-empty text of at most 255 characters without HTML, the assets folder name is a legal file
name and not a reserved one, component paths match JATOS's path pattern, batch limits are at
least 1, worker types are JATOS's, and the *Input/jsonData fields are JSON in a string.

UUIDs are derived from the run and round (uuid5), so exporting the same round again and
importing it updates the study in JATOS instead of adding a second one.
"""

from __future__ import annotations

import io
import json
import re
import stat
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from alloop.tools.errors import InputError

JAS_VERSION = "3"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/alloop/alloop/jatos-study")
RESERVED_DIR_NAMES = frozenset({"jatos", "publix", "public", "assets", "study_assets_root", "study_assets"})
ILLEGAL_IN_FILENAME = re.compile(r"[\s*?\"\\\x00/,`<>|:~!§$%&^°]")
HTML_FILE_PATH = re.compile(r"^[\w\d_-][\w\d/_-]*\.[\w\d_-]+$", re.ASCII)
WORKER_TYPES = frozenset(
    {"Jatos", "PersonalSingle", "PersonalMultiple", "GeneralSingle", "GeneralMultiple", "MT", "MTSandbox"}
)
HTML_TAG = re.compile(r"<\s*/?\s*[A-Za-z!?]")
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


class JzipError(InputError):
    """A study archive that JATOS would refuse (or that would escape its folder)."""


@dataclass
class Jzip:
    """A read and validated archive."""

    jas_name: str
    study: dict[str, Any]
    version: str
    asset_dir: str | None
    files: list[str] = field(default_factory=list)
    """Asset files, relative to the asset folder."""

    @property
    def uuid(self) -> str:
        return str(self.study["uuid"])

    @property
    def title(self) -> str:
        return str(self.study["title"])


def study_uuids(run: str, experiment: str, n_components: int = 1) -> dict[str, Any]:
    """Deterministic UUIDs for a run's experiment (e.g. "round_03"): the same run and
    experiment give the same study, component and batch UUIDs, so JATOS updates the study."""
    key = f"{run}:{experiment}"
    return {
        "study": str(uuid.uuid5(NAMESPACE, f"study:{key}")),
        "components": [str(uuid.uuid5(NAMESPACE, f"component:{key}:{i}")) for i in range(n_components)],
        "batch": str(uuid.uuid5(NAMESPACE, f"batch:{key}:default")),
    }


# -- validation ------------------------------------------------------------------------------


def _has_html(value: Any) -> bool:
    return isinstance(value, str) and bool(HTML_TAG.search(value))


def _check_title(value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{where}.title is missing or empty")
    elif len(value) > 255:
        errors.append(f"{where}.title is longer than 255 characters")
    elif _has_html(value):
        errors.append(f"{where}.title contains HTML, which JATOS does not allow")


def _check_json_string(value: Any, where: str, errors: list[str]) -> None:
    if value is None or value == "":
        return
    if not isinstance(value, str):
        errors.append(f"{where} must be JSON inside a string, got {type(value).__name__}")
        return
    try:
        json.loads(value)
    except json.JSONDecodeError:
        errors.append(f"{where} is not valid JSON")


def check_dir_name(name: Any) -> str | None:
    """Why JATOS would refuse this assets folder name, or None."""
    if not isinstance(name, str) or not name.strip():
        return "dirName is missing or empty"
    if len(name) > 255:
        return "dirName is longer than 255 characters"
    if ILLEGAL_IN_FILENAME.search(name):
        return f"dirName {name!r} has characters JATOS forbids in file names (spaces, / \\ : * ? < > | , ...)"
    if name in RESERVED_DIR_NAMES:
        return f"dirName {name!r} is reserved by JATOS ({', '.join(sorted(RESERVED_DIR_NAMES))})"
    return None


def validate_study(study: Any) -> list[str]:
    """Every reason JATOS's import would refuse these study properties (empty: fine)."""
    errors: list[str] = []
    if not isinstance(study, dict):
        return ["the .jas 'data' is not an object"]
    if not isinstance(study.get("uuid"), str) or not study["uuid"].strip() or _has_html(study["uuid"]):
        errors.append("study.uuid is missing or not plain text")
    _check_title(study.get("title"), "study", errors)
    problem = check_dir_name(study.get("dirName"))
    if problem:
        errors.append(f"study.{problem}")
    for name in ("description", "comments", "endRedirectUrl", "studyEntryMsg"):
        if _has_html(study.get(name)):
            errors.append(f"study.{name} contains HTML, which JATOS does not allow")
    if isinstance(study.get("studyEntryMsg"), str) and len(study["studyEntryMsg"].encode()) > 1000:
        errors.append("study.studyEntryMsg is longer than 1000 bytes")
    for name in ("jsonData", "studyInput"):
        _check_json_string(study.get(name), f"study.{name}", errors)
    components = study.get("componentList")
    if not isinstance(components, list):
        errors.append("study.componentList is missing")
        components = []
    for i, component in enumerate(components):
        where = f"componentList[{i}]"
        if not isinstance(component, dict):
            errors.append(f"{where} is not an object")
            continue
        if not isinstance(component.get("uuid"), str) or not component["uuid"].strip():
            errors.append(f"{where}.uuid is missing")
        _check_title(component.get("title"), where, errors)
        path = component.get("htmlFilePath")
        if path not in (None, "") and (
            not isinstance(path, str) or len(path) > 255 or not HTML_FILE_PATH.match(path)
        ):
            errors.append(f"{where}.htmlFilePath {path!r} does not match JATOS's path pattern")
        if _has_html(component.get("comments")):
            errors.append(f"{where}.comments contains HTML")
        for name in ("jsonData", "componentInput"):
            _check_json_string(component.get(name), f"{where}.{name}", errors)
    batches = study.get("batchList") or []
    if not isinstance(batches, list):
        errors.append("study.batchList is not a list")
        batches = []
    for i, batch in enumerate(batches):
        where = f"batchList[{i}]"
        if not isinstance(batch, dict):
            errors.append(f"{where} is not an object")
            continue
        _check_title(batch.get("title"), where, errors)
        for name in ("maxActiveMembers", "maxTotalMembers", "maxTotalWorkers"):
            value = batch.get(name)
            if value is not None and (not isinstance(value, int) or value < 1):
                errors.append(f"{where}.{name} must be at least 1 (or null), got {value!r}")
        active, total = batch.get("maxActiveMembers"), batch.get("maxTotalMembers")
        if isinstance(active, int) and isinstance(total, int) and total < active:
            errors.append(f"{where}.maxTotalMembers must be at least maxActiveMembers")
        for worker_type in batch.get("allowedWorkerTypes") or []:
            if worker_type not in WORKER_TYPES:
                errors.append(f"{where}.allowedWorkerTypes has an unknown worker type {worker_type!r}")
        if _has_html(batch.get("comments")):
            errors.append(f"{where}.comments contains HTML")
        for name in ("jsonData", "batchInput"):
            _check_json_string(batch.get(name), f"{where}.{name}", errors)
    return errors


def _safe_entry(name: str) -> PurePosixPath:
    """The entry's path, refused if it could land outside the folder it is unpacked into."""
    if "\x00" in name or "\\" in name:
        raise JzipError(f"illegal entry name {name!r} in the archive (backslash or NUL)")
    path = PurePosixPath(name)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise JzipError(f"illegal entry name {name!r}: absolute paths would escape the study folder (zip slip)")
    if any(part == ".." for part in path.parts):
        raise JzipError(f"illegal entry name {name!r}: '..' would escape the study folder (zip slip)")
    return path


def read_jzip(source: Path | bytes) -> Jzip:
    """Read an archive and check it as JATOS's import would; raise JzipError saying what is wrong."""
    where = "archive" if isinstance(source, bytes | bytearray) else str(source)
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise JzipError(f"{where} is not a zip archive ({exc}); export the study again") from exc
    with archive:
        top_files: list[str] = []
        top_dirs: set[str] = set()
        asset_files: list[str] = []
        for info in archive.infolist():
            path = _safe_entry(info.filename)
            if not path.parts:
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise JzipError(f"{where}: entry {info.filename!r} is a symbolic link; JATOS archives hold plain files")
            if len(path.parts) == 1 and not info.is_dir():
                top_files.append(path.name)
            else:
                top_dirs.add(path.parts[0])
                if not info.is_dir() and len(path.parts) > 1:
                    asset_files.append(str(PurePosixPath(*path.parts[1:])))
        jas = [name for name in top_files if name.endswith(".jas")]
        if len(jas) != 1:
            raise JzipError(
                f"{where}: a study archive needs exactly one .jas file at its top, found {len(jas)} "
                f"({', '.join(jas) or 'none'})"
            )
        if len(top_dirs) > 1:
            folders = ", ".join(sorted(top_dirs))
            raise JzipError(f"{where}: more than one folder at the top ({folders}); JATOS takes one")
        try:
            document = json.loads(archive.read(jas[0]).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise JzipError(f"{where}: {jas[0]} is not valid JSON ({exc})") from exc
    if not isinstance(document, dict) or "data" not in document or "version" not in document:
        raise JzipError(f"{where}: {jas[0]} needs 'version' and 'data'")
    version = str(document["version"])
    if version != JAS_VERSION:
        raise JzipError(f"{where}: {jas[0]} has version {version!r}; this reader handles version {JAS_VERSION}")
    errors = validate_study(document["data"])
    if errors:
        raise JzipError(f"{where}: JATOS would refuse this study: " + "; ".join(errors))
    return Jzip(
        jas_name=jas[0],
        study=document["data"],
        version=version,
        asset_dir=next(iter(top_dirs), None),
        files=sorted(asset_files),
    )


# -- writing ---------------------------------------------------------------------------------


def jas_document(
    *,
    uuids: dict[str, Any],
    title: str,
    dir_name: str,
    description: str = "",
    comments: str = "",
    end_redirect_url: str | None = None,
    study_input: dict[str, Any] | None = None,
    component_title: str = "Experiment",
    html_file_path: str = "index.html",
    max_total_workers: int | None = None,
    worker_types: tuple[str, ...] = (
        "Jatos",
        "PersonalSingle",
        "PersonalMultiple",
        "GeneralSingle",
        "GeneralMultiple",
    ),
) -> dict[str, Any]:
    """The .jas content ("version" first, as JATOS writes it)."""
    study_json = json.dumps(study_input, sort_keys=True) if study_input else None
    return {
        "version": JAS_VERSION,
        "data": {
            "uuid": uuids["study"],
            "title": title,
            "description": description,
            "groupStudy": False,
            "linearStudy": False,
            "allowPreview": False,
            "dirName": dir_name,
            "comments": comments,
            "jsonData": study_json,
            "endRedirectUrl": end_redirect_url,
            "studyEntryMsg": None,
            "componentList": [
                {
                    "uuid": uuids["components"][0],
                    "title": component_title,
                    "htmlFilePath": html_file_path,
                    "reloadable": True,
                    "active": True,
                    "comments": "",
                    "jsonData": None,
                }
            ],
            "batchList": [
                {
                    "uuid": uuids["batch"],
                    "title": "Default",
                    "active": True,
                    "maxActiveMembers": None,
                    "maxTotalMembers": None,
                    "maxTotalWorkers": max_total_workers,
                    "allowedWorkerTypes": list(worker_types),
                    "comments": None,
                    "jsonData": None,
                }
            ],
        },
    }


def pack_jzip(study_dir: Path, document: dict[str, Any]) -> bytes:
    """The archive's bytes: `<dirName>.jas` and the study folder as `<dirName>/...`.

    Deterministic (sorted entries, fixed times), so the same study packs to the same bytes.
    Validated before it is returned.
    """
    study = document["data"]
    errors = validate_study(study)
    if errors:
        raise JzipError("the study would be refused by JATOS: " + "; ".join(errors))
    dir_name = study["dirName"]
    study_dir = Path(study_dir)
    for component in study["componentList"]:
        if component.get("htmlFilePath") and not (study_dir / component["htmlFilePath"]).is_file():
            raise JzipError(f"{study_dir} has no {component['htmlFilePath']} (componentList htmlFilePath)")
    files = sorted(p for p in study_dir.rglob("*") if p.is_file() and not p.is_symlink())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _write(archive, f"{dir_name}.jas", (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())
        for path in files:
            relative = path.relative_to(study_dir).as_posix()
            _write(archive, f"{dir_name}/{relative}", path.read_bytes())
    data = buffer.getvalue()
    read_jzip(data)
    return data


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)
