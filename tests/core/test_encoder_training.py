"""The loop with an encoder that learns: a tiny random-weight BERT (conftest) stands in for any HF encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alloop.tools.errors import InputError
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.model.encoders import EmbeddingCache, run_encoder
from alloop.tools.run.models import ModelDir
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.seed_set import SeedInput, seed_set
from alloop.tools.select_batch import SelectInput, select_batch
from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
from alloop.tools.train_glmm import TrainInput, train_glmm

WORDS = {"cat": ["cat", "the cat sat", "a cat"], "dog": ["dog", "the dog ran", "a dog"]}


@pytest.fixture
def tiny_run(ctx, tmp_path, tiny_encoder):
    """A binary pool of 60 short texts (cat or dog), 10 held out, and its gold labels."""
    classes = [("cat", "dog")[n % 2] for n in range(60)]
    rows = [{"id": f"i{n}", "text": f"{WORDS[c][n % 3]} {n}", "label": c} for n, c in enumerate(classes)]
    files = {}
    for name, part in (("pool", rows[:50]), ("heldout", rows[50:])):
        keep = part if name == "heldout" else [{k: v for k, v in r.items() if k != "label"} for r in part]
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r) + "\n" for r in keep))
    files["gold"] = tmp_path / "gold.jsonl"
    files["gold"].write_text("".join(json.dumps({"id": r["id"], "label": r["label"]}) + "\n" for r in rows[:50]))
    interview_spec(
        InterviewInput(
            run="tiny",
            pool=str(files["pool"]),
            heldout=str(files["heldout"]),
            task_type="binary",
            labels=["cat", "dog"],
            batch_size=10,
            encoder=str(tiny_encoder),
        ),
        ctx,
    )
    run = ctx.root.run("tiny")
    spec = run.spec()
    fast = spec.model.encoder_training.model_copy(update={"epochs": 2, "batch_size": 8, "learning_rate": 1e-3})
    random_weights = spec.selection.model_copy(update={"near_duplicate_threshold": 1.0})  # every text looks alike
    model = spec.model.model_copy(update={"encoder_training": fast})
    run.write_spec(spec.model_copy(update={"model": model, "selection": random_weights}), "test")
    seed_set(SeedInput(run="tiny", strategy="random", size=16), ctx)
    simulate_annotator(SimulateAnnotatorInput(run="tiny", gold=str(files["gold"])), ctx)
    return run, files


def test_lora_trains_the_encoder_and_the_round_scores_with_it(ctx, tiny_run):
    run, _ = tiny_run

    out = train_glmm(TrainInput(run="tiny", encoder_training="lora"), ctx)

    trained = out.card["encoder_training"]
    assert trained["kind"] == "lora" and trained["epochs_run"] >= 1
    validation = set(trained["validation_item_ids"])
    assert validation and validation < {e.item_id for e in run.labels()}  # carved from the labels, never gold
    model = ModelDir(run, 1)
    assert model.encoder_weights() is not None and (model.encoder_weights() / "adapter_config.json").is_file()
    assert run.results()[-1].encoder_training == "lora"
    score_pool(ScoreInput(run="tiny"), ctx)
    encoder = run_encoder(run, 1)
    assert encoder.key == out.card["encoder_key"] != run_encoder(run).key  # its own cache, by weights version
    ids, cached = EmbeddingCache(run, encoder.key).load()
    texts = dict(zip(run.pool().ids, run.pool().texts(["text"]), strict=True))
    fresh = encoder.encode([texts[ids[0]]])  # a reloaded round embeds as it did when trained
    np.testing.assert_allclose(fresh[0], cached[0], atol=1e-5)


def next_batch(ctx, files) -> None:
    score_pool(ScoreInput(run="tiny"), ctx)
    select_batch(SelectInput(run="tiny", strategy="random", batch_size=10), ctx)
    simulate_annotator(SimulateAnnotatorInput(run="tiny", gold=str(files["gold"])), ctx)


def test_fine_tune_continues_from_the_previous_rounds_adapter(ctx, tiny_run):
    run, files = tiny_run
    first = train_glmm(TrainInput(run="tiny", encoder_training="lora"), ctx)
    next_batch(ctx, files)

    second = train_glmm(TrainInput(run="tiny", encoder_training="lora", training_strategy="fine_tune"), ctx)

    assert second.card["encoder_training"]["init_round"] == 1 and second.training_strategy == "fine_tune"
    assert ModelDir(run, 2).encoder_weights() is not None
    trained_on_1 = {e.item_id for e in run.labels() if e.round == 0} - set(
        first.card["encoder_training"]["validation_item_ids"]
    )
    assert trained_on_1 and not trained_on_1 & set(second.card["encoder_training"]["validation_item_ids"]), (
        "an item the warm start's encoder trained on never validates it"
    )


def test_a_fine_tune_round_does_less_work_than_a_retrain(ctx, tiny_run):
    """The same labels: retrain runs `epochs` (2 here) from the pretrained weights, fine_tune one pass."""
    _, files = tiny_run
    train_glmm(TrainInput(run="tiny", encoder_training="lora"), ctx)
    next_batch(ctx, files)

    retrain = train_glmm(TrainInput(run="tiny", encoder_training="lora"), ctx).card["encoder_training"]
    fine = train_glmm(TrainInput(run="tiny", round=2, encoder_training="lora", training_strategy="fine_tune"), ctx)
    fine = fine.card["encoder_training"]

    assert (retrain["warm_start"], retrain["epochs_run"]) == (False, 2)
    assert (fine["warm_start"], fine["epochs_run"], fine["init_round"]) == (True, 1, 1)
    assert fine["train_size"] == retrain["train_size"] and fine["sample_epochs"] * 2 == retrain["sample_epochs"]


@pytest.mark.parametrize(("series", "applied"), [((0.60, 0.605), "fine_tune"), ((0.60, 0.70), "retrain")])
def test_hybrid_switches_the_encoder_on_a_scripted_f1_series(ctx, tiny_run, series, applied):
    """|ΔF1| < ε (0.01) for k = 1 round: continue round 2's adapter for one epoch; else start over."""
    run, files = tiny_run
    spec = run.spec()
    run.write_spec(spec.model_copy(update={"model": spec.model.model_copy(update={"hybrid_rounds": 1})}), "test")
    for _ in range(2):
        train_glmm(TrainInput(run="tiny", encoder_training="lora"), ctx)
        next_batch(ctx, files)
    for round_, figure in zip((1, 2), series, strict=True):
        run.update_result(round_, cv_macro_f1=figure, gold_macro_f1=0.5)

    third = train_glmm(TrainInput(run="tiny", encoder_training="lora", training_strategy="hybrid"), ctx)

    trained = third.card["encoder_training"]
    assert third.training_strategy == applied, third.strategy_note
    assert third.card["hybrid"]["series"] == {1: series[0], 2: series[1]}
    if applied == "fine_tune":
        assert third.card["hybrid"]["switched_at"] == 3 and "< 0.01 for 1 rounds" in third.strategy_note
        assert (trained["init_round"], trained["epochs_run"], trained["warm_start"]) == (2, 1, True)
    else:
        assert third.card["hybrid"]["switched_at"] is None
        assert (trained["init_round"], trained["epochs_run"], trained["warm_start"]) == (None, 2, False)


