"""status: where a run stands and the next step to take."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import AlloopError
from alloop.tools.run.labels import answered_items
from alloop.tools.run.models import ModelDir, model_rounds
from alloop.tools.run.rundir import RunDir
from alloop.tools.train_glmm import cannot_train

COLLECT = {
    "file": "export_batch, then import_labels when the file comes back",
    "argilla": "push_to_argilla, then pull_from_argilla",
    "jatos": "build_jspsych and export_jzip, run the study on JATOS, then pull_jatos",
    "simulated": "simulate_annotator",
}


class StatusInput(RunArgs):
    pass


class StatusOutput(BaseModel):
    run: str
    task_type: str
    spec_version: int
    pool_size: int
    heldout_size: int
    labels_by_source: dict[str, int]
    n_labeled_items: int = Field(description="Pool items with an answer; held-out answers only evaluate.")
    selection_rounds: list[int]
    model_rounds: list[int]
    pending_in_latest_batch: int
    last_result: dict[str, Any] | None
    annotation_progress: dict[str, Any] | None = Field(
        None, description="Argilla: records done and pending per round and annotator (when the run pushed there)."
    )
    next_step: str = Field(description="The tool to call next, and why.")
    done: bool = False


def status(args: StatusInput, ctx: ToolContext) -> StatusOutput:
    """Summarize the run (sizes, labels by source, rounds, last results row) and say what to do next."""
    run = ctx.root.run(args.run)
    spec = run.spec()
    events = run.labels()
    answered = answered_items(events)
    selections = run.selection_rounds()
    models = model_rounds(run)
    results = run.results()
    last = results[-1] if results else None
    heldout = run.heldout()
    heldout_answered = answered & set(heldout.ids) if heldout is not None else set()
    untrainable = cannot_train(spec)
    pending = 0
    done = False
    progress = _argilla_progress(run)
    if not selections:
        step = "seed_set: choose the first items to label" + (
            " (strategy 'existing' confirms the imported labels)" if events else ""
        )
        if untrainable is not None:
            step += f"; {spec.task_type} runs cannot be trained yet, so the loop stops once they are labeled"
    else:
        latest = run.latest_selection_round()
        pending = sum(1 for row in run.selection(latest) if row.item_id not in answered)
        waiting = _argilla_waiting(progress, latest)
        if pending and waiting:
            step = waiting
        elif pending:
            step = f"collect labels for round {latest} ({pending} pending): {COLLECT[spec.destination]}"
        elif last is not None and last.final:
            step, done = f"done: round {last.round} is the final model; write the report (write_report)", True
        elif last is not None and last.stop_decision == "stop":
            step, done = f"stop: {last.stop_reasons}; write the report (write_report)", True
        elif not models or models[-1] <= latest:
            max_rounds = spec.budget.max_rounds
            if max_rounds is not None and models and models[-1] >= max_rounds:
                step, done = f"stop: the budget's {max_rounds} rounds are done; write the report (write_report)", True
            elif untrainable is not None:
                step, done = f"stop: {untrainable}", True
            else:
                step = f"train_glmm: train round {latest + 1} on the {len(answered - heldout_answered)} answered items"
                if heldout_answered:
                    step += f" (the {len(heldout_answered)} answered held-out items only evaluate)"
        elif not ModelDir(run, models[-1]).has_predictions():
            step = f"score_pool: score the pool with round {models[-1]}'s model"
        else:
            step = f"check_convergence, then select_batch for round {models[-1]}"
    return StatusOutput(
        run=args.run,
        task_type=spec.task_type,
        spec_version=spec.spec_version,
        pool_size=len(run.pool()),
        heldout_size=len(heldout) if heldout is not None else 0,
        labels_by_source=dict(Counter(e.source for e in events)),
        n_labeled_items=len(answered - heldout_answered),
        selection_rounds=selections,
        model_rounds=models,
        pending_in_latest_batch=pending,
        last_result=last.model_dump() if last else None,
        annotation_progress=progress,
        next_step=step,
        done=done,
    )


def _argilla_progress(run: RunDir) -> dict[str, Any] | None:
    """The run's Argilla progress, or the reason it could not be read; None if never pushed."""
    if "argilla" not in run.destinations():
        return None
    from alloop.tools.argilla import argilla_progress

    try:
        return argilla_progress(run)
    except AlloopError as exc:
        return {"error": str(exc)}


def _argilla_waiting(progress: dict[str, Any] | None, round_: int) -> str | None:
    """What the Argilla side of a pending batch needs: a pull, or annotators."""
    this_round = ((progress or {}).get("rounds") or {}).get(str(round_))
    if not this_round:
        return None
    if this_round.get("not_pulled"):
        return f"pull_from_argilla: {this_round['not_pulled']} answers for round {round_} are in Argilla"
    return f"wait for annotators: round {round_} has {this_round.get('pending', 0)} records pending in Argilla"


SPEC = ToolSpec(
    name="status",
    fn=status,
    input_model=StatusInput,
    output_model=StatusOutput,
    behaviour="remote",  # it reads the run's progress from Argilla when the run pushed there
    idempotent=True,
)
