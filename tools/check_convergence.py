"""check_convergence: is the model as reliable as the humans, and should the run stop?

On held-out items that two or more people labeled, the round's model counts as one more rater: its
agreement with the people (Krippendorff's α, Fleiss' κ, Cohen's κ or percent agreement; default from
spec.stopping) is set beside the people's agreement with each other (the human ceiling), both with
bootstrap intervals over items. The ceiling reads every item two or more people labeled, pool items
too (annotator overlap in Argilla or jsPsych); the model only held-out ones, since it trained on the
pool. With overlap on the pool alone, the ceiling is reported by itself and the agreement rule waits.
Judge labels are never counted as human; where a judge took part its figures are reported apart.

Values are compared at the level the task type implies (the output names the distance): nominal for
classes and forced choice, ordinal for scales, interval for magnitudes, the MASI set distance for
multi_select option sets (`level=jaccard` for Jaccard, `nominal` for exact set identity), and exact
match of normalized text (casefolded, whitespace collapsed, outer punctuation stripped) for free_text
and cloze answers, which the generative head writes.

Then every stopping rule of spec.json is evaluated: max rounds, label budget (count or cost),
plateau of the held-out metric (|Δ| < ε for k rounds), stabilizing pool predictions (κ between
successive rounds ≥ threshold for k rounds), agreement with people (an absolute threshold or the
ceiling minus a margin), and a time cap. Returns stop or go, each rule's state and evidence, and
(unless record=false) writes stop_decision, stop_reasons, agreement_model_human and
agreement_human_ceiling into the round's row of results.tsv. Needs the round's
models/round_XX/predictions.npz.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from alloop.tools.agreement import Level
from alloop.tools.agreement.convergence import HumanAgreementReport, JudgeAssistedReport, level_for, measure_agreement
from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.report.figures import figure
from alloop.tools.run.models import ModelDir, latest_result_round
from alloop.tools.run.schema import AgreementMetric
from alloop.tools.stopping.evidence import gather_evidence
from alloop.tools.stopping.rules import AgreementEvidence, Interval, RuleState, decide, rules_from_spec


class CheckConvergenceInput(RunArgs):
    round: int | None = Field(None, ge=0, le=99, description="Default: the latest.")
    metric: AgreementMetric | None = Field(None, description="Default from spec.json.")
    level: Level | None = Field(None, description="Default from the task type.")
    bootstrap: int = Field(1000, ge=0, le=100_000, description="Resamples (0: no intervals).")
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = 0
    record: bool = Field(True, description="Write the decision into results.tsv.")


class CheckConvergenceOutput(BaseModel):
    run: str
    round: int
    decision: str = Field(description="stop or go.")
    reasons: list[str]
    rules: list[RuleState]
    agreement: HumanAgreementReport | None
    agreement_note: str = ""
    judge_assisted: JudgeAssistedReport | None = None
    recorded: bool
    next_step: str

    def summary(self) -> str:
        """The decision for a person: agreement beside the ceiling, each rule's verdict, the next step."""
        lines = [f"run {self.run}, round {self.round}: {self.decision.upper()}"]
        found = self.agreement
        if found is not None:
            held = found.ceiling_items - found.ceiling_pool_items
            on = " + ".join(f"{n} {kind}" for n, kind in ((held, "held-out"), (found.ceiling_pool_items, "pool")) if n)
            lines += [
                f"  {found.metric} ({found.level}: {found.distance}), {found.n_people} people:",
                f"    model–human   {_shown(found.model_human)}  on {found.n_items} held-out items",
                f"    human ceiling {_shown(found.human_ceiling)}  on {on} items",
                f"    gap           {_shown(found.gap)}",
            ]
            ranked = sorted(found.per_person.items(), key=lambda kv: 1e9 if kv[1] is None else -kv[1])
            lines.append("    each person with the others: " + ", ".join(f"{n} {figure(v, 4)}" for n, v in ranked))
            if found.note:
                lines.append(f"    note: {found.note}")
        elif self.agreement_note:
            lines.append(f"  agreement: {self.agreement_note}")
        if self.judge_assisted is not None:
            judged = self.judge_assisted
            lines.append(
                "  judge-assisted (not human): model with people and judges "
                f"{figure(judged.model_with_people_and_judges.value, 4)}"
            )
            lines += [f"    judge {judge} vs people {figure(i.value, 4)}" for judge, i in judged.judge_human.items()]
        lines += [f"  {state.rule:<19} {state.status:<8} {state.reason}" for state in self.rules]
        lines.append(f"next: {self.next_step}")
        return "\n".join(lines)


def _shown(interval: Interval) -> str:
    if interval.value is None:
        return "–"
    return f"{figure(interval.value, 4)}  [{figure(interval.ci_low, 4)}, {figure(interval.ci_high, 4)}]"


def check_convergence(args: CheckConvergenceInput, ctx: ToolContext) -> CheckConvergenceOutput:
    """Decide stop or go, and why: spec.json's stopping rules, and the model's agreement with people
    beside the human ceiling (on held-out items two or more people labeled).

    Use after score_pool, before select_batch.
    """
    run = ctx.root.run(args.run)
    spec = run.spec()
    round_ = args.round if args.round is not None else latest_result_round(run)
    metric = args.metric or spec.stopping.agreement_metric
    predictions = ModelDir(run, round_).predictions()
    level = level_for(spec, args.level)
    report, judged, note = measure_agreement(
        run, spec, round_, predictions, metric, level, args.bootstrap, args.confidence, args.seed, ctx.progress
    )
    evidence = gather_evidence(run, spec, round_, ctx.now())
    if report is not None:
        evidence.agreement = AgreementEvidence(
            metric=metric,
            level=level,
            n_items=report.n_items,
            model_human=report.model_human,
            human_ceiling=report.human_ceiling,
            gap=report.gap,
            ceiling_items=report.ceiling_items,
            ceiling_from=report.ceiling_from,
        )
    evidence.agreement_note = note
    decision = decide(rules_from_spec(spec), evidence)
    if args.record:
        with run.lock():
            run.update_result(
                round_,
                stop_decision=decision.decision,
                stop_reasons="; ".join(decision.reasons),
                agreement_model_human=None if report is None else report.model_human.value,
                agreement_human_ceiling=None if report is None else report.human_ceiling.value,
            )
    if decision.stop:
        next_step = "stop the loop: report the results (results.tsv) and the reasons above"
    else:
        next_step = "go on: select the next batch (select_batch) and collect its labels"
    return CheckConvergenceOutput(
        run=run.name,
        round=round_,
        decision=decision.decision,
        reasons=decision.reasons,
        rules=decision.rules,
        agreement=report,
        agreement_note=note,
        judge_assisted=judged,
        recorded=args.record,
        next_step=next_step,
    )


SPEC = ToolSpec(
    name="check_convergence",
    fn=check_convergence,
    input_model=CheckConvergenceInput,
    output_model=CheckConvergenceOutput,
    behaviour="writes",
    idempotent=True,
)
