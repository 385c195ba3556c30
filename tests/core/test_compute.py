"""spec.compute: embedding, training and scoring sharded over the pool, merged as a local run writes them.

Modal's cloud cannot be reached from the tests. Two stand-ins take its place, both running the
very functions Modal would run: the local executor (threads in this process, the reference), and
Modal's own local mode (`ModalExecutor(local=True)`: each shard a `Function.local()` call on the
modal.Function objects the app registers). Failures are planted in the local executor's task
table, the one place a shard's work is looked up.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import modal
import numpy as np
import pytest

from alloop.tools.base import ToolContext
from alloop.tools.compute import BACKEND_ENV, Backend, LocalExecutor, ShardError, run_shards
from alloop.tools.compute import backend as backend_module
from alloop.tools.compute.modal_app import ModalExecutor
from alloop.tools.compute.shards import TASKS
from alloop.tools.errors import InputError
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.model.encoders import EmbeddingCache, HFEncoder, embed_table
from alloop.tools.model.finetune import encoder_digest, train_encoder
from alloop.tools.model.heads import load_head
from alloop.tools.model.task_types import scores
from alloop.tools.report.datasets import BBC_LABELS
from alloop.tools.run.models import ModelDir
from alloop.tools.run.rundir import RunRoot
from alloop.tools.run.schema import ComputeSpec, EncoderTrainingSpec
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.simulate import SimulateInput, simulate
from alloop.tools.train_glmm import TrainInput, train_glmm

FAKE_SECRET = "as-fake-modal-secret-0123456789abcdef"


def titles(bbc_slice) -> list[str]:
    import json

    return [json.loads(line)["text"] for line in bbc_slice["pool"].read_text(encoding="utf-8").splitlines()]


def backend(executor, **settings) -> Backend:
    return Backend(executor, ComputeSpec(backend="modal", **settings))


class Flaky:
    """A task that raises on chosen calls (counted from 1) and otherwise does the real work."""

    def __init__(self, task: str, fail_calls: set[int] | None = None, always: bool = False, message: str = "") -> None:
        self.work, self.fail_calls, self.always, self.message = TASKS[task], fail_calls or set(), always, message
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        if self.always or self.calls in self.fail_calls:
            raise ConnectionError(self.message or f"worker lost on call {self.calls}")
        return self.work(*args)


@pytest.fixture(scope="module")
def scored_run(bbc_slice, tiny_encoder, tmp_path_factory) -> Path:
    """A BBC run after one simulated round (trained, scored), embedded by the tiny random-weight encoder."""
    root = RunRoot(tmp_path_factory.mktemp("compute"))
    ctx = ToolContext(root=root, inputs_anywhere=True)
    answers = {"task_type": "categorical", "labels": BBC_LABELS, "batch_size": 10, "encoder": str(tiny_encoder)}
    interview_spec(
        InterviewInput(run="c", pool=str(bbc_slice["pool"]), heldout=str(bbc_slice["heldout"]), **answers), ctx
    )
    run = root.run("c")
    spec = run.spec()
    alike = spec.selection.model_copy(update={"near_duplicate_threshold": 1.0})  # random weights: texts look alike
    run.write_spec(spec.model_copy(update={"selection": alike}), "compute test: a random-weight encoder")
    simulate(SimulateInput(run="c", gold=str(bbc_slice["gold"]), rounds=1, batch_size=10), ctx)
    return root.path


@pytest.fixture
def run_ctx(scored_run, tmp_path) -> ToolContext:
    shutil.copytree(scored_run, tmp_path / "runs")
    return ToolContext(root=RunRoot(tmp_path / "runs"), inputs_anywhere=True)


def on_modal(monkeypatch, make) -> None:
    """Route spec.compute's 'modal' backend to `make(settings)` and turn it on as the CLI's --backend does."""
    monkeypatch.setitem(backend_module.EXECUTORS, "modal", make)
    monkeypatch.setenv(BACKEND_ENV, "modal")


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- shard and merge --------------------------------------------------------------------------------


def tie_across_a_batch_edge() -> list[str]:
    """Ten texts of one length (but not one token count) at the 64-text batch edge of the encoder's order."""
    longer = [("news " * 40)[: 100 - i] for i in range(60)]  # 60 distinct lengths, all longer
    tied = ["a b c d e f g h i j k l" if i % 2 else "abcdefghijklmnopqrstuvw" for i in range(10)]  # 23 characters
    shorter = [("to " * 8)[: 20 - i % 15] + str(i) for i in range(122)]
    return longer + tied + shorter


