"""write_report: a researcher's summary of the run, from its files alone (report.md, report.html, a plot).

Write report.md (spec, round table with gold_* and judge_* kept apart, labels by source, per-class
F1, notes), learning_curve.png and report.html (one self-contained page with every figure) into the
run folder. When spec.json turns W&B tracking on, the settled rounds not yet logged go to W&B too
(alloop.tools.tracking; `alloop track` turns it on).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.report.page import write_page
from alloop.tools.report.report import learning_curve, report_markdown
from alloop.tools.report.sections import check_baseline
from alloop.tools.run.rundir import atomic_write_text
from alloop.tools.tracking import ready, sync


class ReportInput(RunArgs):
    baseline: str | None = Field(None, description="Run on the same held-out set to draw as baseline curve.")


class ReportOutput(BaseModel):
    run: str
    report: str
    page: str
    plot: str | None
    rounds: int
    final_gold_macro_f1: float | None
    tracking: str | None = None


def write_report(args: ReportInput, ctx: ToolContext) -> ReportOutput:
    """Write report.md, learning_curve.png and report.html from the run's files (gold_* and judge_* kept apart).

    Use when status says stop or done.
    """
    run = ctx.root.run(args.run)
    tracked = ready(run.spec())  # tracking on but unusable here fails now, before anything is written
    baseline = ctx.root.run(args.baseline) if args.baseline else None
    if baseline is not None:
        check_baseline(run, baseline)
    with run.lock():  # one consistent snapshot: no round half-written by a train or score call under way
        rows = run.results()
        plot = learning_curve(run, rows)
        atomic_write_text(run.report_path, report_markdown(run, plot))
        page = write_page(run, baseline)
    synced = sync(run, baseline) if tracked != "off" else None
    return ReportOutput(
        run=args.run,
        report=run.report_path.name,
        page=page,
        plot=plot,
        rounds=len(rows),
        final_gold_macro_f1=rows[-1].gold_macro_f1 if rows else None,
        tracking=synced.summary() if synced else None,
    )


SPEC = ToolSpec(
    name="write_report",
    fn=write_report,
    input_model=ReportInput,
    output_model=ReportOutput,
    behaviour="writes",
    idempotent=True,
)
