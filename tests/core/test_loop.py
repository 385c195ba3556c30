"""The loop on real data (a slice of BBC News), tool by tool, as an agent would drive it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from alloop.tools.errors import InputError, StateError
from alloop.tools.export_batch import ExportInput, export_batch
from alloop.tools.import_labels import ImportInput, import_labels
from alloop.tools.report.datasets import BBC_LABELS
from alloop.tools.run.models import ModelDir
from alloop.tools.run.rundir import read_jsonl
from alloop.tools.run.schema import LabelEvent
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.seed_set import SeedInput, seed_set
from alloop.tools.select_batch import SelectInput, select_batch
from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
from alloop.tools.status import StatusInput, status
from alloop.tools.train_glmm import TrainInput, train_glmm
from alloop.tools.write_report import ReportInput, write_report


def test_three_round_loop_writes_a_readable_run(looped_run):
    rows = [line.split("\t") for line in (looped_run / "results.tsv").read_text().splitlines()]
    header, body = rows[0], rows[1:]
    table = [dict(zip(header, r, strict=True)) for r in body]
    assert [r["round"] for r in table] == ["1", "2", "3"]
    assert [int(r["n_labeled"]) for r in table] == [10, 20, 30]
    assert all(r["judge_accuracy"] == "" for r in table)  # no judge, no judge figures
    assert [r["stop_decision"] for r in table] == ["go", "go", "stop"]  # the spec's 3-round budget
    assert table[-1]["stop_reasons"] == "max_rounds: round 3 reached the limit of 3 rounds"
    assert float(table[-1]["gold_macro_f1"]) > 0.45  # titles alone carry the topic (chance: 0.2)
    for round_ in (0, 1, 2):
        rows = read_jsonl(looped_run / f"selection_round_{round_:02d}.jsonl")
        assert len(rows) == 10 and all(r["reason"] for r in rows)
        assert len(read_jsonl(looped_run / f"annotation_round_{round_:02d}.jsonl")) == 10
    selected = [r["item_id"] for k in (0, 1, 2) for r in read_jsonl(looped_run / f"selection_round_{k:02d}.jsonl")]
    assert len(selected) == len(set(selected))
    events = read_jsonl(looped_run / "labels.jsonl")
    assert {e["source"] for e in events} == {"simulated"}
    card = json.loads((looped_run / "models/round_03/card.json").read_text())
    assert card["n_labeled"] == 30 and card["encoder"] == "all-MiniLM-L6-v2"
    assert (looped_run / "cache/embeddings").is_dir()


def test_selection_rows_carry_scores_prediction_and_model(looped_run):
    row = read_jsonl(looped_run / "selection_round_02.jsonl")[0]
    assert set(row["scores"]) == {"least_confidence", "margin", "entropy"}
    assert row["prediction"] and 0 < row["confidence"] <= 1
    assert row["model_version"].startswith("r02-")
    assert row["strategy"] == "typiclust"  # the default, chosen in benchmarks/label_efficiency.py
    assert row["reason"].startswith("typiclust: most typical item of cluster")


def test_heldout_items_are_never_selected_or_trained_on(looped_run, bbc_slice):
    heldout = {r["id"] for r in read_jsonl(bbc_slice["heldout"])}
    for k in (0, 1, 2):
        assert not heldout & {r["item_id"] for r in read_jsonl(looped_run / f"selection_round_{k:02d}.jsonl")}


def test_each_item_is_embedded_once(looped_copy, ctx):
    run = ctx.root.run(looped_copy)
    cache = next((run.cache_dir / "embeddings").iterdir())
    before = (cache / "vectors.npy").stat().st_mtime_ns
    score_pool(ScoreInput(run=looped_copy), ctx)
    assert (cache / "vectors.npy").stat().st_mtime_ns == before
    meta = json.loads((cache / "meta.json").read_text())
    assert meta["n"] == len(run.pool()) + len(run.heldout())


def test_status_names_the_next_step(looped_copy, ctx):
    out = status(StatusInput(run=looped_copy), ctx)
    assert out.model_rounds == [1, 2, 3] and out.selection_rounds == [0, 1, 2]
    assert out.done and out.next_step.startswith("stop:")  # check_convergence said stop at the budget
    select_batch(SelectInput(run=looped_copy), ctx)
    nxt = status(StatusInput(run=looped_copy), ctx)
    assert nxt.pending_in_latest_batch == 10 and "export_batch" in nxt.next_step


def test_file_round_trip_export_then_import_is_idempotent(looped_copy, ctx, tmp_path):
    score_pool(ScoreInput(run=looped_copy), ctx)
    select_batch(SelectInput(run=looped_copy, batch_size=4), ctx)
    exported = export_batch(ExportInput(run=looped_copy, format="csv"), ctx)
    run = ctx.root.run(looped_copy)
    lines = (run.path / exported.file).read_text().splitlines()
    assert lines[0].startswith("id,text,suggestion,confidence,reason,round,label")
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        "".join(
            json.dumps({"id": line.split(",")[0], "label": "tech", "annotator": "ana"}) + "\n" for line in lines[1:]
        )
    )
    first = import_labels(ImportInput(run=looped_copy, file=str(answers)), ctx)
    again = import_labels(ImportInput(run=looped_copy, file=str(answers)), ctx)
    assert (first.n_added, again.n_added, again.n_already_recorded) == (4, 0, 4)
    assert {e.annotator for e in run.labels() if e.round == 3} == {"ana"}


def test_a_bad_row_rejects_the_whole_import(looped_copy, ctx, tmp_path):
    run = ctx.root.run(looped_copy)
    before = run.labels_path.read_text()
    some = run.pool().ids[:2]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"id": some[0], "label": "tech"}) + "\n" + json.dumps({"id": some[1], "label": "weather"}) + "\n"
    )
    with pytest.raises(InputError, match=r"bad.jsonl:2: label 'weather' is not in the label schema"):
        import_labels(ImportInput(run=looped_copy, file=str(bad)), ctx)
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"id": "nope", "label": "tech"}) + "\n")
    with pytest.raises(InputError, match="not in this run"):
        import_labels(ImportInput(run=looped_copy, file=str(unknown)), ctx)
    assert run.labels_path.read_text() == before


def test_batch_larger_than_what_is_left(looped_copy, ctx):
    score_pool(ScoreInput(run=looped_copy), ctx)
    with pytest.raises(InputError, match="larger than the"):
        select_batch(SelectInput(run=looped_copy, batch_size=10_000), ctx)


def test_selecting_twice_needs_redo_and_a_labeled_batch_cannot_be_redone(looped_copy, ctx, bbc_slice):
    score_pool(ScoreInput(run=looped_copy), ctx)
    first = select_batch(SelectInput(run=looped_copy, strategy="entropy"), ctx)
    with pytest.raises(StateError, match="already has a selection"):
        select_batch(SelectInput(run=looped_copy), ctx)
    again = select_batch(SelectInput(run=looped_copy, strategy="kcenter", redo=True), ctx)
    assert again.strategy == "kcenter" and first.round == again.round
    simulate_annotator(SimulateAnnotatorInput(run=looped_copy, gold=str(bbc_slice["gold"])), ctx)
    with pytest.raises(StateError, match="cannot be redone"):
        select_batch(SelectInput(run=looped_copy, redo=True), ctx)


def test_judge_labels_never_reach_training_or_gold(looped_copy, ctx):
    run = ctx.root.run(looped_copy)
    baseline = train_glmm(TrainInput(run=looped_copy, round=3), ctx)
    unlabeled = [i for i in run.pool().ids if i not in {e.item_id for e in run.labels()}][:15]
    run.append_labels(
        [
            LabelEvent(
                item_id=i, label="tech", source="judge", annotator="some-llm", round=3, extra={"use": "pseudo_labeling"}
            )
            for i in unlabeled
        ]
    )
    with_judge = train_glmm(TrainInput(run=looped_copy, round=3), ctx)
    assert with_judge.n_labeled == baseline.n_labeled and with_judge.n_pseudo_labeled == 0
    assert with_judge.gold == baseline.gold


def test_fine_tune_centres_the_prior_on_the_previous_round(looped_copy, ctx):
    fine = train_glmm(TrainInput(run=looped_copy, round=3, training_strategy="fine_tune"), ctx)

    assert fine.training_strategy == "fine_tune"
    assert fine.card["head"]["anchored_to_previous"] is True and fine.card["warm_start_from_round"] == 2
    assert ctx.root.run(looped_copy).results()[-1].training_strategy == "fine_tune"


def test_new_only_trains_on_the_newest_batch_with_every_field_aligned(looped_copy, ctx):
    run = ctx.root.run(looped_copy)
    newest = {e.item_id: str(e.label) for e in run.labels() if e.round >= 2}
    known_before = set(ModelDir(run, 2).card()["label_counts"]) - {
        k for k, v in ModelDir(run, 2).card()["label_counts"].items() if v == 0
    }
    batch_has_every_class = known_before <= set(newest.values())

    new_only = train_glmm(TrainInput(run=looped_copy, round=3, training_strategy="new_only"), ctx)

    trained_on = new_only.card["trained_on"]
    if batch_has_every_class:  # decided by the data, not left open: the fixture's batch is fixed
        assert new_only.training_strategy == "new_only" and new_only.card["head"]["anchor"].startswith("sequential")
        assert trained_on["n"] == len(newest) == sum(trained_on["label_counts"].values())
    else:
        assert new_only.training_strategy == "fine_tune" and "lacks class" in new_only.strategy_note
        assert trained_on["n"] == 30
    assert new_only.n_labeled == 30 and sum(new_only.label_counts.values()) == 30
    assert [r.round for r in run.results()] == [1, 2, 3]  # a redone round replaces its row


def test_hybrid_switch_reads_the_cross_validated_f1_not_gold(looped_copy, ctx):
    """A scripted ΔF1 series: gold F1 jumps, the out-of-fold F1 the switch reads has settled."""
    run = ctx.root.run(looped_copy)
    spec = run.spec()
    run.write_spec(spec.model_copy(update={"model": spec.model.model_copy(update={"hybrid_rounds": 1})}), "test")
    for r, cv, gold in ((1, 0.50, 0.3), (2, 0.502, 0.9)):
        run.update_result(r, cv_macro_f1=cv, gold_macro_f1=gold)

    switched = train_glmm(TrainInput(run=looped_copy, round=3, training_strategy="hybrid"), ctx)

    assert switched.training_strategy == "fine_tune", switched.strategy_note
    assert "cv_macro_f1" in switched.strategy_note and switched.card["decision_source"] == "cv"
    assert switched.card["hybrid"]["series"] == {1: 0.5, 2: 0.502}
    assert switched.card["hybrid"]["switched_at"] == 3

    spec = run.spec()
    asks_gold = spec.model.model_copy(update={"decision_source": "gold"})
    run.write_spec(spec.model_copy(update={"model": asks_gold}), "test")
    by_gold = train_glmm(TrainInput(run=looped_copy, round=3, training_strategy="hybrid"), ctx)
    assert by_gold.training_strategy == "retrain" and "gold_macro_f1" in by_gold.strategy_note


@pytest.mark.parametrize(("round_2_predictions", "applied"), [("as round 1's", "fine_tune"), ("reversed", "retrain")])
def test_hybrid_can_switch_on_the_stability_of_pool_predictions(looped_copy, ctx, round_2_predictions, applied):
    """model.hybrid_kappa: fine-tune once κ between successive rounds' pool predictions ≥ it (k = 1)."""
    run = ctx.root.run(looped_copy)
    spec = run.spec()
    stable = spec.model.model_copy(update={"hybrid_kappa": 0.9, "hybrid_rounds": 1})
    run.write_spec(spec.model_copy(update={"model": stable}), "test")
    first, second = ModelDir(run, 1).predictions(), ModelDir(run, 2).predictions()
    kept = dict(zip(first.pool_ids, first.pool_pred, strict=True))
    scripted = np.array([kept.get(i, p) for i, p in zip(second.pool_ids, second.pool_pred, strict=True)])
    if round_2_predictions == "reversed":
        scripted = scripted[::-1]
    ModelDir(run, 2).save_predictions(replace(second, pool_pred=scripted))

    out = train_glmm(TrainInput(run=looped_copy, round=3, training_strategy="hybrid"), ctx)

    assert out.training_strategy == applied, out.strategy_note
    assert out.card["hybrid"]["figure"] == "prediction_kappa"
    assert "κ of successive pool predictions ≥ 0.9" in out.strategy_note
    kappa = out.card["hybrid"]["kappa"][2]
    assert kappa == 1.0 if applied == "fine_tune" else kappa < 0.9