@pytest.mark.parametrize("case", ["bbc titles", "a tie at a batch edge"])
def test_sharded_embedding_equals_the_unsharded_encoder_bit_for_bit(case, bbc_slice):
    """MiniLM on shards cut anyhow differs in the last bits (a batch's padding changes); these shards do not."""
    texts, shard_size = (titles(bbc_slice)[:200], 50) if case == "bbc titles" else (tie_across_a_batch_edge(), 128)
    encoder = HFEncoder("all-MiniLM-L6-v2", max_length=64)
    whole = encoder.encode(texts)

    merged = backend(LocalExecutor(workers=2), shard_size=shard_size).embed(encoder, texts)

    assert merged.dtype == np.float32 and merged.shape == whole.shape == (len(texts), 384)
    np.testing.assert_array_equal(merged, whole)


def test_sharded_scoring_equals_the_head_on_the_whole_pool(run_ctx):
    run = run_ctx.root.run("c")
    spec, model = run.spec(), ModelDir(run, 1)
    x = embed_table(run, run.pool(), spec.text_fields, HFEncoder(spec.model.encoder, spec.model.max_length))
    head = load_head(model.head_path)

    merged = backend(LocalExecutor(workers=2), shard_size=37).score(model.head_path.read_bytes(), x, None)

    np.testing.assert_array_equal(merged, scores(head, x, None))
    np.testing.assert_allclose(merged.sum(axis=1), 1.0, rtol=1e-6)  # probabilities, one row per item


def test_a_shard_that_fails_once_is_retried_and_the_result_is_still_exact(bbc_slice, tiny_encoder, caplog):
    texts = titles(bbc_slice)
    encoder = HFEncoder(str(tiny_encoder), max_length=64)
    flaky = Flaky("embed", fail_calls={2})
    executor = LocalExecutor(tasks={**TASKS, "embed": flaky})

    with caplog.at_level(logging.WARNING, logger="alloop.tools.compute"):
        merged = backend(executor, shard_size=64, retries=1).embed(encoder, texts)

    assert flaky.calls == 4 + 1  # four shards, the second sent twice
    np.testing.assert_array_equal(merged, encoder.encode(texts))
    assert "1 of 4 shards failed (attempt 1 of 2)" in caplog.text


def test_a_timed_out_shard_counts_as_failed_and_is_retried():
    started: list[float] = []

    def slow_first(x: int) -> int:
        started.append(time.monotonic())
        if len(started) == 1:
            time.sleep(0.3)
        return x * x

    executor = LocalExecutor(timeout_s=0.1, tasks={"square": slow_first})
    assert run_shards(executor, "square", [(1,), (2,), (3,)], retries=1, what="squaring") == [1, 4, 9]
    assert len(started) == 4

    always_slow = LocalExecutor(timeout_s=0.01, tasks={"square": lambda x: time.sleep(0.05) or x})
    with pytest.raises(ShardError, match=r"shard\(s\) 1, 2 of 2 failed 2 time\(s\).*ShardTimeout: ran .* s, over"):
        run_shards(always_slow, "square", [(1,), (2,)], retries=1, what="squaring")


def test_a_scoring_shard_that_always_fails_leaves_the_rounds_predictions_as_they_were(run_ctx, monkeypatch):
    run = run_ctx.root.run("c")
    broken = Flaky("score", always=True)
    on_modal(monkeypatch, lambda settings: LocalExecutor(tasks={**TASKS, "score": broken}))
    run.write_spec(run.spec().model_copy(update={"compute": ComputeSpec(shard_size=64, retries=2)}), "shards of 64")
    before = files_of(run.path)

    with pytest.raises(ShardError) as caught:
        score_pool(ScoreInput(run="c"), run_ctx)

    message = str(caught.value)
    assert "scoring on local: shard(s) 1, 2, 3, 4 of 4 failed 3 time(s)" in message
    assert "ConnectionError: worker lost" in message and "Nothing was written to the run" in message
    assert "compute.timeout_s" in message  # what to change
    assert broken.calls == 4 * 3
    assert files_of(run.path) == before  # no partial predictions, no results row, no card change


def test_an_embedding_shard_that_always_fails_writes_nothing_to_the_cache(run_ctx, tiny_encoder, monkeypatch):
    run = run_ctx.root.run("c")
    encoder = HFEncoder(str(tiny_encoder), max_length=32)  # another key: nothing of it is cached yet
    on_modal(monkeypatch, lambda settings: LocalExecutor(tasks={**TASKS, "embed": Flaky("embed", fail_calls={3})}))
    run.write_spec(run.spec().model_copy(update={"compute": ComputeSpec(shard_size=64, retries=0)}), "no retries")

    with pytest.raises(ShardError, match=r"embedding on local: shard\(s\) 3 of 4 failed 1 time"):
        embed_table(run, run.pool(), ["text"], encoder)

    assert EmbeddingCache(run, encoder.key).load()[0] == []
    assert not run.embeddings_dir(encoder.key).exists() or not any(run.embeddings_dir(encoder.key).iterdir())


