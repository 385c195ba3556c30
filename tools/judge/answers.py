"""The answers a judge may be held to: every answer the schema allows, written out as JSON.

A backend that can score text (the local model) picks one of these answers by likelihood instead
of writing freely, so it can only answer inside the schema. Labels come from the spec; scores from
a fixed grid on [0, 1]; a rationale, having no finite set of values, is generated first (bounded
in tokens) and the label chosen after it. Backends that cannot score text ignore the space.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from alloop.tools.run.schema import CLASSIFICATION_TASKS, TaskSpec

SCORE_GRID: tuple[float, ...] = tuple(round(step / 10, 1) for step in range(11))
"""The scores a constrained judge chooses among: 0.0, 0.1, …, 1.0 (JSON writes each with one decimal)."""

RATIONALE_TOKENS = 64
"""At most this many generated tokens for a constrained judge's rationale (the rubric echo stops here)."""


@dataclass(frozen=True)
class AnswerSpace:
    """One JSON key and its allowed values, optionally after a generated free-text key."""

    key: str
    values: tuple[str | float, ...]
    free: str | None = None
    free_tokens: int = RATIONALE_TOKENS

    def opening(self) -> str:
        """The answer's text up to where generation of the free field starts ('' without one)."""
        return '{"' + self.free + '": "' if self.free else ""

    def answers(self, free_text: str | None = None) -> list[str]:
        """Every allowed answer as the exact JSON text the parser will read, in the order of `values`."""
        head = {self.free: free_text or ""} if self.free else {}
        return [json.dumps({**head, self.key: value}, ensure_ascii=False) for value in self.values]

    def stems(self, free_text: str | None = None) -> list[str]:
        """The answers without their closing brace: what is scored. A label ends at its closing quote and
        a grid score has one decimal, so no stem is a prefix of another, and whether the model would
        rather go on with a rationale than close the object does not weigh on the choice."""
        return [answer[:-1] for answer in self.answers(free_text)]

    @property
    def calibrates(self) -> bool:
        """Whether a label prior from an empty item applies: to labels chosen on their own. A score means
        the same for every item, and after a rationale the label already answers to the item."""
        return self.key == "label" and self.free is None

    @property
    def signature(self) -> str:
        """What the choice depends on, for the cache key: a changed grid or label set is a new answer."""
        return json.dumps([self.key, list(self.values), self.free, self.free_tokens], ensure_ascii=False)


def answer_space(spec: TaskSpec, kind: str) -> AnswerSpace | None:
    """The constrained answers for this task and output kind; None where only free text fits."""
    single_label = spec.task_type in CLASSIFICATION_TASKS or spec.task_type == "ordinal_scale"
    if kind == "score":
        return AnswerSpace("score", SCORE_GRID)
    if not single_label:
        return None
    if kind == "label":
        return AnswerSpace("label", tuple(spec.labels))
    if kind == "rationale":
        return AnswerSpace("label", tuple(spec.labels), free="rationale")
    return None