def test_hybrid_stays_with_fine_tune_once_switched(looped_copy, ctx):
    run = ctx.root.run(looped_copy)
    model = ModelDir(run, 2)
    model.write_card(model.card() | {"training_strategy": "fine_tune"})
    run.update_result(1, cv_macro_f1=0.2)
    run.update_result(2, cv_macro_f1=0.9)  # a big ΔF1 would mean retrain, were the switch not sticky

    out = train_glmm(TrainInput(run=looped_copy, round=3, training_strategy="hybrid"), ctx)

    assert out.training_strategy == "fine_tune" and "switched to fine_tune in round 2" in out.strategy_note
    assert out.card["hybrid"]["switched_at"] == 2


def test_retraining_a_round_drops_its_stale_predictions(looped_copy, ctx):
    """Audit #7: a retrained round must never be selected with the old model's scores."""
    score_pool(ScoreInput(run=looped_copy), ctx)
    model = ModelDir(ctx.root.run(looped_copy), 3)
    assert model.predictions().model_version == model.card()["model_version"]

    train_glmm(TrainInput(run=looped_copy, round=3, C=0.001), ctx)

    assert not model.has_predictions()
    with pytest.raises(StateError, match="score_pool"):
        select_batch(SelectInput(run=looped_copy, strategy="margin"), ctx)