def test_a_shard_error_the_caller_can_fix_is_not_retried(run_ctx):
    calls = []

    def bad_head(*args):
        calls.append(1)
        return TASKS["score"](*args)

    executor = LocalExecutor(tasks={"score": bad_head})
    with pytest.raises(InputError, match="is not an alloop head file"):
        backend(executor, retries=3).score(b"not a head", np.zeros((3, 4), np.float32), None)
    assert len(calls) == 1


# -- Modal's functions, called in process ----------------------------------------------------------


def test_modal_functions_called_in_process_give_the_local_arrays(bbc_slice, tiny_encoder, run_ctx):
    """Modal's own local mode: each shard goes through `Function.local` of the app's registered functions."""
    executor = ModalExecutor(ComputeSpec(backend="modal", gpu="H100"), local=True)
    assert sorted(executor.functions) == sorted(TASKS)
    assert all(isinstance(f, modal.Function) for f in executor.functions.values())
    texts = titles(bbc_slice)[:100]
    encoder = HFEncoder(str(tiny_encoder), max_length=64)  # a local folder: it travels packed, as to the cloud

    np.testing.assert_array_equal(backend(executor, shard_size=64).embed(encoder, texts), encoder.encode(texts))

    run = run_ctx.root.run("c")
    model = ModelDir(run, 1)
    x = embed_table(run, run.pool(), ["text"], HFEncoder(run.spec().model.encoder, run.spec().model.max_length))
    merged = backend(executor, shard_size=100).score(model.head_path.read_bytes(), x, None)
    np.testing.assert_array_equal(merged, scores(load_head(model.head_path), x, None))


def test_score_pool_on_modal_writes_the_predictions_a_local_run_writes(run_ctx, monkeypatch):
    run = run_ctx.root.run("c")
    model = ModelDir(run, 1)
    local = model.predictions()
    on_modal(monkeypatch, lambda settings: ModalExecutor(settings, local=True))
    run.write_spec(run.spec().model_copy(update={"compute": ComputeSpec(shard_size=50)}), "shards of 50")

    out = score_pool(ScoreInput(run="c"), run_ctx)

    remote = model.predictions()
    assert out.n_scored == 240
    for field in ("pool_ids", "pool_pred", "pool_probs", "heldout_ids", "heldout_probs"):
        np.testing.assert_array_equal(getattr(remote, field), getattr(local, field))
    assert remote.model_version == local.model_version


def test_the_training_step_in_modals_local_mode_writes_the_weights_a_local_call_writes(tiny_encoder, tmp_path):
    texts = ["rain tomorrow", "sunny and warm", "storm warning", "clear skies", "heavy showers", "bright day"] * 2
    labels = [0, 1, 0, 1, 0, 1] * 2
    spec = EncoderTrainingSpec(kind="full", epochs=1, batch_size=4, max_length=16, validation_fraction=0)
    here = train_encoder(texts, labels, 2, spec, base=str(tiny_encoder), out=tmp_path / "here", seed=3)

    executor = ModalExecutor(ComputeSpec(backend="modal"), local=True)
    there = backend(executor).train(texts, labels, 2, spec, base=str(tiny_encoder), out=tmp_path / "there", seed=3)

    assert encoder_digest(tmp_path / "there") == encoder_digest(tmp_path / "here")
    assert (there.train_size, there.epochs_run, there.train_loss) == (here.train_size, here.epochs_run, here.train_loss)
    assert not list(tmp_path.glob(".there.*"))  # the staging folder was renamed, not left behind


def test_a_round_that_trains_its_encoder_on_modal_leaves_the_files_a_local_round_leaves(
    scored_run, tmp_path, monkeypatch
):
    """train_glmm with a trained encoder: the training step and the pool's re-embedding both go through Modal."""
    training = EncoderTrainingSpec(kind="full", epochs=1, batch_size=8, max_length=32, validation_fraction=0)
    rounds = {}
    for where in ("local", "modal"):
        shutil.copytree(scored_run, tmp_path / where)
        ctx = ToolContext(root=RunRoot(tmp_path / where), inputs_anywhere=True)
        run = ctx.root.run("c")
        model = run.spec().model.model_copy(update={"encoder_training": training})
        run.write_spec(run.spec().model_copy(update={"model": model}), "train the encoder")
        if where == "modal":
            on_modal(monkeypatch, lambda settings: ModalExecutor(settings, local=True))
        train_glmm(TrainInput(run="c", round=1), ctx)
        rounds[where] = (ModelDir(run, 1).encoder_dir, run.cache_dir)

    assert encoder_digest(rounds["modal"][0]) == encoder_digest(rounds["local"][0])
    assert files_of(rounds["modal"][1]) == files_of(rounds["local"][1])  # the trained encoder's cache too
    assert len(files_of(rounds["local"][1])) >= 2 * 3  # vectors, ids, meta for the pretrained and trained keys


