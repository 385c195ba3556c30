"""simulate: run a whole bounded loop with a simulated annotator answering from gold labels.

It calls the same tools an agent would, in the order status recommends, so a demo or a
benchmark exercises exactly the agent's path.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.check_convergence import CheckConvergenceInput, check_convergence
from alloop.tools.run.labels import answered_items
from alloop.tools.run.models import ModelDir
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import SUMMARY_COLUMNS
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.seed_set import SeedInput, SeedStrategy, seed_set
from alloop.tools.select_batch import SelectInput, select_batch
from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
from alloop.tools.train_glmm import TrainInput, train_glmm


class SimulateInput(RunArgs):
    gold: str = Field(description='JSONL of {"id", "label"} rows for the pool; over MCP, under the run root.')
    rounds: int = Field(10, ge=1, le=99, description="Training rounds (each but the last selects a batch).")
    batch_size: int | None = Field(None, ge=1, description="Default: spec budget.batch_size.")
    seed_size: int | None = Field(None, ge=1, description="Default: the batch size.")
    strategy: str | None = Field(None, description="select_batch strategy; default from spec.json.")
    seed_strategy: SeedStrategy | None = None
    participants: int = Field(1, ge=1, le=99, description="Simulated people per item (see simulate_annotator).")
    noise: float = Field(0.0, ge=0, le=100, description="Their noise; 0 answers gold.")
    include_heldout: int = Field(0, ge=0, description="Held-out items everyone answers once, for the human ceiling.")


class SimulateOutput(BaseModel):
    run: str
    rounds: list[dict]
    stopped_because: str


def simulate(args: SimulateInput, ctx: ToolContext) -> SimulateOutput:
    """Run seed → (train → score → check_convergence → select → simulated labels) rounds, or go on from
    where a run stands (a loop that was stopped or killed resumes; `rounds` counts the run's rounds).

    Stops early when check_convergence says stop (its reasons are returned); returns the round table.
    Takes minutes: it embeds the pool first, then trains and scores every round.
    """
    run = ctx.root.run(args.run)
    answer = SimulateAnnotatorInput(
        run=args.run, gold=args.gold, participants=args.participants, noise=args.noise, seed=run.spec().selection.seed
    )
    if 0 not in run.selection_rounds():
        seed_set(SeedInput(run=args.run, strategy=args.seed_strategy, size=args.seed_size or args.batch_size), ctx)
    if 0 in _unanswered_rounds(run):
        simulate_annotator(answer.model_copy(update={"round": 0, "include_heldout": args.include_heldout}), ctx)
    stopped = f"{args.rounds} rounds done"
    for _ in range(args.rounds + 1):  # each pass adds a round, so this bounds a resumed loop too
        latest = run.latest_selection_round()
        if latest in _unanswered_rounds(run):
            simulate_annotator(answer.model_copy(update={"round": latest}), ctx)
        round_ = latest + 1
        if round_ > args.rounds:
            break
        if not ModelDir(run, round_).has_card():
            train_glmm(TrainInput(run=args.run), ctx)
        if not ModelDir(run, round_).has_predictions():
            score_pool(ScoreInput(run=args.run, round=round_), ctx)
        verdict = check_convergence(CheckConvergenceInput(run=args.run, round=round_, bootstrap=200), ctx)
        f1 = next((r.gold_macro_f1 for r in run.results() if r.round == round_), None)
        shown = "undefined" if f1 is None else f"{f1:.3f}"
        ctx.progress(round_, args.rounds, f"round {round_}: macro-F1 {shown}, {verdict.decision}")
        if verdict.decision == "stop":
            stopped = "; ".join(verdict.reasons)
            break
        if round_ == args.rounds:
            break
        unanswered = set(run.pool().ids) - answered_items(run.labels())  # per response, n_labeled counts answers
        if len(unanswered) < (args.batch_size or run.spec().budget.batch_size):
            stopped = "the pool is exhausted"
            break
        select_batch(SelectInput(run=args.run, strategy=args.strategy, batch_size=args.batch_size), ctx)
    return SimulateOutput(
        run=args.run,
        rounds=[{c: row[c] for c in SUMMARY_COLUMNS} for row in (r.model_dump() for r in run.results())],
        stopped_because=stopped,
    )


def _unanswered_rounds(run: RunDir) -> set[int]:
    """Selection rounds with an item no simulated or human answer has reached yet."""
    answered = answered_items(run.labels())
    return {r for r in run.selection_rounds() if any(row.item_id not in answered for row in run.selection(r))}


SPEC = ToolSpec(
    name="simulate", fn=simulate, input_model=SimulateInput, output_model=SimulateOutput, behaviour="writes"
)