def test_the_glmm_head_refuses_a_warm_start_it_cannot_do(looped_copy, ctx):
    with pytest.raises(InputError, match="use retrain"):
        train_glmm(TrainInput(run=looped_copy, round=3, head="glmm", training_strategy="fine_tune"), ctx)


def test_calibrated_probabilities_sum_to_one(looped_copy, ctx):
    score_pool(ScoreInput(run=looped_copy), ctx)
    data = np.load(ctx.root.run(looped_copy).model_dir(3) / "predictions.npz")
    assert np.allclose(data["pool_probs"].sum(axis=1), 1, atol=1e-4)
    assert data["pool_probs"].shape[1] == 5 and len(data["heldout_pred"]) == 100


@pytest.mark.parametrize("strategy", ["random", "diverse", "typical", "keyword"])
def test_seed_strategies(bbc_run, ctx, strategy):
    keywords = {
        "sports": ["cup", "win", "match"],
        "politics": ["election", "labour", "tory"],
        "tech": ["mobile", "software", "net"],
        "business": ["shares", "profit"],
        "entertainment": ["film", "award"],
    }
    out = seed_set(
        SeedInput(run=bbc_run, strategy=strategy, size=10, keywords=keywords if strategy == "keyword" else None), ctx
    )
    assert out.n_selected == 10
    rows = ctx.root.run(bbc_run).selection(0)
    assert len({r.item_id for r in rows}) == 10
    if strategy == "keyword":
        assert len({r.reason for r in rows}) >= 3  # balanced over classes, not all one


