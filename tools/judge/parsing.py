"""Strict parsing of a judge's answer into the run's label schema.

The judge is told to answer with one JSON object and nothing else. Here that object is read and
checked against the output kind and the label schema; nothing is guessed. A reply that is not one
JSON object is `unparseable`; JSON with a missing, extra or invalid key, or a label outside the
schema, is `out_of_schema`; `{"refusal": "..."}` is a recorded refusal. Only a whole, valid answer
is `ok`. The one leniency: a reply wrapped whole in a Markdown code fence is unwrapped, since the
fence changes nothing about what was said.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alloop.tools.run.schema import TaskSpec

ANSWER_FORMAT_VERSION = "json-1"
"""Bump when the answer format the judge is told to use changes (it is logged per record)."""

_FENCE = re.compile(r"^```(?:json|JSON)?[ \t]*\n(?P<body>.*)\n[ \t]*```$", re.DOTALL)
RATIONALE_MAX_CHARS = 2000


@dataclass
class ParsedAnswer:
    """What a reply says, or why it cannot be taken."""

    status: str
    label: str | float | list[str] | None = None
    score: float | None = None
    ranking: list[str] | None = None
    rationale: str | None = None
    refusal: str | None = None
    error: str | None = None


def label_shape(spec: TaskSpec) -> str:
    """How a label of this task is written in JSON (for prompts and errors)."""
    if spec.task_type == "multi_select":
        return f"a JSON list of zero or more of {json.dumps(spec.labels)}, each at most once"
    if spec.task_type == "magnitude":
        return "a number"
    if spec.task_type in {"free_text", "cloze"}:
        return "a non-empty string"
    return f"exactly one of {json.dumps(spec.labels)} (copied exactly)"


def _check_label(spec: TaskSpec, value: Any) -> tuple[str | float | list[str] | None, str | None]:
    """(label, None) when the value fits the schema, else (None, what is wrong)."""
    allowed = spec.labels
    if spec.task_type == "multi_select":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None, f"label must be a list of strings for multi_select, got {json.dumps(value)[:80]}"
        bad = [v for v in value if v not in allowed]
        if bad:
            return None, f"labels {bad} are not in the schema {allowed}"
        if len(set(value)) != len(value):
            return None, "a label appears twice in the list"
        return list(value), None
    if spec.task_type == "magnitude":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None, f"label must be a finite number for magnitude, got {json.dumps(value)[:80]}"
        return float(value), None
    if spec.task_type in {"free_text", "cloze"}:
        if not isinstance(value, str) or not value.strip():
            return None, "label must be a non-empty string"
        return value, None
    if not isinstance(value, str):
        return None, f"label must be a string, got {json.dumps(value)[:80]}"
    if value not in allowed:
        return None, f"label {value!r} is not in the schema {allowed}"
    return value, None


_KEYS: dict[str, tuple[set[str], set[str]]] = {
    # kind: (required keys, optional keys)
    "label": ({"label"}, {"rationale"}),
    "score": ({"score"}, {"label", "rationale"}),
    "ranking": ({"ranking"}, {"rationale"}),
    "rationale": ({"rationale"}, {"label"}),
}


def extract_object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The single JSON object a reply consists of, or why there is none."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group("body").strip()
    if not body:
        return None, "empty answer"
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, f"not a single JSON object ({exc.msg} at char {exc.pos})"
    if not isinstance(value, dict):
        return None, f"a JSON {type(value).__name__}, not an object"
    return value, None


def parse_answer(text: str, kind: str, spec: TaskSpec, item_ids: Sequence[str] = ()) -> ParsedAnswer:
    """Parse a reply for `kind`; `item_ids` are the ids a ranking must order (each once)."""
    obj, problem = extract_object(text)
    if obj is None:
        return ParsedAnswer(status="unparseable", error=problem)
    if "refusal" in obj:
        reason = obj["refusal"]
        extra = set(obj) - {"refusal", "rationale"}
        if not isinstance(reason, str) or not reason.strip() or extra:
            return ParsedAnswer(status="out_of_schema", error='a refusal is {"refusal": "<why>"} and nothing else')
        return ParsedAnswer(status="refused", refusal=reason.strip()[:RATIONALE_MAX_CHARS])
    required, optional = _KEYS[kind]
    missing = required - set(obj)
    extra = set(obj) - required - optional
    if missing:
        return ParsedAnswer(status="out_of_schema", error=f"missing key(s) {sorted(missing)} for kind {kind!r}")
    if extra:
        return ParsedAnswer(status="out_of_schema", error=f"unexpected key(s) {sorted(extra)} for kind {kind!r}")
    parsed = ParsedAnswer(status="ok")
    if "rationale" in obj:
        rationale = obj["rationale"]
        if not isinstance(rationale, str):
            return ParsedAnswer(status="out_of_schema", error="rationale must be a string")
        parsed.rationale = rationale.strip()[:RATIONALE_MAX_CHARS]
        if kind == "rationale" and not parsed.rationale:
            return ParsedAnswer(status="out_of_schema", error="rationale is empty")
    if "label" in obj:
        label, why = _check_label(spec, obj["label"])
        if why:
            return ParsedAnswer(status="out_of_schema", error=why)
        parsed.label = label
    if "score" in obj:
        score = obj["score"]
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0.0 <= float(score) <= 1.0:
            return ParsedAnswer(
                status="out_of_schema", error=f"score must be a number in [0, 1], got {json.dumps(score)[:40]}"
            )
        parsed.score = float(score)
    if kind == "ranking":
        ranking = obj["ranking"]
        expected = list(item_ids)
        if not isinstance(ranking, list) or not all(isinstance(v, str) for v in ranking):
            return ParsedAnswer(status="out_of_schema", error="ranking must be a list of item ids (strings)")
        if sorted(ranking) != sorted(expected) or len(set(ranking)) != len(ranking):
            unknown = sorted(set(ranking) - set(expected))[:5]
            absent = sorted(set(expected) - set(ranking))[:5]
            return ParsedAnswer(
                status="out_of_schema",
                error=f"ranking must list every item id exactly once (unknown {unknown}, missing {absent})",
            )
        parsed.ranking = ranking
    return parsed
