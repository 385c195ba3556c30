"""MCP elicitation for interview_spec: ask the open questions as a form when the client can.

The form is flat (elicitation allows primitives only); its answers are merged into the tool's
arguments, so the same `interview_spec` function runs whichever way the answers arrived. A
client without elicitation, or a person who declines, gets the open questions back instead.
Answers from earlier calls are kept by the tool, so the form asks only what is still open.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal, get_args

from mcp.server.elicitation import AcceptedElicitation, CancelledElicitation, DeclinedElicitation
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import BaseModel, Field

from alloop.tools.base import ToolContext
from alloop.tools.errors import AlloopError
from alloop.tools.interview_spec import InterviewInput, preview_open_questions
from alloop.tools.run.rundir import RunRoot
from alloop.tools.run.schema import Destination, JudgeUse, LabeledState, Metric, PredictionUnit, TaskType

JudgeAnswer = Literal[("no", *get_args(JudgeUse))]
"""One flat choice: an elicitation form takes a single enum, not a union of them."""


class InterviewForm(BaseModel):
    """The interview as a form; every field optional, lists as comma-separated text."""

    pool: str | None = Field(None, description="Pool JSONL file, relative to the run root")
    heldout: str | None = Field(None, description="Held-out JSONL with gold labels, split:0.2, or none")
    task_type: TaskType | None = None
    labels: str | None = Field(None, description="Labels in order, comma-separated")
    labeled_state: LabeledState | None = None
    prediction_unit: PredictionUnit | None = None
    metric: Metric | None = None
    batch_size: int | None = Field(None, ge=1)
    max_rounds: int | None = Field(None, ge=1)
    max_examples: int | None = Field(None, ge=1)
    max_hours: float | None = None
    max_cost: float | None = None
    plateau_epsilon: float | None = None
    destination: Destination | None = None
    judge: JudgeAnswer | None = None


Outcome = AcceptedElicitation[InterviewForm] | DeclinedElicitation | CancelledElicitation


def _resolver(root: RunRoot):
    def ask_open_questions(
        ctx: Context,
        run: str,
        pool: str | None = None,
        heldout: str | None = None,
        task_type: str | None = None,
        labels: list[str] | None = None,
    ) -> Elicit[InterviewForm] | None:
        capabilities = ctx.client_capabilities
        if capabilities is None or capabilities.elicitation is None:
            return None
        try:
            args = InterviewInput(run=run, pool=pool, heldout=heldout, task_type=task_type, labels=labels)
            questions = preview_open_questions(args, root)
        except (AlloopError, ValueError):
            return None  # the tool itself reports the problem
        if not questions:
            return None
        lines = "\n".join(f"- {q.question}" for q in questions)
        return Elicit(f"Setting up run {run!r}. Please answer what you can:\n{lines}", InterviewForm)

    return ask_open_questions


def interview_parameters(root: RunRoot) -> list[inspect.Parameter]:
    annotation = Annotated[Outcome, Resolve(_resolver(root))]
    return [inspect.Parameter("answers", inspect.Parameter.KEYWORD_ONLY, annotation=annotation)]


async def interview_hook(
    arguments: dict[str, Any], resolved: dict[str, Any], ctx: Context, tool_ctx: ToolContext
) -> None:
    """Merge accepted form answers into the arguments (arguments given by the agent win)."""
    outcome = resolved.get("answers")
    form = getattr(outcome, "data", None)
    if not isinstance(form, InterviewForm):
        return
    answers = form.model_dump(exclude_none=True)
    if "labels" in answers:
        answers["labels"] = [part.strip() for part in answers["labels"].split(",") if part.strip()]
    if "judge" in answers:
        judge = answers.pop("judge")
        answers["judge_uses"] = [] if judge == "no" else [judge]
    for key, value in answers.items():
        if arguments.get(key) in (None, [], ""):
            arguments[key] = value