def test_an_encoder_rounds_decision_figure_comes_from_items_the_encoder_never_trained_on(ctx, tiny_run):
    """Not the head's out-of-fold F1: those rows were in the encoder's training set (optimistic)."""
    run, _ = tiny_run

    out = train_glmm(TrainInput(run="tiny", encoder_training="lora"), ctx)

    trained = out.card["encoder_training"]
    assert 0 < trained["validation_size"] == len(trained["validation_item_ids"]) < out.n_labeled
    assert trained["train_size"] + trained["validation_size"] == out.n_labeled
    assert run.results()[-1].cv_macro_f1 == pytest.approx(trained["validation_macro_f1"], abs=1e-6)


def test_a_killed_training_writes_nothing(ctx, tiny_run, monkeypatch):
    run, _ = tiny_run
    import alloop.tools.model.finetune as finetune

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(finetune, "train_encoder", killed)

    with pytest.raises(KeyboardInterrupt):
        train_glmm(TrainInput(run="tiny", encoder_training="full"), ctx)

    assert not ModelDir(run, 1).path.exists() and run.results() == []
    assert [p.name for p in run.models_dir.iterdir()] == []  # no staging folder left behind


def test_a_lora_target_the_model_lacks_is_named_and_the_run_stays_intact(ctx, tiny_run):
    run, _ = tiny_run
    spec = run.spec()
    training = spec.model.encoder_training.model_copy(update={"lora_target_modules": ["q_proj"]})
    run.write_spec(spec.model_copy(update={"model": spec.model.model_copy(update={"encoder_training": training})}), "t")

    with pytest.raises(InputError, match="q_proj"):
        train_glmm(TrainInput(run="tiny", encoder_training="lora"), ctx)

    assert run.results() == [] and not ModelDir(run, 1).path.exists()


def test_a_shortlist_limits_what_a_trained_encoder_re_embeds(ctx, tiny_run):
    run, _ = tiny_run
    out = train_glmm(TrainInput(run="tiny", encoder_training="lora"), ctx)

    score_pool(ScoreInput(run="tiny", shortlist=8), ctx)

    assert ModelDir(run, 1).card()["scoring"] == {"shortlist": 8, "rescored": 10}
    ids, _ = EmbeddingCache(run, out.card["encoder_key"]).load()
    labeled = {e.item_id for e in run.labels()}
    assert len(set(ids) - labeled - set(run.heldout().ids)) <= 10  # not the whole pool of 50
    probs = ModelDir(run, 1).predictions().pool_probs
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)


@pytest.mark.slow
def test_a_real_loop_with_the_bundled_minilm_and_lora(ctx, new_run, bbc_slice):
    """The one real-model check: MiniLM learns with LoRA adapters inside the loop, on BBC titles."""
    name = new_run("minilm-lora")
    run = ctx.root.run(name)
    spec = run.spec()
    short = spec.model.encoder_training.model_copy(update={"epochs": 1, "learning_rate": 3e-4})
    run.write_spec(spec.model_copy(update={"model": spec.model.model_copy(update={"encoder_training": short})}), "t")
    seed_set(SeedInput(run=name, size=30), ctx)
    simulate_annotator(SimulateAnnotatorInput(run=name, gold=str(bbc_slice["gold"])), ctx)

    out = train_glmm(TrainInput(run=name, encoder_training="lora"), ctx)
    score_pool(ScoreInput(run=name), ctx)

    assert out.card["encoder_training"]["kind"] == "lora" and out.card["encoder"] == "all-MiniLM-L6-v2"
    assert out.gold["gold_macro_f1"] > 0.3  # five topics from 30 titles: above the 0.2 of chance
    assert out.card["encoder_version"] != "pretrained" and out.card["encoder_key"] != run_encoder(run).key
    assert ModelDir(run, 1).predictions().model_version == out.model_version
