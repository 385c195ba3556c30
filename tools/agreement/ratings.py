"""Reliability data: rows `{unit, coder, value}` checked and coded into a units × coders table.

A missing value is an absent row or `value: null`. Values are checked against the level of
measurement and the label schema here, once, so the statistics never see a malformed table.
At the set levels (`masi`, `jaccard`) a value is a set of options (a list, or text 'a|b'); the
domain then holds the sets seen, each as a tuple of options (schema order, else sorted).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from alloop.tools.agreement.sets import SET_LEVELS, option_set
from alloop.tools.errors import InputError
from alloop.tools.run.rundir import read_jsonl

Level = Literal["nominal", "ordinal", "interval", "ratio", "masi", "jaccard"]
LEVELS: tuple[str, ...] = get_args(Level)
MISSING = -1

_UNIT_KEYS = ("unit", "item_id")
_CODER_KEYS = ("coder", "annotator")
_VALUE_KEYS = ("value", "label")


@dataclass(frozen=True, eq=False)
class Ratings:
    """Reliability data: `codes[u, c]` is the index into `domain` that coder c gave unit u.

    `MISSING` (-1) marks a unit the coder did not code. `domain` is ordered (the label schema,
    or the sorted values seen); for interval and ratio data it holds numbers, for the set
    levels option sets (tuples).
    """

    units: tuple[str, ...]
    coders: tuple[str, ...]
    codes: np.ndarray
    domain: tuple[Any, ...]
    level: Level = "nominal"
    source: str = "annotations"

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any]],
        level: str = "nominal",
        labels: Sequence[str] | None = None,
        source: str = "annotations",
    ) -> Ratings:
        """Build from rows `{unit, coder, value}` (also read: `item_id`, `annotator`, `label`).

        Raises `InputError`, naming the row, for a missing field, a value outside the label
        schema or not of the level's type, a coder coding a unit twice, an empty input, one
        coder only, or no unit coded by two coders.
        """
        level = _check_level(level)
        schema = _Schema(level, labels, source)
        unit_keys: list[str] = []
        coder_keys: list[str] = []
        values: list[Any] = []
        lines: list[int] = []
        n_rows = 0
        for number, row in enumerate(rows, start=1):
            n_rows += 1
            where = f"{source}:{number}"
            if not isinstance(row, Mapping):
                raise InputError(f"{where}: expected an object {{unit, coder, value}}, got {type(row).__name__}")
            unit = _field(row, _UNIT_KEYS, where)
            coder = _field(row, _CODER_KEYS, where)
            raw = next((row[k] for k in _VALUE_KEYS if k in row), _ABSENT)
            if raw is _ABSENT:
                raise InputError(f"{where}: no 'value' field; each row is {{unit, coder, value}}")
            value = schema.parse(raw, where)
            if value is None:
                continue
            unit_keys.append(unit)
            coder_keys.append(coder)
            values.append(value)
            lines.append(number)
        if n_rows == 0:
            raise InputError(f"{source}: no annotations (the input is empty); give rows {{unit, coder, value}}")
        if not values:
            raise InputError(f"{source}: all {n_rows} rows have an empty value; nothing to compare")
        domain = schema.domain(values)
        lookup = {value: index for index, value in enumerate(domain)}
        unit_ids, unit_index = np.unique(np.array(unit_keys, dtype=object).astype(str), return_inverse=True)
        coder_ids, coder_index = np.unique(np.array(coder_keys, dtype=object).astype(str), return_inverse=True)
        value_index = np.fromiter((lookup[v] for v in values), dtype=np.int64, count=len(values))
        flat = unit_index * len(coder_ids) + coder_index
        order = np.argsort(flat, kind="stable")
        repeated = np.flatnonzero(np.diff(flat[order]) == 0)
        if repeated.size:
            first, second = lines[order[repeated[0]]], lines[order[repeated[0] + 1]]
            raise InputError(
                f"{source}:{second}: coder {coder_keys[order[repeated[0]]]!r} already coded unit "
                f"{unit_keys[order[repeated[0]]]!r} on line {first}; each coder gives one value per unit "
                "(keep the latest and drop the other)"
            )
        codes = np.full((len(unit_ids), len(coder_ids)), MISSING, dtype=np.int64)
        codes[unit_index, coder_index] = value_index
        ratings = cls(
            units=tuple(unit_ids.tolist()),
            coders=tuple(coder_ids.tolist()),
            codes=codes,
            domain=tuple(domain),
            level=level,  # type: ignore[arg-type]
            source=source,
        )
        ratings.check_comparable()
        return ratings

    @classmethod
    def from_matrix(
        cls,
        data: Sequence[Sequence[Any]] | np.ndarray,
        level: str = "nominal",
        labels: Sequence[str] | None = None,
        coders: Sequence[str] | None = None,
        units: Sequence[str] | None = None,
        source: str = "matrix",
    ) -> Ratings:
        """Build from a coders × units matrix (the `krippendorff` package's layout).

        None or NaN marks a missing value.
        """
        matrix = np.asarray(data, dtype=object)
        if matrix.ndim != 2:
            raise InputError(f"{source}: expected a coders × units matrix, got shape {matrix.shape}")
        coder_names = list(coders) if coders is not None else [f"c{i + 1}" for i in range(matrix.shape[0])]
        unit_names = list(units) if units is not None else [f"u{j + 1}" for j in range(matrix.shape[1])]
        rows = [
            {"unit": unit_names[j], "coder": coder_names[i], "value": matrix[i, j]}
            for i in range(matrix.shape[0])
            for j in range(matrix.shape[1])
        ]
        return cls.from_rows(rows, level=level, labels=labels, source=source)

    # -- shape ---------------------------------------------------------------------------
    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_coders(self) -> int:
        return len(self.coders)

    @property
    def n_values(self) -> int:
        return len(self.domain)

    def counts(self) -> np.ndarray:
        """units × values: how many coders gave unit u value v."""
        present = self.codes >= 0
        rows = np.nonzero(present)[0]
        flat = rows * self.n_values + self.codes[present]
        return np.bincount(flat, minlength=self.n_units * self.n_values).reshape(self.n_units, self.n_values)

    def pairable(self) -> np.ndarray:
        """Units with values from two or more coders (the only ones agreement can see)."""
        return (self.codes >= 0).sum(axis=1) >= 2

    def numbers(self) -> np.ndarray:
        """The domain as numbers: the values for interval/ratio data, else the positions (sets too)."""
        if self.level in ("interval", "ratio"):
            return np.asarray(self.domain, dtype=np.float64)
        return np.arange(self.n_values, dtype=np.float64)

    def coder_index(self, coder: str) -> int:
        try:
            return self.coders.index(coder)
        except ValueError:
            raise InputError(f"{self.source}: no coder {coder!r} (coders: {', '.join(self.coders)})") from None

    def select_coders(self, coders: Sequence[str]) -> Ratings:
        """The same units with only these coders (units keep their rows, perhaps empty)."""
        columns = [self.coder_index(c) for c in coders]
        return Ratings(
            units=self.units,
            coders=tuple(coders),
            codes=self.codes[:, columns],
            domain=self.domain,
            level=self.level,
            source=self.source,
        )

    def with_level(self, level: str) -> Ratings:
        level = _check_level(level)
        if level in ("interval", "ratio") and not all(_is_number(v) for v in self.domain):
            raise InputError(f"{self.source}: level {level!r} needs numeric values, got {list(self.domain)[:5]}")
        sets = all(isinstance(v, tuple) for v in self.domain)
        if (level in SET_LEVELS) != sets and not (level == "nominal" and sets):
            raise InputError(
                f"{self.source}: level {level!r} does not fit values {list(self.domain)[:5]}; option sets "
                f"take {', '.join(SET_LEVELS)} (or nominal for exact set identity), single values the others"
            )
        return Ratings(self.units, self.coders, self.codes, self.domain, level, self.source)  # type: ignore[arg-type]

    def check_comparable(self) -> None:
        """Two coders at least, and one unit coded by two of them."""
        if self.n_coders < 2:
            only = self.coders[0] if self.coders else "none"
            raise InputError(
                f"{self.source}: only one coder ({only!r}); agreement needs values from two or more coders"
            )
        if not self.pairable().any():
            raise InputError(
                f"{self.source}: no unit has values from two coders ({self.n_units} units, {self.n_coders} "
                "coders, but never overlapping); agreement needs units coded more than once"
            )


_ABSENT = object()


def _field(row: Mapping[str, Any], keys: Sequence[str], where: str) -> str:
    for key in keys:
        if key in row and row[key] not in (None, ""):
            value = row[key]
            if isinstance(value, (list, dict)):
                raise InputError(f"{where}: field {key!r} must be a string or number, got {type(value).__name__}")
            return str(value)
    raise InputError(f"{where}: no {keys[0]!r} field; each row is {{unit, coder, value}}")


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise InputError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    return level


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def number_text(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


class _Schema:
    """Checks each value against the level and the label schema; builds the ordered domain."""

    def __init__(self, level: str, labels: Sequence[str] | None, source: str) -> None:
        self.level = level
        self.source = source
        self.labels = [str(label) for label in labels] if labels else None
        self.numeric_labels: dict[str, float] | None = None
        if self.labels is not None:
            if len(set(self.labels)) != len(self.labels):
                raise InputError(f"{source}: the label schema repeats a label: {self.labels}")
            if level in ("interval", "ratio"):
                numeric: dict[str, float] = {}
                for label in self.labels:
                    try:
                        numeric[label] = float(label)
                    except ValueError:
                        raise InputError(
                            f"{source}: level {level!r} needs numeric labels, but the schema has {label!r}; "
                            "use level 'ordinal' for ordered categories"
                        ) from None
                if level == "ratio" and any(v < 0 for v in numeric.values()):
                    raise InputError(f"{source}: level 'ratio' needs values ≥ 0, the schema has {self.labels}")
                self.numeric_labels = numeric

    def parse(self, raw: Any, where: str) -> Any:
        """The value's key in the domain, or None when the value is missing."""
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            return None
        if self.level in SET_LEVELS:
            return self._parse_set(raw, where)
        if isinstance(raw, (list, tuple, set, frozenset, dict)):
            raise InputError(
                f"{where}: value {raw!r} is a {type(raw).__name__}; level {self.level!r} compares single values "
                f"(for multi-select answers use level {' or '.join(SET_LEVELS)})"
            )
        if self.labels is not None:
            text = raw if isinstance(raw, str) else (str(raw).lower() if isinstance(raw, bool) else number_text(raw))
            if text not in self.labels:
                raise InputError(
                    f"{where}: value {raw!r} is not in the label schema {self.labels}; fix the row or the schema"
                )
            return self.numeric_labels[text] if self.numeric_labels is not None else text
        if isinstance(raw, bool):
            if self.level != "nominal":
                raise InputError(f"{where}: value {raw!r} is true/false; level {self.level!r} needs numbers")
            return str(raw).lower()
        if self.level == "nominal":
            if _is_number(raw):
                return float(raw)
            return str(raw)
        number = raw if _is_number(raw) else _parse_float(raw)
        if number is None or not math.isfinite(float(number)):
            if self.level == "ordinal":
                raise InputError(
                    f"{where}: value {raw!r} is text; ordinal data needs numbers or the label order "
                    "(pass the label schema, e.g. --labels low,mid,high)"
                )
            raise InputError(f"{where}: value {raw!r} is not a number; level {self.level!r} needs numeric values")
        number = float(number)
        if self.level == "ratio" and number < 0:
            raise InputError(f"{where}: value {raw!r} is negative; level 'ratio' needs values ≥ 0 (or use 'interval')")
        return number

    def _parse_set(self, raw: Any, where: str) -> tuple[str, ...]:
        options = option_set(raw)
        if options is None:
            raise InputError(
                f"{where}: value {raw!r} is not an option set; level {self.level!r} reads a list of options "
                "or text 'a|b' ('' for none chosen)"
            )
        if len(set(options)) != len(options):
            raise InputError(f"{where}: value {raw!r} names an option twice")
        if self.labels is not None:
            unknown = [o for o in options if o not in self.labels]
            if unknown:
                raise InputError(
                    f"{where}: options {unknown} of value {raw!r} are not in the label schema {self.labels}; "
                    "fix the row or the schema"
                )
            return tuple(sorted(options, key=self.labels.index))
        return tuple(sorted(options))

    def domain(self, values: Sequence[Any]) -> list[Any]:
        if self.level in SET_LEVELS:
            if self.labels is not None:
                position = {label: i for i, label in enumerate(self.labels)}
                return sorted(set(values), key=lambda value: [position[o] for o in value])
            return sorted(set(values))
        if self.labels is not None:
            if self.numeric_labels is not None:
                return sorted(set(self.numeric_labels.values()))
            return list(self.labels)
        kinds = {isinstance(v, str) for v in values}
        if len(kinds) > 1:
            raise InputError(
                f"{self.source}: values mix numbers and text ({sorted({str(v) for v in values})[:6]}); "
                "make them one type or pass the label schema"
            )
        return sorted(set(values))


def _parse_float(raw: Any) -> float | None:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def read_annotations(path: Path | str) -> list[dict[str, Any]]:
    """Rows of a JSONL annotations file; a malformed line is an error naming file and line."""
    rows = read_jsonl(Path(path))
    if not rows:
        raise InputError(f"{path}: the file is empty; give one {{unit, coder, value}} object a line")
    return rows