def test_the_default_seed_balances_over_partly_known_labels(bbc_slice, ctx, tmp_path, new_run):
    rows = read_jsonl(bbc_slice["pool"])
    gold = {r["id"]: r["label"] for r in read_jsonl(bbc_slice["gold"])}
    partial = [{**r, "label": gold[r["id"]]} if i % 24 == 0 else r for i, r in enumerate(rows)]
    pool = tmp_path / "partial.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in partial))
    new_run("partial", pool=pool)
    run = ctx.root.run("partial")
    assert run.spec().labeled_state == "partial" and len(run.labels()) == 10
    out = seed_set(SeedInput(run="partial", size=10), ctx)  # no strategy named: the known classes decide
    assert out.strategy == "stratified"
    guessed = [r.reason.split("of class ")[1].split(" (")[0] for r in run.selection(0)]
    assert sorted(guessed) == sorted(repr(label) for label in BBC_LABELS for _ in range(2))  # two per class
    assert all("nearest labeled centroid" in r.reason for r in run.selection(0))


def test_stratified_seed_without_labels_guesses_classes_from_the_label_names(bbc_run, bbc_slice, ctx):
    """Zero-shot strata from the label names: on BBC topics the seed covers every topic."""
    seed_set(SeedInput(run=bbc_run, strategy="stratified", size=10), ctx)
    rows = ctx.root.run(bbc_run).selection(0)
    assert all("nearest label name" in r.reason for r in rows)
    gold = {r["id"]: r["label"] for r in read_jsonl(bbc_slice["gold"])}
    assert len({gold[r.item_id] for r in rows}) == len(BBC_LABELS)


def test_training_before_any_label_says_what_to_do(bbc_run, ctx):
    with pytest.raises(StateError, match="no labels yet: run seed_set"):
        train_glmm(TrainInput(run=bbc_run), ctx)


def test_a_final_model_gets_its_own_round_and_is_marked_everywhere(looped_copy, ctx):
    """PRepAL: frozen representations in the loop, then one model on every label, marked final."""
    final = train_glmm(TrainInput(run=looped_copy, final=True), ctx)

    run = ctx.root.run(looped_copy)
    assert final.round == 4 and final.card["final"] is True and final.n_labeled == 30
    assert [r.final for r in run.results()] == [False, False, False, True]
    assert status(StatusInput(run=looped_copy), ctx).next_step.startswith("done: round 4 is the final model")
    write_report(ReportInput(run=looped_copy), ctx)
    assert "**Final model: round 4**" in run.report_path.read_text()
