"""A free_text or cloze round: train the LM's adapters, and score items by writing their answers.

train_glmm and score_pool call these instead of the encoder-and-head path: the round's adapters
go to models/round_XX/lm/ (staged, then published, as trained encoder weights are), the card
says which LM, and predictions.npz holds each item's answer with its (disagreement, token
entropy) row, which select_batch and check_convergence read as they read class probabilities.
"""

from __future__ import annotations

import shutil
from typing import Any

import numpy as np

from alloop.tools.base import ProgressFn
from alloop.tools.errors import InputError, StateError
from alloop.tools.model.generative import (
    SCORE_COLUMNS,
    LoRAConfig,
    answer,
    lm_name,
    load_adapted,
    load_base,
    prompt_of,
    text_metrics,
    train_lora,
)
from alloop.tools.run.items import ItemTable
from alloop.tools.run.labels import vote_text
from alloop.tools.run.models import ModelDir, Predictions
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import EncoderTrainingSpec, TaskSpec

GENERATIVE_TASKS = frozenset({"free_text", "cloze"})


def config_for(spec: TaskSpec) -> LoRAConfig:
    """The LoRA settings: spec.model.encoder_training when its kind is 'lora', else LoRAConfig's defaults.

    For a free_text or cloze run the LM is the model that learns, so the encoder's training block
    says how: its lora_rank, lora_alpha, lora_dropout, lora_target_modules, epochs, learning_rate,
    batch_size and max_length. Target modules left at the block's default (query, value: BERT's
    names for the attention's query and value projections) mean the same projections of the LM,
    by peft's per-architecture names (Llama: q_proj, v_proj); the card records those attached.
    """
    training = spec.model.encoder_training
    if training.kind == "frozen":
        return LoRAConfig(seed=spec.selection.seed)
    if training.kind != "lora":
        raise InputError(
            f"a {spec.task_type} run trains its LM with LoRA adapters; encoder_training kind {training.kind!r} "
            "does not apply: use kind 'lora' (with its lora_* settings) or leave it 'frozen' for the defaults"
        )
    default_targets = EncoderTrainingSpec().lora_target_modules
    return LoRAConfig(
        epochs=training.epochs,
        learning_rate=training.learning_rate,
        batch_size=training.batch_size,
        rank=training.lora_rank,
        alpha=training.lora_alpha,
        dropout=training.lora_dropout,
        target_modules=None if training.lora_target_modules == default_targets else list(training.lora_target_modules),
        max_length=training.max_length,
        seed=spec.selection.seed,
    )


def prompts(table: ItemTable, spec: TaskSpec) -> list[str]:
    return [prompt_of(text) for text in table.texts(spec.text_fields)]


def train_round(
    run: RunDir,
    spec: TaskSpec,
    head: str,
    item_ids: list[str],
    labels: list[Any],
    model: ModelDir,
    progress: ProgressFn,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit the round's adapters on every (prompt, answer) pair, publish them; the head card and gold figures."""
    name = lm_name(head)
    config = config_for(spec)
    pool = run.pool()
    texts = prompts(pool.take(pool.positions(item_ids)), spec)
    progress(0, 1, f"LoRA on {name}")
    tokenizer, base = load_base(name)
    staging = model.encoder_staging()
    try:
        fitted = train_lora(tokenizer, base, texts, [vote_text(v) for v in labels], config, staging)
        heldout = run.heldout()
        gold: dict[str, Any] = {}
        if heldout is not None:
            _, adapted = load_adapted(name, staging)
            written, _ = answer(tokenizer, adapted, prompts(heldout, spec), config)
            gold = text_metrics(heldout.column("label"), written)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # a failed or killed training leaves nothing
        raise
    model.drop_predictions()
    model.publish_lm(staging)
    progress(1, 1, f"LoRA on {name}")
    card = {
        "head": "lora_lm",
        "family": "causal LM with LoRA adapters, trained on (prompt, answer) pairs",
        "lm": name,
        "weights": "lm/ (adapter safetensors)",
        "uncertainty": f"disagreement among 1 greedy + {config.samples} sampled answers; mean token entropy",
    } | fitted
    return card, gold


def score_round(run: RunDir, spec: TaskSpec, model: ModelDir, progress: ProgressFn) -> Predictions:
    """Every pool and held-out item's answer by the round's adapted LM, with its score row."""
    if not model.lm_dir.is_dir():
        raise StateError(f"{model.lm_dir} is missing: retrain round {model.round} with train_glmm")
    card = model.card()
    config = config_for(spec)
    tokenizer, lm = load_adapted(card["head"]["lm"], model.lm_dir)
    pool, heldout = run.pool(), run.heldout()
    progress(0, len(pool), "writing answers")
    pool_text, pool_rows = answer(tokenizer, lm, prompts(pool, spec), config)
    progress(len(pool), len(pool), "writing answers")
    held_text, held_rows = answer(tokenizer, lm, prompts(heldout, spec), config) if heldout is not None else ([], None)
    return Predictions(
        pool_ids=np.asarray(pool.ids, dtype=str),
        pool_pred=np.asarray(pool_text, dtype=str),
        heldout_ids=np.asarray(heldout.ids if heldout is not None else [], dtype=str),
        heldout_pred=np.asarray(held_text, dtype=str),
        labels=list(SCORE_COLUMNS),
        model_version=card["model_version"],
        pool_probs=pool_rows.astype(np.float32),
        heldout_probs=(held_rows if held_rows is not None else np.zeros((0, 2))).astype(np.float32),
    )
