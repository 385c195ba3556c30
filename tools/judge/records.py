"""What one judgment leaves behind: a line of judge_round_XX.jsonl.

Every field an auditor needs to replay or question a judgment is here: which backend and model
answered, under which rubric version and hash, from which exact prompt (its hash), for which use
and output kind, what it said verbatim, how that was parsed, and what it cost.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alloop.tools.run.schema import JudgeUse, utc_now

JudgeKind = Literal["label", "score", "ranking", "rationale"]
"""What the judge is asked to give: a label in the schema, a score in [0, 1], an order of the
items, or a rationale (free text, never a label)."""

JudgeStatus = Literal["ok", "refused", "unparseable", "out_of_schema", "error", "over_budget"]
"""ok: parsed into the schema. refused: the judge declined, saying why. unparseable: no single
JSON object. out_of_schema: JSON, but a key or value outside the schema. error: the backend
failed after retries. over_budget: not asked, the run's judge budget was spent."""

USES_WITH_LABELS: frozenset[str] = frozenset({"adjudication", "pseudo_labeling"})
"""Uses whose labels are written to labels.jsonl (with source `judge`); the others only log."""


class JudgeRecord(BaseModel):
    """One line of judge_round_XX.jsonl: one item judged once."""

    model_config = ConfigDict(extra="forbid")

    record_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    round: int = Field(ge=0)
    item_id: str
    item_set: Literal["pool", "heldout"] = "pool"
    use: JudgeUse
    kind: JudgeKind
    status: JudgeStatus
    label: str | float | list[str] | None = None
    score: float | None = None
    rank: int | None = None
    rationale: str | None = None
    refusal: str | None = None
    confidence: float | None = Field(
        None, description="The answer's probability among the allowed answers, where the judge chose among them."
    )
    error: str | None = Field(None, description="Why the answer was not accepted (parse or backend error).")
    backend: str
    judge_model: str
    rubric: str = Field(description="Rubric name: a built-in task type or the user file's path in the run.")
    rubric_version: str
    rubric_hash: str
    prompt_hash: str = Field(description="sha256 of the exact system prompt, messages and max_tokens sent.")
    answer_format: str
    group: str | None = Field(None, description="Ranking: the id of the group ranked together.")
    raw_answer: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = Field(None, description="Cost of this call; 0 when served from the cache.")
    cached: bool = False
    attempts: int = 0
    label_event_id: str | None = Field(None, description="The LabelEvent written for this judgment, if any.")
    backend_info: dict[str, Any] = Field(default_factory=dict)
    time: str = Field(default_factory=utc_now)
