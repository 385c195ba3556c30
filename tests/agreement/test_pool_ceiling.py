"""The human ceiling from pool items people overlapped on (Argilla overlap), beside held-out ones."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from alloop.tools import agreement as ag
from alloop.tools.agreement.bootstrap import bootstrap_weights
from alloop.tools.base import ToolContext
from alloop.tools.check_convergence import CheckConvergenceInput, check_convergence
from alloop.tools.run.items import ItemTable
from alloop.tools.run.rundir import RunRoot
from alloop.tools.run.schema import LabelEvent, ResultRow, StoppingSpec, TaskSpec

from .test_check_convergence import LABELS, N_HELDOUT, human_rows, make_run, other, truth

N_POOL = 40


def pool_overlap(first=0, n=24, every=4):
    """Argilla-style overlap: ann and bob label the same pool items; bob departs from ann on every
    `every`-th item; cat joins on the first eight. A judge labels them too (never human)."""
    events, rows = [], []
    for i in range(first, first + n):
        ann = LABELS[i % 3]
        bob = other(ann) if i % every == 0 else ann
        cast = [("ann", ann), ("bob", bob)] + ([("cat", other(ann, 2) if i % 3 == 0 else ann)] if i < first + 8 else [])
        for who, label in cast:
            events.append(
                LabelEvent(item_id=f"p{i}", label=label, source="human", annotator=who, round=1, destination="argilla")
            )
            rows.append({"unit": f"p{i}", "coder": who, "value": label})
        events.append(LabelEvent(item_id=f"p{i}", label=other(ann), source="judge", annotator="claude", round=1))
    return events, rows


def package_alpha(rows):
    """Nominal α of {unit, coder, value} rows from the krippendorff package, on its own layout."""
    coders = sorted({r["coder"] for r in rows})
    units = sorted({r["unit"] for r in rows})
    data = np.full((len(coders), len(units)), np.nan)
    for r in rows:
        data[coders.index(r["coder"]), units.index(r["unit"])] = LABELS.index(r["value"])
    return krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")


def pool_only_run(tmp_path):
    """Held-out items labeled by one person each (no held-out overlap); people overlap on the pool."""
    root = RunRoot(tmp_path / "runs")
    spec = TaskSpec(
        run="argilla",
        task_type="categorical",
        labels=LABELS,
        stopping=StoppingSpec(plateau_epsilon=None, agreement_margin=0.1, agreement_min_items=10),
    )
    run = root.create(
        spec,
        ItemTable.from_rows([{"id": f"p{i}", "text": f"pool {i}"} for i in range(N_POOL)]),
        ItemTable.from_rows([{"id": f"h{i}", "text": f"held {i}", "label": truth(i)} for i in range(N_HELDOUT)]),
    )
    events, rows = pool_overlap()
    events += [
        LabelEvent(item_id=f"h{i}", label=truth(i), source="human", annotator="ann", round=0) for i in range(N_HELDOUT)
    ]
    run.append_labels(events)
    run.upsert_result(ResultRow(round=1, model_version="m1"))
    folder = run.model_dir(1)
    folder.mkdir(parents=True)
    np.savez(
        folder / "predictions.npz",
        heldout_ids=np.array([f"h{i}" for i in range(N_HELDOUT)]),
        heldout_pred=np.array([truth(i) for i in range(N_HELDOUT)]),
        pool_ids=np.array([f"p{i}" for i in range(N_POOL)]),
        pool_pred=np.array([LABELS[i % 3] for i in range(N_POOL)]),
    )
    return root, run, rows


def test_two_annotators_disagreeing_on_pool_items_only_give_the_ceiling_alone(tmp_path):
    root, run, rows = pool_only_run(tmp_path)

    out = check_convergence(CheckConvergenceInput(run="argilla", bootstrap=300), ToolContext(root=root))

    found = out.agreement
    assert found is not None, out.agreement_note
    assert (found.ceiling_from, found.ceiling_items, found.ceiling_pool_items) == ("pool", 24, 24)
    assert found.people == ["ann", "bob", "cat"] and found.n_human_labels == 24 * 2 + 8
    # The package's α on the people's pool labels alone: the judge's labels never enter.
    assert found.human_ceiling.value == pytest.approx(package_alpha(rows))
    assert 0 < found.human_ceiling.value < 1
    assert found.human_ceiling.ci_low < found.human_ceiling.value < found.human_ceiling.ci_high
    # The model is never measured on the pool it trained on.
    assert found.n_items == 0 and found.model_human.value is None and found.gap.value is None
    assert "needs held-out items labeled by two or more people" in found.note
    assert "the human ceiling is reported alone, on 24 pool items" in found.note
    rule = {s.rule: s for s in out.rules}["human_agreement"]
    assert rule.status == "waiting"
    assert f"the human ceiling {found.human_ceiling.value:.3f} stands alone, on 24 pool items" in rule.reason
    assert rule.evidence["ceiling_from"] == "pool" and rule.evidence["ceiling_items"] == 24
    row = run.results()[0]
    assert row.agreement_model_human is None
    assert row.agreement_human_ceiling == pytest.approx(found.human_ceiling.value, abs=1e-5)
    summary = out.summary()
    assert "    model–human   –  on 0 held-out items" in summary
    assert "  on 24 pool items" in summary and "    note: model–human agreement needs held-out" in summary


def test_the_ceiling_reads_heldout_and_pool_overlap_but_the_model_only_heldout(tmp_path):
    root, run = make_run(tmp_path)
    events, pool_rows = pool_overlap(first=20, n=10, every=2)
    run.append_labels(events)

    found = check_convergence(CheckConvergenceInput(run="demo", bootstrap=300), ToolContext(root=root)).agreement

    assert (found.ceiling_from, found.ceiling_items, found.ceiling_pool_items) == ("held-out and pool", 40, 10)
    assert found.human_ceiling.value == pytest.approx(package_alpha(human_rows(run) + pool_rows))
    # Model–human is what it was without the pool overlap: held-out items only.
    model_rows = [
        {"unit": f"h{i}", "coder": "model", "value": other(truth(i)) if i % 5 == 0 else truth(i)}
        for i in range(N_HELDOUT)
    ]
    with_model = ag.Ratings.from_rows(human_rows(run) + model_rows, labels=LABELS)
    assert found.n_items == N_HELDOUT
    assert found.model_human.value == pytest.approx(ag.agreement(with_model, focus="model").value)
    assert found.gap.value == pytest.approx(found.model_human.value - found.human_ceiling.value)
    assert found.gap.ci_low <= found.gap.value <= found.gap.ci_high
    assert "the ceiling also reads 10 pool items" in found.note


def test_heldout_and_pool_items_are_resampled_apart():
    strata = np.array([0] * 30 + [1] * 10 + [0] * 5)
    units = np.ones(strata.size, dtype=bool)
    units[-5:] = False  # units that carry nothing are never drawn
    draws = np.concatenate(list(bootstrap_weights(strata.size, units, 500, np.random.default_rng(1), strata)))
    assert draws.shape == (500, 45)
    assert (draws[:, :30].sum(axis=1) == 30).all() and (draws[:, 30:40].sum(axis=1) == 10).all()
    assert (draws[:, 40:] == 0).all() and draws[:, :30].std() > 0
