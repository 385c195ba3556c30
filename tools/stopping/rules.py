"""Stopping rules: a family with one interface, evaluated together and explained.

Each rule reads the same `StoppingEvidence` (what the run has done so far) and returns a
`RuleState`: whether it is on, whether it says stop, a sentence saying why, and the figures
it read. `decide` runs them all: the run stops as soon as any rule that is on says stop.

Rules (each off when its setting is None):

- `max_rounds`: the round number reached `budget.max_rounds` (round 0 is the seed set and round
  r ≥ 1 the r-th trained model, so round r is the r-th active-learning round);
- `label_budget`: human labels given (sources `human` and `simulated`; seeds, imports and judge
  output cost no annotation) reached `budget.max_examples`, or their cost reached `max_cost`;
- `plateau`: the spec's metric (macro-F1 by default, for any number of classes) changed by
  less than ε between successive rounds, k times in a row; read out-of-fold on the labeled
  items (`model.decision_source: cv`, the default) so the held-out set that is reported does
  not also decide when to stop, or on the held-out set where the spec asks (`gold`) or the
  head gives no out-of-fold figures;
- `stable_predictions`: Cohen's κ between successive rounds' predictions on the pool (the items
  both rounds scored) was at least the threshold, k times in a row;
- `human_agreement`: model–human agreement reached an absolute threshold, or the human–human
  ceiling minus a margin, on at least `agreement_min_items` held-out items (the ceiling may also
  read pool items people overlapped on; the model is measured on held-out items only);
- `time_cap`: hours since the run was created reached `budget.max_hours`.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from alloop.tools.report.figures import figure
from alloop.tools.run.schema import TaskSpec

RuleStatus = Literal["off", "waiting", "go", "stop"]
SMALLER_IS_BETTER: frozenset[str] = frozenset({"mae", "rmse", "hamming_loss"})
"""Metrics that are errors: a falling figure is progress (the plateau rule says which way is better)."""


class RuleState(BaseModel):
    """One rule's verdict: `status` is off (not configured), waiting (not enough evidence yet),
    go, or stop; `reason` says why in a sentence; `evidence` holds the figures it read."""

    rule: str
    status: RuleStatus
    stop: bool = False
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class Interval(BaseModel):
    """A value with its bootstrap interval (None where undefined)."""

    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


class AgreementEvidence(BaseModel):
    """What check_convergence measured: the model on the held-out items several people labeled,
    the ceiling on every item several people labeled."""

    metric: str
    level: str
    n_items: int = Field(description="Held-out items model_human reads (0: none, the ceiling stands alone).")
    model_human: Interval
    human_ceiling: Interval
    gap: Interval = Field(default_factory=Interval, description="model − ceiling, paired over resamples.")
    ceiling_items: int = Field(0, description="Items the ceiling reads.")
    ceiling_from: str = Field("held-out", description="held-out, pool, or held-out and pool.")


class PredictionChange(BaseModel):
    """Cohen's κ between two rounds' predictions on the pool items both scored."""

    round_from: int
    round_to: int
    kappa: float | None
    n_items: int


@dataclass
class StoppingEvidence:
    """Everything the rules read, gathered from the run's files by the caller."""

    round: int
    n_human_labels: int = 0
    metric: str = "macro_f1"
    metric_source: str = "gold"
    """gold: the held-out set; cv: out-of-fold on the labeled items."""
    metric_note: str = ""
    """Why the metric history is empty when the figures exist under the other source."""
    metric_history: list[tuple[int, float]] = field(default_factory=list)
    prediction_changes: list[PredictionChange] = field(default_factory=list)
    agreement: AgreementEvidence | None = None
    agreement_note: str = ""
    prediction_note: str = ""
    started: datetime | None = None
    now: datetime | None = None


class StopDecision(BaseModel):
    decision: Literal["stop", "go"]
    reasons: list[str] = Field(description="Why each rule that says stop does.")
    rules: list[RuleState]

    @property
    def stop(self) -> bool:
        return self.decision == "stop"


