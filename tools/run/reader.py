"""The one reader of input files: every problem a file can have becomes an InputError naming file and line.

Text is decoded as strict UTF-8 (a BOM is dropped); JSON keeps Python's limits (a 4,300-digit
integer, the nesting the parser allows) but says so instead of raising ValueError or RecursionError,
and refuses lone surrogates (`"\\ud800"`), which no UTF-8 file can store again; a CSV field over
128 KiB or a NUL byte is an error, not a `_csv.Error`. Item ids are normalized here once, the same
way for every file: text or whole numbers, surrounding spaces stripped, never empty or with control
characters, so `" p1"` and `"p1"` are one id (and a file holding both is refused).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alloop.tools.errors import InputError

CSV_FIELD_LIMIT = 128 * 1024
"""The csv module's field limit (its default), named in the error."""
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def decode(data: bytes, where: str | Path) -> str:
    """Strict UTF-8 (BOM dropped); a bad byte is named with its line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(
            f"{where}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); save the file as UTF-8"
        ) from None


def read_text(path: Path) -> str:
    """A whole input file as text; a missing file or a folder is an error naming it."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return decode(path.read_bytes(), path)


def json_loads(text: str, where: str) -> Any:
    """`json.loads` whose limits are InputErrors naming `where`; a syntax error stays a JSONDecodeError.

    (A caller that reads one of two formats catches the JSONDecodeError and tries the other.)
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply to read; flatten the value") from None
    except ValueError as exc:  # int() refused more digits than it converts
        raise InputError(f"{where}: a number with too many digits ({exc}); write it as text") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                f"{where}: a text holds a lone surrogate escape (like \\ud800), which is not a character; "
                "fix or remove it"
            ) from None
    return value


def parse_json(text: str, where: str) -> Any:
    """A JSON document, every problem an InputError naming `where`."""
    try:
        return json_loads(text, where)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def read_json(path: Path) -> Any:
    """A JSON file (a spec, a draft, a config), every problem an InputError naming the file."""
    return parse_json(read_text(path), str(path))


def parse_jsonl(lines: Iterable[str], where: str | Path, objects_only: bool = True) -> list[Any]:
    """The JSON value of each non-blank line; a malformed line is an error naming where and which line.

    The one JSON-lines parser: input files, run files and JATOS result data all read through it.
    """
    rows: list[Any] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        at = f"{where}:{number}"
        try:
            row = json_loads(line, at)
        except json.JSONDecodeError as exc:
            raise InputError(f"{at}: not valid JSON ({exc.msg}); fix or remove that line") from None
        if objects_only and not isinstance(row, dict):
            raise InputError(f"{at}: expected a JSON object per line, got {type(row).__name__}")
        rows.append(row)
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; any problem is an error naming the file and line."""
    return parse_jsonl(read_text(path).splitlines(), path)


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a CSV file with a header, as {column: text}; any problem names the file and line."""
    return [row for _, row in read_csv_lines(path, delimiter)]


def read_csv_lines(path: Path, delimiter: str = ",") -> list[tuple[int, dict[str, str]]]:
    """(line number, {column: text}) for each non-blank row below the header."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        line = reader.line_num
        if "field larger than field limit" in str(exc):
            raise InputError(
                f"{path}:{line}: a field is longer than {CSV_FIELD_LIMIT // 1024} KiB; shorten it"
            ) from None
        raise InputError(f"{path}:{line}: not a readable CSV row ({exc})") from None
    if not rows:
        return []
    header = [h.strip() for h in rows[0][1]]
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise InputError(f"{path}:1: the header names {twice} more than once; give each column one name")
    out = []
    for number, row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise InputError(f"{path}:{number}: {len(row)} fields, the header has {len(header)}")
        out.append((number, dict(zip(header, row + [""] * (len(header) - len(row)), strict=True))))
    return out


def normalize_id(value: Any, where: str) -> str:
    """An item id as alloop keeps it: text or a whole number, stripped of surrounding spaces."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(
            f"{where}: id {value!r} must be text or a whole number, not {type(value).__name__}; write it as text"
        )
    text = str(value).strip()
    if not text:
        raise InputError(f"{where}: missing 'id' (it is empty or only spaces)")
    if _CONTROL.search(text):
        raise InputError(f"{where}: id {text!r} holds a control character (a NUL, tab or line break); remove it")
    return text
