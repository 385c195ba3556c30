"""check_convergence over a small run made with RunRoot.create."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from alloop.tools import agreement as ag
from alloop.tools.base import ToolContext
from alloop.tools.check_convergence import SPEC, CheckConvergenceInput, check_convergence
from alloop.tools.errors import InputError, StateError
from alloop.tools.run.items import ItemTable
from alloop.tools.run.labels import current_labels
from alloop.tools.run.rundir import RunRoot
from alloop.tools.run.schema import BudgetSpec, LabelEvent, ResultRow, StoppingSpec, TaskSpec
from alloop.tools.stopping.evidence import prediction_kappa

LABELS = ["neg", "neu", "pos"]
N_HELDOUT = 30


def truth(i):
    return LABELS[i % 3]


def other(label, k=1):
    return LABELS[(LABELS.index(label) + k) % 3]


def make_run(tmp_path, rounds=4, stopping=None, budget=None):
    """30 held-out items labeled by three people (ann and bob mostly agree, cat less so) and,
    for ten items, by a judge; a pool of 40 items; rounds 0..rounds-1 with predictions."""
    root = RunRoot(tmp_path / "runs")
    spec = TaskSpec(
        run="demo",
        task_type="categorical",
        labels=LABELS,
        stopping=stopping
        or StoppingSpec(plateau_epsilon=0.01, plateau_rounds=2, agreement_margin=0.1, agreement_min_items=10),
        budget=budget or BudgetSpec(max_rounds=10),
    )
    pool = ItemTable.from_rows([{"id": f"p{i}", "text": f"pool {i}"} for i in range(40)])
    heldout = ItemTable.from_rows([{"id": f"h{i}", "text": f"held {i}", "label": truth(i)} for i in range(N_HELDOUT)])
    run = root.create(spec, pool, heldout)
    events = []
    for i in range(N_HELDOUT):
        gold = truth(i)
        events.append(LabelEvent(item_id=f"h{i}", label=gold, source="human", annotator="ann", round=0))
        events.append(
            LabelEvent(
                item_id=f"h{i}", label=gold if i % 10 else other(gold), source="import", annotator="bob", round=0
            )
        )
        events.append(
            LabelEvent(
                item_id=f"h{i}", label=gold if i % 4 else other(gold, 2), source="simulated", annotator="cat", round=0
            )
        )
        if i < 10:  # a judge that always disagrees: it must never move the human figures
            events.append(LabelEvent(item_id=f"h{i}", label=other(gold), source="judge", annotator="claude", round=0))
    # A correction: ann's first label for h0 is replaced by a new event.
    wrong = LabelEvent(item_id="h1", label="pos", source="human", annotator="dan", round=0)
    events.append(wrong)
    events.append(
        LabelEvent(item_id="h1", label=truth(1), source="human", annotator="dan", round=0, supersedes=wrong.event_id)
    )
    # Training labels on the pool: they count against the label budget, not in agreement.
    events += [
        LabelEvent(item_id=f"p{i}", label=LABELS[i % 3], source="simulated", annotator="sim", round=1)
        for i in range(12)
    ]
    run.append_labels(events)
    f1 = [0.50, 0.70, 0.705, 0.708, 0.709]
    rng = np.random.default_rng(0)
    pool_pred = rng.choice(LABELS, size=40)
    for r in range(rounds):
        run.upsert_result(
            ResultRow(round=r, model_version=f"m{r}", gold_macro_f1=f1[r], cv_macro_f1=f1[r], n_labeled=10 * (r + 1))
        )
        # The model gets better each round: wrong on items i % (r + 2) == 0.
        heldout_pred = [other(truth(i)) if i % (r + 2) == 0 else truth(i) for i in range(N_HELDOUT)]
        if r:
            pool_pred = pool_pred.copy()
            pool_pred[: 8 // r] = rng.choice(LABELS, size=8 // r)
        write_predictions(run, r, heldout_pred, pool_pred)
    return root, run


def write_predictions(run, r, heldout_pred, pool_pred):
    folder = run.model_dir(r)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "predictions.npz",
        heldout_ids=np.array([f"h{i}" for i in range(N_HELDOUT)]),
        heldout_pred=np.array(heldout_pred),
        pool_ids=np.array([f"p{i}" for i in range(40)]),
        pool_pred=np.array(pool_pred),
    )


def human_rows(run):
    rows = []
    for i in range(N_HELDOUT):
        gold = truth(i)
        rows.append({"unit": f"h{i}", "coder": "ann", "value": gold})
        rows.append({"unit": f"h{i}", "coder": "bob", "value": gold if i % 10 else other(gold)})
        rows.append({"unit": f"h{i}", "coder": "cat", "value": gold if i % 4 else other(gold, 2)})
    rows.append({"unit": "h1", "coder": "dan", "value": truth(1)})
    return rows


def test_model_is_one_more_rater_beside_the_human_ceiling(tmp_path):
    root, run = make_run(tmp_path)
    out = check_convergence(CheckConvergenceInput(run="demo", bootstrap=300), ToolContext(root=root))
    assert out.round == 3
    found = out.agreement
    assert found.n_items == N_HELDOUT and found.people == ["ann", "bob", "cat", "dan"]
    humans = ag.Ratings.from_rows(human_rows(run), labels=LABELS)
    assert found.human_ceiling.value == pytest.approx(ag.krippendorff_alpha(humans))
    model_rows = [
        {"unit": f"h{i}", "coder": "model", "value": other(truth(i)) if i % 5 == 0 else truth(i)}
        for i in range(N_HELDOUT)
    ]
    with_model = ag.Ratings.from_rows(human_rows(run) + model_rows, labels=LABELS)
    assert found.model_human.value == pytest.approx(ag.agreement(with_model, focus="model").value)
    assert found.gap.value == pytest.approx(found.model_human.value - found.human_ceiling.value)
    for interval in (found.model_human, found.human_ceiling):
        assert interval.ci_low <= interval.value <= interval.ci_high
    # Each person measured as the model is: ann agrees most, cat (wrong on every fourth) least.
    assert found.per_person["ann"] > found.per_person["bob"] > found.per_person["cat"]
    assert found.per_person["ann"] == pytest.approx(ag.agreement(humans, focus="ann").value)


def test_judge_labels_are_reported_apart_and_never_count_as_human(tmp_path):
    root, run = make_run(tmp_path)
    out = check_convergence(CheckConvergenceInput(run="demo", bootstrap=0), ToolContext(root=root))
    assert "claude" not in out.agreement.people
    humans = ag.Ratings.from_rows(human_rows(run), labels=LABELS)
    assert out.agreement.human_ceiling.value == pytest.approx(ag.krippendorff_alpha(humans))
    judged = out.judge_assisted
    assert judged.judges == ["claude"] and judged.n_items == 10
    assert judged.judge_human["claude"].value < 0  # it always disagreed
    assert judged.model_with_people_and_judges.value < out.agreement.model_human.value


def test_the_plateau_rule_never_reads_gold_unless_the_spec_asks(tmp_path):
    root, run = make_run(tmp_path)
    run.write_results([r.model_copy(update={"cv_macro_f1": None}) for r in run.results()])

    out = check_convergence(CheckConvergenceInput(run="demo", bootstrap=0), ToolContext(root=root))

    plateau = next(s for s in out.rules if s.rule == "plateau")
    assert plateau.status == "waiting" and "set model.decision_source to gold" in plateau.reason


def test_decision_and_agreement_land_in_results_tsv(tmp_path):
    root, run = make_run(tmp_path)
    out = check_convergence(CheckConvergenceInput(run="demo", bootstrap=100), ToolContext(root=root))
    states = {s.rule: s for s in out.rules}
    assert states["plateau"].stop  # ΔF1 0.005 then 0.003 < 0.01
    assert states["max_rounds"].status == "go"
    assert out.decision == "stop" and out.recorded
    row = next(r for r in run.results() if r.round == 3)
    assert row.stop_decision == "stop"
    assert "plateau" in row.stop_reasons
    assert row.agreement_model_human == pytest.approx(out.agreement.model_human.value, abs=1e-5)
    assert row.agreement_human_ceiling == pytest.approx(out.agreement.human_ceiling.value, abs=1e-5)
    earlier = next(r for r in run.results() if r.round == 2)
    assert earlier.stop_decision == ""


def test_an_earlier_round_reads_only_its_own_history(tmp_path):
    root, run = make_run(tmp_path)
    out = check_convergence(
        CheckConvergenceInput(run="demo", round=1, bootstrap=0, record=False), ToolContext(root=root)
    )
    states = {s.rule: s for s in out.rules}
    assert states["plateau"].status == "waiting"
    assert out.decision == "go" and not out.recorded
    assert all(r.stop_decision == "" for r in run.results())


def test_stable_predictions_and_label_budget_from_the_run(tmp_path):
    root, _ = make_run(
        tmp_path,
        stopping=StoppingSpec(plateau_epsilon=None, stability_kappa=0.5, stability_rounds=2),
        budget=BudgetSpec(max_rounds=10, max_examples=40),
    )
    out = check_convergence(CheckConvergenceInput(run="demo", bootstrap=0), ToolContext(root=root))
    states = {s.rule: s for s in out.rules}
    kappas = states["stable_predictions"].evidence["kappas"]
    assert [k["round_to"] for k in kappas] == [2, 3] and all(k["n_items"] == 40 for k in kappas)
    # ann (human) and cat (simulated) on held-out, the simulated pool labels, dan's two; bob's import is free
    assert states["label_budget"].evidence["human_labels"] == 30 + 30 + 12 + 2
    assert states["label_budget"].stop


def test_the_time_cap_reads_the_context_clock(tmp_path):
    root, run = make_run(tmp_path, budget=BudgetSpec(max_rounds=10, max_hours=2))
    started = datetime.fromisoformat(run.spec().created)

    def time_cap(hours):
        ctx = ToolContext(root=root, now=lambda: started + timedelta(hours=hours))
        out = check_convergence(CheckConvergenceInput(run="demo", bootstrap=0, record=False), ctx)
        return {s.rule: s for s in out.rules}["time_cap"]

    assert time_cap(1).status == "go"
    assert time_cap(2.5).stop and "reached the cap of 2 h" in time_cap(2.5).reason


def test_the_summary_reads_as_the_decision(tmp_path):
    root, _ = make_run(tmp_path)
    out = check_convergence(CheckConvergenceInput(run="demo", bootstrap=50), ToolContext(root=root))
    lines = out.summary().splitlines()
    assert lines[0] == "run demo, round 3: STOP"
    assert lines[1] == "  krippendorff_alpha (nominal: exact match), 4 people:"
    assert lines[2].startswith("    model–human   ") and lines[2].endswith("  on 30 held-out items")
    assert lines[3].startswith("    human ceiling ") and lines[3].endswith("  on 30 held-out items")
    assert lines[5].startswith("    each person with the others: ")
    assert lines[5].endswith("ann 0.7295, bob 0.7049, cat 0.5817, dan undefined")  # dan shares one item
    assert "    judge claude vs people " in out.summary()
    assert len([line for line in lines if line.startswith("  plateau ")]) == 1
    assert lines[-1] == f"next: {out.next_step}"


def test_human_agreement_rule_uses_the_margin(tmp_path):
    root, _ = make_run(
        tmp_path, stopping=StoppingSpec(plateau_epsilon=None, agreement_margin=0.5, agreement_min_items=10)
    )
    out = check_convergence(CheckConvergenceInput(run="demo", bootstrap=200), ToolContext(root=root))
    state = {s.rule: s for s in out.rules}["human_agreement"]
    assert state.stop and "within 0.5 of the human ceiling" in state.reason
    assert out.reasons == [f"human_agreement: {state.reason}"]


def test_no_overlapping_human_labels_is_explained(tmp_path):
    root = RunRoot(tmp_path / "runs")
    spec = TaskSpec(run="solo", task_type="binary", labels=["no", "yes"])
    run = root.create(
        spec,
        ItemTable.from_rows([{"id": "p0", "text": "x"}]),
        ItemTable.from_rows([{"id": f"h{i}", "text": "y", "label": "no"} for i in range(3)]),
    )
    run.append_labels(
        [LabelEvent(item_id=f"h{i}", label="no", source="human", annotator="ann", round=0) for i in range(3)]
    )
    run.upsert_result(ResultRow(round=0, model_version="m0"))
    folder = run.model_dir(0)
    folder.mkdir(parents=True)
    np.savez(
        folder / "predictions.npz",
        heldout_ids=np.array(["h0", "h1", "h2"]),
        heldout_pred=np.array(["no"] * 3),
        pool_ids=np.array(["p0"]),
        pool_pred=np.array(["yes"]),
    )
    out = check_convergence(CheckConvergenceInput(run="solo"), ToolContext(root=root))
    assert out.agreement is None and "two or more people" in out.agreement_note
    assert run.results()[0].agreement_human_ceiling is None


def test_missing_predictions_and_missing_round_are_state_errors(tmp_path):
    root, run = make_run(tmp_path, rounds=2)
    with pytest.raises(StateError, match="no predictions for round 5"):
        check_convergence(CheckConvergenceInput(run="demo", round=5), ToolContext(root=root))
    write_predictions(run, 2, [truth(i) for i in range(N_HELDOUT)], ["neg"] * 40)
    with pytest.raises(StateError, match=r"results\.tsv has no row for round 2"):
        check_convergence(CheckConvergenceInput(run="demo", round=2, bootstrap=0), ToolContext(root=root))


def test_a_prediction_outside_the_schema_is_named(tmp_path):
    root, run = make_run(tmp_path, rounds=1)
    write_predictions(run, 0, ["maybe"] * N_HELDOUT, ["neg"] * 40)
    with pytest.raises(
        InputError, match=r"predictions\.npz: heldout_pred for item 'h0': label 'maybe' is not in the label schema"
    ):
        check_convergence(CheckConvergenceInput(run="demo", bootstrap=0), ToolContext(root=root))


def test_prediction_kappa_on_shared_items():
    ids_a, ids_b = np.array(["a", "b", "c", "d"]), np.array(["b", "c", "d", "e"])
    kappa, shared = prediction_kappa(ids_a, np.array(["x", "y", "x", "y"]), ids_b, np.array(["y", "x", "y", "y"]))
    assert shared == 3 and kappa == pytest.approx(1.0)


def test_tool_spec_is_declared():
    assert SPEC.name == "check_convergence" and SPEC.positional == ("run",)
    assert "stop or go" in SPEC.description


def test_magnitude_task_reads_numbers_at_the_interval_level(tmp_path):
    root = RunRoot(tmp_path / "runs")
    spec = TaskSpec(
        run="mag",
        task_type="magnitude",
        stopping=StoppingSpec(agreement_threshold=0.5, agreement_min_items=5, stability_kappa=0.9),
    )
    run = root.create(
        spec,
        ItemTable.from_rows([{"id": "p0", "text": "x"}]),
        ItemTable.from_rows([{"id": f"h{i}", "text": "y"} for i in range(8)]),
    )
    size = [float(10 * i) for i in range(8)]
    events = [
        LabelEvent(item_id=f"h{i}", label=size[i] + offset, source="human", annotator=who, round=0)
        for i in range(8)
        for who, offset in (("ann", 0.0), ("bob", 3.0), ("cat", -2.0))
    ]
    # A judge with a person's name stays a judge.
    events += [LabelEvent(item_id=f"h{i}", label=0.0, source="judge", annotator="ann", round=0) for i in range(8)]
    run.append_labels(events)
    run.upsert_result(ResultRow(round=1, model_version="m1"))
    write_magnitudes = [f"{s + 1.0}" for s in size]
    folder = run.model_dir(1)
    folder.mkdir(parents=True)
    np.savez(
        folder / "predictions.npz",
        heldout_ids=np.array([f"h{i}" for i in range(8)]),
        heldout_pred=np.array(write_magnitudes),
        pool_ids=np.array(["p0"]),
        pool_pred=np.array(["1.0"]),
    )
    out = check_convergence(CheckConvergenceInput(run="mag", bootstrap=100), ToolContext(root=root))
    assert out.agreement.level == "interval" and out.agreement.people == ["ann", "bob", "cat"]
    rows = [{"unit": e.item_id, "coder": e.annotator, "value": e.label} for e in events if e.source == "human"]
    rows += [{"unit": f"h{i}", "coder": "model", "value": size[i] + 1.0} for i in range(8)]
    expected = ag.agreement(ag.Ratings.from_rows(rows, level="interval"), focus="model").value
    assert out.agreement.model_human.value == pytest.approx(expected)
    assert out.judge_assisted.judges == ["ann"]
    states = {s.rule: s for s in out.rules}
    assert states["human_agreement"].status == "stop"
    assert (
        states["stable_predictions"].status == "waiting"
        and "magnitudes are numbers" in states["stable_predictions"].reason
    )


def test_standing_labels_follow_corrections_and_discards():
    first = LabelEvent(item_id="h0", label="neg", source="human", annotator="ann", round=0)
    fixed = LabelEvent(item_id="h0", label="pos", source="human", annotator="ann", round=0, supersedes=first.event_id)
    bob = LabelEvent(item_id="h0", label="neu", source="human", annotator="bob", round=0)
    dropped = LabelEvent(item_id="h0", label=None, source="human", annotator="bob", round=0, status="discarded")
    judge = LabelEvent(item_id="h0", label="neg", source="judge", annotator="ann", round=0)
    standing = current_labels([first, fixed, bob, dropped, judge])
    assert {key: e.label for key, e in standing.items()} == {("h0", "ann", False): "pos", ("h0", "ann", True): "neg"}
