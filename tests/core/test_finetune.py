"""Encoder fine-tuning (model/finetune.py) on a tiny random BERT: each kind trains, saves and reloads.

The tiny model (hidden 32, 2 layers) uses the bundled MiniLM tokenizer; the texts are four words
drawn from a class's own vocabulary, so any learner that learns separates them.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import torch

from alloop.tools.errors import InputError
from alloop.tools.model import finetune
from alloop.tools.model.finetune import encoder_digest, load_encoder, train_encoder, validation_split
from alloop.tools.run.schema import EncoderTrainingSpec

WORDS = [
    ["apple", "banana", "cherry", "grape", "lemon"],
    ["car", "truck", "bus", "train", "bicycle"],
    ["red", "blue", "green", "yellow", "purple"],
]
FAST = {"epochs": 2, "learning_rate": 1e-3, "batch_size": 16, "max_length": 16, "contrastive_pairs": 2}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two shared cores: one torch thread is faster than two fighting over them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base(tiny_encoder) -> str:
    return str(tiny_encoder)


def corpus(n: int = 60, classes: int = 3) -> tuple[list[str], list[int]]:
    picker = random.Random(0)
    labels = [i % classes for i in range(n)]
    return [" ".join(picker.choice(WORDS[c]) for _ in range(4)) for c in labels], labels


def spec(kind: str, **overrides) -> EncoderTrainingSpec:
    return EncoderTrainingSpec(kind=kind, **(FAST | overrides))


@pytest.fixture(scope="module")
def trained(base, tmp_path_factory) -> dict[str, tuple[Path, finetune.EncoderTrainingResult]]:
    """One run per kind, shared by the tests that only read it."""
    texts, labels = corpus()
    runs = {}
    for kind in ("full", "lora", "contrastive"):
        out = tmp_path_factory.mktemp(f"{kind}-parent") / kind
        out.mkdir()
        epochs = 3 if kind == "lora" else 2
        runs[kind] = (out, train_encoder(texts, labels, 3, spec(kind, epochs=epochs), base, out))
    return runs


def first_weight(model) -> torch.Tensor:
    return model.encoder.layer[0].attention.self.query.weight.detach().clone()


@pytest.mark.parametrize("kind", ["full", "lora", "contrastive"])
def test_each_kind_trains_saves_and_reloads(trained, base, kind) -> None:
    out, result = trained[kind]

    names = sorted(p.name for p in out.iterdir())
    model, tokenizer = load_encoder(out, base)
    base_model, _ = load_encoder(None, base)

    if kind == "lora":
        assert names == ["adapter_config.json", "adapter_model.safetensors", finetune.ADAPTER_FILE]
    else:
        assert "model.safetensors" in names and "config.json" in names and "tokenizer.json" in names
    assert not model.training
    assert not torch.equal(first_weight(model), first_weight(base_model)), "training changed the weights"
    assert [p.name for p in out.parent.iterdir()] == [kind], "no staging folder is left behind"
    assert result.kind == kind and result.train_size + result.validation_size == 60
    assert result.epochs_run == len(result.history) >= 1
    assert result.best_epoch is not None and result.validation_macro_f1 is not None
    with torch.no_grad():
        batch = tokenizer(["apple banana", "car bus"], padding=True, return_tensors="pt")
        assert model(**batch).last_hidden_state.shape == (2, batch["input_ids"].shape[1], 32)


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_the_classifier_kinds_learn(trained, kind) -> None:
    _, result = trained[kind]
    losses = [row["train_loss"] for row in result.history]

    assert losses[-1] < losses[0]
    assert result.validation_macro_f1 > 0.5  # chance is 1/3 over three classes


def test_the_validation_split_is_stratified_and_disjoint() -> None:
    labels = [0] * 30 + [1] * 20 + [2] * 5

    train, held, note = validation_split(labels, 0.2, seed=3)

    assert note == ""
    assert not set(train) & set(held) and sorted(train + held) == list(range(55))
    assert Counter(labels[p] for p in held) == {0: 6, 1: 4, 2: 1}
    assert validation_split(labels, 0.2, seed=3) == (train, held, note)
    assert validation_split(labels, 0.2, seed=4)[1] != held
    pairs = [0, 0, 1, 1]
    assert Counter(pairs[p] for p in validation_split(pairs, 0.8)[1]) == {0: 1, 1: 1}, "one of each stays to train"


def test_the_result_names_the_held_out_positions(trained) -> None:
    _, labels = corpus()
    _, result = trained["full"]

    train, held, _ = validation_split(labels, 0.2, seed=0)

    assert result.validation_ids_positions == held
    assert result.validation_size == len(held) and result.train_size == len(train)
    assert set(labels[p] for p in held) == {0, 1, 2}


def test_the_contrastive_pairs_use_training_items_only(base) -> None:
    texts, labels = corpus()
    train, held, _ = validation_split(labels, 0.2, seed=0)
    trainer = finetune._Trainer(texts, labels, train, held, spec("contrastive", contrastive_pairs=6), base, None, 0)

    pairs = trainer._pairs()

    assert len(pairs) == 6 * len(train)
    assert not set(pairs[:, :2].ravel().tolist()) & set(held)
    same = [labels[a] == labels[b] for a, b, _ in pairs]
    assert same == [bool(flag) for flag in pairs[:, 2]] and 0 < sum(same) < len(same)


@pytest.mark.parametrize(
    ("labels", "fraction", "phrase"),
    [([0] * 20 + [1] * 19 + [2], 0.2, "fewer than 2 labels"), ([0, 1] * 20, 0.0, "validation_fraction is 0")],
)
def test_without_a_split_it_trains_every_epoch_on_everything(base, tmp_path, labels, fraction, phrase) -> None:
    texts = [" ".join([WORDS[label][i % 5], WORDS[label][(i + 1) % 5]]) for i, label in enumerate(labels)]

    result = train_encoder(
        texts, labels, 3, spec("full", validation_fraction=fraction, patience=0), base, tmp_path / "out"
    )

    assert phrase in result.note
    assert result.validation_size == 0 and result.validation_ids_positions == []
    assert result.train_size == len(labels) and result.epochs_run == 2
    assert result.best_epoch is None and result.validation_macro_f1 is None


def test_early_stopping_keeps_the_best_epoch(base, tmp_path, monkeypatch) -> None:
    texts, labels = corpus()
    scripted = iter([(0.5, 1.0), (0.8, 0.9), (0.7, 0.8), (0.6, 0.7), (0.9, 0.1)])
    monkeypatch.setattr(finetune._Trainer, "_validate", lambda self, contrastive: next(scripted))

    stopped = train_encoder(texts, labels, 3, spec("full", epochs=5, patience=1), base, tmp_path / "stopped")
    scripted = iter([(0.5, 1.0), (0.8, 0.9)])
    two = train_encoder(texts, labels, 3, spec("full", epochs=2, patience=1), base, tmp_path / "two")

    assert stopped.epochs_run == 4 and stopped.best_epoch == 2 and stopped.validation_macro_f1 == 0.8
    assert two.epochs_run == two.best_epoch == 2
    assert "stopped early after epoch 4" in stopped.note and "kept epoch 2" in stopped.note
    assert encoder_digest(tmp_path / "stopped") == encoder_digest(tmp_path / "two"), "epoch 2's weights were kept"


def test_a_missing_lora_target_names_the_modules_the_model_has(base, tmp_path) -> None:
    texts, labels = corpus()

    with pytest.raises(InputError, match=r"\['q_proj'\].*'dense'.*'query'.*'value'"):
        train_encoder(texts, labels, 3, spec("lora", lora_target_modules=["q_proj"]), base, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []


def test_fine_tune_continues_a_lora_adapter(trained, base, tmp_path) -> None:
    texts, labels = corpus()
    init, first = trained["lora"]
    before = encoder_digest(init)

    result = train_encoder(texts, labels, 3, spec("lora", epochs=1), base, tmp_path / "next", init=init)
    fresh = train_encoder(texts, labels, 3, spec("lora", epochs=1), base, tmp_path / "fresh")

    assert "continued the LoRA adapter in init" in result.note
    assert encoder_digest(init) == before, "the init folder is left as it was"
    assert encoder_digest(tmp_path / "next") not in {before, encoder_digest(tmp_path / "fresh")}
    assert result.validation_ids_positions == first.validation_ids_positions
    assert result.history[0]["train_loss"] < fresh.history[0]["train_loss"], "it starts where the init ended"


def test_a_warm_start_runs_fine_tune_epochs_and_a_fresh_start_runs_epochs(trained, base, tmp_path) -> None:
    """The ΔF1 method's saving: continuing last round's encoder costs fewer passes than starting over."""
    texts, labels = corpus()
    init, _ = trained["lora"]
    settings = spec("lora", epochs=3, fine_tune_epochs=1, patience=5)

    warm = train_encoder(texts, labels, 3, settings, base, tmp_path / "warm", init=init)
    fresh = train_encoder(texts, labels, 3, settings, base, tmp_path / "fresh")
    unusable = train_encoder(
        texts, labels, 3, settings.model_copy(update={"lora_rank": 4}), base, tmp_path / "r4", init=init
    )

    assert warm.warm_start and warm.epochs_planned == warm.epochs_run == 1
    assert "at most 1 epoch(s) (fine_tune_epochs" in warm.note
    assert not fresh.warm_start and fresh.epochs_planned == fresh.epochs_run == 3
    assert not unusable.warm_start and unusable.epochs_run == 3, "a fresh adapter gets the full epochs"
    assert warm.train_size == fresh.train_size
    assert (warm.sample_epochs, fresh.sample_epochs) == (warm.train_size, 3 * fresh.train_size)


def test_warm_starts_across_kinds_say_what_they_did(trained, base, tmp_path) -> None:
    texts, labels = corpus()
    adapter, _ = trained["lora"]
    full, _ = trained["full"]

    merged = train_encoder(texts, labels, 3, spec("full", epochs=1), base, tmp_path / "a", init=adapter)
    rank_4 = spec("lora", epochs=1, lora_rank=4)
    other_rank = train_encoder(texts, labels, 3, rank_4, base, tmp_path / "b", init=adapter)
    from_full = train_encoder(texts, labels, 3, spec("lora", epochs=1), base, tmp_path / "c", init=full)

    assert "merged the LoRA adapter in init" in merged.note
    assert "init adapter not used (r 8 ≠ spec 4)" in other_rank.note
    assert "not a LoRA adapter" in from_full.note
    assert load_encoder(tmp_path / "a", base)[0] is not None


def test_the_same_seed_gives_the_same_weights(base, tmp_path) -> None:
    texts, labels = corpus(30)
    one = spec("full", epochs=1, batch_size=8)

    a = train_encoder(texts, labels, 3, one, base, tmp_path / "a", seed=7)
    b = train_encoder(texts, labels, 3, one, base, tmp_path / "b", seed=7)
    c = train_encoder(texts, labels, 3, one, base, tmp_path / "c", seed=8)

    assert encoder_digest(tmp_path / "a") == encoder_digest(tmp_path / "b")
    assert encoder_digest(tmp_path / "a") != encoder_digest(tmp_path / "c")
    assert a.history == b.history and a.validation_ids_positions != c.validation_ids_positions


def test_training_leaves_grad_mode_and_the_global_rng_alone(base, tmp_path) -> None:
    """HFEncoder turns grad off process-wide; training must still work, and leave it off."""
    texts, labels = corpus(30)
    state = torch.get_rng_state()
    previous = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        result = train_encoder(texts, labels, 3, spec("full", epochs=1), base, tmp_path / "out")
        assert not torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(previous)

    assert result.history[0]["train_loss"] > 0
    assert torch.equal(torch.get_rng_state(), state)


def test_a_run_killed_midway_leaves_no_model(base, tmp_path) -> None:
    texts, labels = corpus(30)
    out = tmp_path / "out"
    out.mkdir()

    def interrupt(done, total, message) -> None:
        if done >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_encoder(texts, labels, 3, spec("full"), base, out, progress=interrupt)

    assert list(tmp_path.iterdir()) == [out] and list(out.iterdir()) == []


def test_bad_arguments_are_input_errors(base, tmp_path) -> None:
    texts, labels = corpus(12)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")

    with pytest.raises(InputError, match="local model folder or an installed model"):
        train_encoder(texts, labels, 3, spec("full"), "no-such-org/no-such-encoder", tmp_path / "a")
    with pytest.raises(InputError, match="could not be loaded offline"):
        load_encoder(None, str(tmp_path / "nothing-here"))
    with pytest.raises(InputError, match="does not exist"):
        load_encoder(tmp_path / "missing", base)
    with pytest.raises(InputError, match="empty or missing folder"):
        train_encoder(texts, labels, 3, spec("full"), base, tmp_path / "full")
    with pytest.raises(InputError, match="frozen"):
        train_encoder(texts, labels, 3, spec("frozen"), base, tmp_path / "b")
    with pytest.raises(InputError, match="at least two classes"):
        train_encoder(texts, [0] * 12, 3, spec("full"), base, tmp_path / "c")
    with pytest.raises(InputError, match=r"0\.\.2"):
        train_encoder(texts, [5] * 12, 3, spec("full"), base, tmp_path / "d")


@pytest.mark.slow
def test_lora_on_the_bundled_minilm(tmp_path) -> None:
    from alloop.tools.model.encoders import resolve_encoder

    base = resolve_encoder("all-MiniLM-L6-v2")
    texts, labels = corpus(40, classes=2)

    result = train_encoder(texts, labels, 2, spec("lora", epochs=2, learning_rate=5e-4), base, tmp_path / "out")
    model, _ = load_encoder(tmp_path / "out", base)

    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert model.config.hidden_size == 384 and len(encoder_digest(tmp_path / "out")) == 16