class StoppingRule(ABC):
    """One stopping rule. Settings in the constructor; `evaluate` reads evidence, keeps no state."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def enabled(self) -> bool: ...

    @abstractmethod
    def _evaluate(self, evidence: StoppingEvidence) -> RuleState: ...

    def evaluate(self, evidence: StoppingEvidence) -> RuleState:
        if not self.enabled:
            return RuleState(rule=self.name, status="off", reason="not configured")
        return self._evaluate(evidence)

    def _state(self, stop: bool | None, reason: str, **evidence: Any) -> RuleState:
        status: RuleStatus = "waiting" if stop is None else ("stop" if stop else "go")
        return RuleState(rule=self.name, status=status, stop=bool(stop), reason=reason, evidence=evidence)


class MaxRounds(StoppingRule):
    name = "max_rounds"

    def __init__(self, max_rounds: int | None) -> None:
        self.max_rounds = max_rounds

    @property
    def enabled(self) -> bool:
        return self.max_rounds is not None

    def _evaluate(self, evidence: StoppingEvidence) -> RuleState:
        assert self.max_rounds is not None
        reached = evidence.round >= self.max_rounds
        verb = "reached" if reached else "is below"
        return self._state(
            reached,
            f"round {evidence.round} {verb} the limit of {self.max_rounds} rounds",
            round=evidence.round,
            max_rounds=self.max_rounds,
            rounds_left=max(self.max_rounds - evidence.round, 0),
        )


class LabelBudget(StoppingRule):
    name = "label_budget"

    def __init__(
        self,
        max_examples: int | None = None,
        max_cost: float | None = None,
        cost_per_label: float | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.max_examples = max_examples
        self.max_cost = max_cost
        self.cost_per_label = cost_per_label
        self.batch_size = batch_size

    @property
    def enabled(self) -> bool:
        return self.max_examples is not None or self.max_cost is not None

    def _evaluate(self, evidence: StoppingEvidence) -> RuleState:
        used = evidence.n_human_labels
        facts: dict[str, Any] = {"human_labels": used}
        reasons: list[str] = []
        stop = False
        if self.max_examples is not None:
            left = self.max_examples - used
            facts |= {"max_examples": self.max_examples, "labels_left": max(left, 0)}
            if left <= 0:
                stop = True
                reasons.append(f"{used} human labels reached the budget of {self.max_examples}")
            else:
                reasons.append(f"{used} of {self.max_examples} human labels used")
            if self.batch_size is not None:
                facts["next_batch_fits"] = left >= self.batch_size
        if self.max_cost is not None:
            if self.cost_per_label is None:
                reasons.append("max_cost is set but cost_per_label is not, so labels cannot be priced")
                facts["max_cost"] = self.max_cost
                if self.max_examples is None:
                    return self._state(None, "; ".join(reasons), **facts)
            else:
                spent = used * self.cost_per_label
                facts |= {"cost_spent": spent, "max_cost": self.max_cost, "cost_left": max(self.max_cost - spent, 0)}
                if spent >= self.max_cost:
                    stop = True
                    reasons.append(f"cost {spent:g} reached the budget of {self.max_cost:g}")
                else:
                    reasons.append(f"cost {spent:g} of {self.max_cost:g} spent")
        return self._state(stop, "; ".join(reasons), **facts)


def _source(evidence: StoppingEvidence) -> str:
    return "cross-validated" if evidence.metric_source == "cv" else "held-out"


class Plateau(StoppingRule):
    name = "plateau"

    def __init__(self, epsilon: float | None, rounds: int = 3) -> None:
        self.epsilon = epsilon
        self.rounds = rounds

    @property
    def enabled(self) -> bool:
        return self.epsilon is not None

    def _evaluate(self, evidence: StoppingEvidence) -> RuleState:
        assert self.epsilon is not None
        history = sorted((r, v) for r, v in evidence.metric_history if r <= evidence.round)
        deltas = [{"from": a[0], "to": b[0], "delta": b[1] - a[1]} for a, b in itertools.pairwise(history)]
        better = "smaller" if evidence.metric in SMALLER_IS_BETTER else "larger"
        facts = {
            "metric": evidence.metric,
            "better": better,
            "source": evidence.metric_source,
            "epsilon": self.epsilon,
            "rounds": self.rounds,
            "history": [{"round": r, "value": v} for r, v in history],
            "deltas": deltas[-self.rounds :],
        }
        if len(deltas) < self.rounds:
            return self._state(
                None,
                evidence.metric_note
                or f"{len(history)} rounds with a {_source(evidence)} {evidence.metric}; the plateau rule needs "
                f"{self.rounds + 1} to see {self.rounds} changes",
                **facts,
            )
        recent = deltas[-self.rounds :]
        flat = all(abs(d["delta"]) < self.epsilon for d in recent)
        largest = max(abs(d["delta"]) for d in recent)
        last = recent[-1]["delta"]
        trend = "improved" if (last < 0) == (better == "smaller") and last != 0 else "did not improve"
        if flat:
            reason = (
                f"{_source(evidence)} {evidence.metric} changed by less than {self.epsilon:g} in each of the last "
                f"{self.rounds} rounds (largest |Δ| {largest:.4g}; {better} is better, the last change {trend})"
            )
        else:
            reason = (
                f"{_source(evidence)} {evidence.metric} still moves: largest |Δ| {largest:.4g} ≥ {self.epsilon:g} "
                f"in the last {self.rounds} rounds ({better} is better, the last change {trend})"
            )
        return self._state(flat, reason, **facts)


class StablePredictions(StoppingRule):
    name = "stable_predictions"

    def __init__(self, kappa: float | None, rounds: int = 3) -> None:
        self.kappa = kappa
        self.rounds = rounds

    @property
    def enabled(self) -> bool:
        return self.kappa is not None

    def _evaluate(self, evidence: StoppingEvidence) -> RuleState:
        assert self.kappa is not None
        if evidence.prediction_note:
            return self._state(None, evidence.prediction_note, threshold=self.kappa)
        changes = [c for c in evidence.prediction_changes if c.round_to <= evidence.round]
        changes.sort(key=lambda c: c.round_to)
        recent = changes[-self.rounds :]
        facts = {
            "threshold": self.kappa,
            "rounds": self.rounds,
            "kappas": [c.model_dump() for c in recent],
        }
        if len(changes) < self.rounds:
            return self._state(
                None,
                f"{len(changes)} pairs of successive rounds' pool predictions; the rule needs {self.rounds}",
                **facts,
            )
        stable = all(c.kappa is not None and c.kappa >= self.kappa for c in recent)
        lowest = min((c.kappa for c in recent if c.kappa is not None), default=None)
        if stable:
            reason = (
                f"pool predictions stabilized: κ between successive rounds ≥ {self.kappa:g} for the last "
                f"{self.rounds} rounds (lowest {lowest:.4g})"
            )
        else:
            shown = "undefined" if lowest is None else f"{lowest:.4g}"
            reason = (
                f"pool predictions still change: lowest κ {shown} < {self.kappa:g} in the last {self.rounds} rounds"
            )
        return self._state(stable, reason, **facts)


class HumanAgreement(StoppingRule):
    name = "human_agreement"

    def __init__(
        self,
        threshold: float | None = None,
        margin: float | None = None,
        min_items: int = 20,
        use_lower_bound: bool = False,
    ) -> None:
        self.threshold = threshold
        self.margin = margin
        self.min_items = min_items
        self.use_lower_bound = use_lower_bound

    @property
    def enabled(self) -> bool:
        return self.threshold is not None or self.margin is not None

    def _evaluate(self, evidence: StoppingEvidence) -> RuleState:
        found = evidence.agreement
        if found is None:
            note = evidence.agreement_note or "no held-out items with labels from two or more people"
            return self._state(None, note, threshold=self.threshold, margin=self.margin)
        facts: dict[str, Any] = {
            "metric": found.metric,
            "n_items": found.n_items,
            "min_items": self.min_items,
            "model_human": found.model_human.model_dump(),
            "human_ceiling": found.human_ceiling.model_dump(),
            "gap": found.gap.model_dump(),
            "ceiling_items": found.ceiling_items,
            "ceiling_from": found.ceiling_from,
            "threshold": self.threshold,
            "margin": self.margin,
            "compares": "interval lower bounds" if self.use_lower_bound else "point estimates",
        }
        if found.n_items < self.min_items:
            ceiling = ""
            if found.n_items == 0:
                ceiling = (
                    f"; the human ceiling {figure(found.human_ceiling.value, 3)} stands alone, on "
                    f"{found.ceiling_items} {found.ceiling_from} items"
                )
            return self._state(
                None,
                f"only {found.n_items} held-out items have labels from two or more people and a prediction; "
                f"the rule needs {self.min_items} to compare the model with people{ceiling}",
                **facts,
            )
        model = found.model_human.ci_low if self.use_lower_bound else found.model_human.value
        gap = found.gap.ci_low if self.use_lower_bound else found.gap.value
        reached: list[str] = []
        missed: list[str] = []
        if self.threshold is not None:
            if model is not None and model >= self.threshold:
                reached.append(f"model–human {found.metric} {model:.3f} ≥ threshold {self.threshold:g}")
            else:
                missed.append(f"model–human {found.metric} {figure(model, 3)} < threshold {self.threshold:g}")
        if self.margin is not None:
            ceiling = found.human_ceiling.value
            if gap is not None and ceiling is not None and gap >= -self.margin:
                reached.append(
                    f"model–human {found.metric} is within {self.margin:g} of the human ceiling "
                    f"{ceiling:.3f} (gap {gap:+.3f})"
                )
            else:
                missed.append(
                    f"model–human {found.metric} is {figure(None if gap is None else -gap, 3)} below the human "
                    f"ceiling {figure(ceiling, 3)}, more than the margin {self.margin:g}"
                )
        if reached:
            return self._state(True, "; ".join(reached), **facts)
        return self._state(False, "; ".join(missed), **facts)


class TimeCap(StoppingRule):
    name = "time_cap"

    def __init__(self, max_hours: float | None) -> None:
        self.max_hours = max_hours

    @property
    def enabled(self) -> bool:
        return self.max_hours is not None

    def _evaluate(self, evidence: StoppingEvidence) -> RuleState:
        assert self.max_hours is not None
        if evidence.started is None:
            return self._state(None, "the run's start time is unknown", max_hours=self.max_hours)
        now = evidence.now or datetime.now(UTC)
        hours = (now - evidence.started).total_seconds() / 3600
        facts = {"started": evidence.started.isoformat(), "hours": round(hours, 4), "max_hours": self.max_hours}
        if hours >= self.max_hours:
            reason = f"{hours:.2f} h since the run began reached the cap of {self.max_hours:g} h"
            return self._state(True, reason, **facts)
        return self._state(False, f"{hours:.2f} h of {self.max_hours:g} h used", **facts)


def rules_from_spec(spec: TaskSpec) -> list[StoppingRule]:
    """Every rule, configured from spec.json (a rule whose setting is None is off)."""
    budget, stopping = spec.budget, spec.stopping
    return [
        MaxRounds(budget.max_rounds),
        LabelBudget(budget.max_examples, budget.max_cost, budget.cost_per_label, budget.batch_size),
        Plateau(stopping.plateau_epsilon, stopping.plateau_rounds),
        StablePredictions(stopping.stability_kappa, stopping.stability_rounds),
        HumanAgreement(
            stopping.agreement_threshold,
            stopping.agreement_margin,
            stopping.agreement_min_items,
            stopping.agreement_use_lower_bound,
        ),
        TimeCap(budget.max_hours),
    ]


def decide(rules: Sequence[StoppingRule], evidence: StoppingEvidence) -> StopDecision:
    """Evaluate every rule; stop when any rule that is on says stop."""
    states = [rule.evaluate(evidence) for rule in rules]
    reasons = [f"{s.rule}: {s.reason}" for s in states if s.stop]
    return StopDecision(decision="stop" if reasons else "go", reasons=reasons, rules=states)
