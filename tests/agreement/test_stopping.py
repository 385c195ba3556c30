"""Each stopping rule on its own, and the rules together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alloop.tools.run.schema import BudgetSpec, StoppingSpec, TaskSpec
from alloop.tools.stopping.rules import (
    AgreementEvidence,
    HumanAgreement,
    Interval,
    LabelBudget,
    MaxRounds,
    Plateau,
    PredictionChange,
    StablePredictions,
    StoppingEvidence,
    TimeCap,
    decide,
    rules_from_spec,
)


def test_max_rounds():
    assert MaxRounds(5).evaluate(StoppingEvidence(round=4)).status == "go"
    state = MaxRounds(5).evaluate(StoppingEvidence(round=5))
    assert state.stop and state.evidence == {"round": 5, "max_rounds": 5, "rounds_left": 0}
    assert MaxRounds(None).evaluate(StoppingEvidence(round=99)).status == "off"


def test_label_budget_by_count_and_by_cost():
    assert LabelBudget(max_examples=100).evaluate(StoppingEvidence(round=1, n_human_labels=99)).status == "go"
    assert LabelBudget(max_examples=100).evaluate(StoppingEvidence(round=1, n_human_labels=100)).stop
    by_cost = LabelBudget(max_cost=10.0, cost_per_label=0.25)
    assert not by_cost.evaluate(StoppingEvidence(round=1, n_human_labels=39)).stop
    state = by_cost.evaluate(StoppingEvidence(round=1, n_human_labels=40))
    assert state.stop and state.evidence["cost_spent"] == 10.0


def test_label_budget_cost_without_a_price_waits_and_says_so():
    state = LabelBudget(max_cost=10.0).evaluate(StoppingEvidence(round=1, n_human_labels=400))
    assert state.status == "waiting" and "cost_per_label" in state.reason


def test_plateau_needs_k_small_changes_in_a_row():
    rule = Plateau(epsilon=0.01, rounds=2)
    rising = StoppingEvidence(round=3, metric_history=[(0, 0.5), (1, 0.6), (2, 0.65), (3, 0.655)])
    assert rule.evaluate(rising).status == "go"  # 0.05 then 0.005: only one small step
    flat = StoppingEvidence(round=3, metric_history=[(0, 0.5), (1, 0.6), (2, 0.605), (3, 0.601)])
    state = rule.evaluate(flat)
    assert state.stop and [round(d["delta"], 3) for d in state.evidence["deltas"]] == [0.005, -0.004]
    assert rule.evaluate(StoppingEvidence(round=1, metric_history=[(0, 0.5), (1, 0.5)])).status == "waiting"


def test_plateau_ignores_rounds_after_the_one_judged():
    rule = Plateau(epsilon=0.01, rounds=1)
    evidence = StoppingEvidence(round=1, metric_history=[(0, 0.5), (1, 0.7), (2, 0.7)])
    assert rule.evaluate(evidence).status == "go"


def change(to, kappa):
    return PredictionChange(round_from=to - 1, round_to=to, kappa=kappa, n_items=100)


def test_stable_predictions():
    rule = StablePredictions(kappa=0.9, rounds=2)
    assert rule.evaluate(StoppingEvidence(round=2, prediction_changes=[change(1, 0.95)])).status == "waiting"
    assert rule.evaluate(StoppingEvidence(round=3, prediction_changes=[change(2, 0.8), change(3, 0.95)])).status == "go"
    assert rule.evaluate(StoppingEvidence(round=3, prediction_changes=[change(2, 0.91), change(3, 0.95)])).stop
    assert not rule.evaluate(StoppingEvidence(round=3, prediction_changes=[change(2, None), change(3, 0.95)])).stop


def agreement(model, ceiling, n_items=50, model_low=None, gap_low=None):
    return AgreementEvidence(
        metric="krippendorff_alpha",
        level="nominal",
        n_items=n_items,
        model_human=Interval(value=model, ci_low=model_low),
        human_ceiling=Interval(value=ceiling),
        gap=Interval(value=model - ceiling, ci_low=gap_low),
    )


def test_human_agreement_threshold_and_margin():
    absolute = HumanAgreement(threshold=0.7)
    assert absolute.evaluate(StoppingEvidence(round=1, agreement=agreement(0.72, 0.8))).stop
    assert not absolute.evaluate(StoppingEvidence(round=1, agreement=agreement(0.65, 0.8))).stop
    near = HumanAgreement(margin=0.05)
    assert near.evaluate(StoppingEvidence(round=1, agreement=agreement(0.76, 0.8))).stop
    state = near.evaluate(StoppingEvidence(round=1, agreement=agreement(0.70, 0.8)))
    assert not state.stop and "more than the margin 0.05" in state.reason


def test_human_agreement_can_demand_the_lower_bound():
    rule = HumanAgreement(margin=0.05, use_lower_bound=True)
    assert not rule.evaluate(StoppingEvidence(round=1, agreement=agreement(0.79, 0.8, gap_low=-0.2))).stop
    assert rule.evaluate(StoppingEvidence(round=1, agreement=agreement(0.79, 0.8, gap_low=-0.04))).stop


def test_human_agreement_waits_for_enough_items_or_any_overlap():
    rule = HumanAgreement(threshold=0.5, min_items=20)
    assert rule.evaluate(StoppingEvidence(round=1, agreement=agreement(0.9, 0.9, n_items=5))).status == "waiting"
    state = rule.evaluate(StoppingEvidence(round=1, agreement_note="no overlap"))
    assert state.status == "waiting" and state.reason == "no overlap"


def test_time_cap():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rule = TimeCap(max_hours=2)
    assert not rule.evaluate(StoppingEvidence(round=1, started=start, now=start + timedelta(hours=1))).stop
    assert rule.evaluate(StoppingEvidence(round=1, started=start, now=start + timedelta(hours=2))).stop


def test_rules_together_from_the_spec():
    spec = TaskSpec(
        run="r",
        task_type="binary",
        labels=["no", "yes"],
        budget=BudgetSpec(max_rounds=10, max_examples=200),
        stopping=StoppingSpec(plateau_epsilon=0.01, plateau_rounds=2, agreement_threshold=0.6),
    )
    rules = rules_from_spec(spec)
    assert [r.name for r in rules] == [
        "max_rounds",
        "label_budget",
        "plateau",
        "stable_predictions",
        "human_agreement",
        "time_cap",
    ]
    evidence = StoppingEvidence(round=3, n_human_labels=80, metric_history=[(1, 0.7), (2, 0.8), (3, 0.9)])
    going = decide(rules, evidence)
    assert going.decision == "go" and going.reasons == []
    assert {s.rule: s.status for s in going.rules} == {
        "max_rounds": "go",
        "label_budget": "go",
        "plateau": "go",
        "stable_predictions": "off",
        "human_agreement": "waiting",
        "time_cap": "off",
    }
    evidence.n_human_labels = 200
    evidence.agreement = agreement(0.65, 0.7)
    stopping = decide(rules, evidence)
    assert stopping.stop
    assert [r.split(":")[0] for r in stopping.reasons] == ["label_budget", "human_agreement"]