# -- credentials and settings ------------------------------------------------------------------------


def test_the_modal_secret_never_reaches_a_run_file_or_a_log(run_ctx, monkeypatch, caplog):
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-fake-modal-id-0123456789")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", FAKE_SECRET)
    echo = Flaky("score", always=True, message=f"401 from api.modal.com, token_secret={FAKE_SECRET}")
    run = run_ctx.root.run("c")
    on_modal(monkeypatch, lambda settings: LocalExecutor(tasks={**TASKS, "score": echo}))

    with caplog.at_level(logging.DEBUG), pytest.raises(ShardError) as caught:
        score_pool(ScoreInput(run="c"), run_ctx)
    on_modal(monkeypatch, lambda settings: ModalExecutor(settings, local=True))
    with caplog.at_level(logging.DEBUG):
        score_pool(ScoreInput(run="c"), run_ctx)

    assert "401 from api.modal.com" in str(caught.value) and FAKE_SECRET not in str(caught.value)
    assert caplog.records and FAKE_SECRET not in caplog.text
    assert all(FAKE_SECRET.encode() not in data for data in files_of(run.path).values())


def test_the_cloud_is_refused_without_both_tokens_in_the_environment(monkeypatch):
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.setenv("MODAL_TOKEN_SECRET", FAKE_SECRET)

    with pytest.raises(InputError, match=r"MODAL_TOKEN_ID is not set: export MODAL_TOKEN_ID and MODAL_TOKEN_SECRET"):
        ModalExecutor(ComputeSpec(backend="modal"))


def test_the_cli_backend_flag_sends_a_command_to_modal(run_ctx, monkeypatch):
    from typer.testing import CliRunner

    from alloop.cli import app

    monkeypatch.setenv(BACKEND_ENV, "local")  # restored after the test: the flag sets it for the process
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    predictions = ModelDir(run_ctx.root.run("c"), 1).predictions_path.read_bytes()

    done = CliRunner().invoke(app, ["--backend", "modal", "score-pool", "c", "--root", str(run_ctx.root.path)])

    assert done.exit_code == 2
    assert "MODAL_TOKEN_ID and MODAL_TOKEN_SECRET are not set: export" in " ".join(done.output.split())
    assert ModelDir(run_ctx.root.run("c"), 1).predictions_path.read_bytes() == predictions


def test_settings_say_what_to_fix(run_ctx, monkeypatch):
    spec = run_ctx.root.run("c").spec()
    assert backend_module.backend_for(spec) is None  # local by default: the tools' own in-process code
    monkeypatch.setenv(BACKEND_ENV, "gpu-please")
    with pytest.raises(InputError, match=r"\$ALLOOP_BACKEND is 'gpu-please'; use one of local, modal"):
        backend_module.backend_for(spec)
    with pytest.raises(ValueError, match="is not a Modal GPU type"):
        ComputeSpec(gpu="a100 please")


def test_shards_loading_one_encoder_at_once_leave_later_models_whole(tmp_path):
    """Two threads once loaded MiniLM at the same moment, and the next model loaded in that process
    (SmolLM2, whose output layer is tied to its embeddings) came out with an all-zero output layer.
    Loading is serialized now; a fresh process shows it."""
    import subprocess
    import sys

    script = """
import numpy as np, torch
from alloop.tools.compute import LocalExecutor
from alloop.tools.compute.backend import Backend
from alloop.tools.model.encoders import HFEncoder
from alloop.tools.model.generative import load_base
from alloop.tools.run.schema import ComputeSpec
texts = [f"headline {i} " * (i % 7 + 1) for i in range(200)]
encoder = HFEncoder("all-MiniLM-L6-v2", max_length=64)
encoder.encode(texts)  # as the bit-for-bit test does first
Backend(LocalExecutor(workers=2), ComputeSpec(backend="modal", shard_size=50)).embed(encoder, texts)
tokenizer, model = load_base("smollm2")
with torch.no_grad():
    logits = model(**tokenizer("The capital of France is", return_tensors="pt")).logits
print(float(logits.std()))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) > 1.0  # a dead output layer gives 0.0
