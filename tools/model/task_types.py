"""What a head's training targets and score rows are, per task type, and their figures.

Classes (binary, categorical, forced choice, ordinal) train on class indices and score as
probabilities over spec.labels; multi_select trains on an n × k 0/1 matrix and scores one
probability per option; magnitude trains on numbers and scores (mean, sd). forced_choice's
features are its options' embeddings side by side (each option's text is a pool field named as
its label), for the conditional-logit head; its gold figures add the log loss. train_glmm,
score_pool and select_batch go through here, so none of them branches on the task type itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from alloop.tools.errors import InputError
from alloop.tools.model.heads import Design, Head
from alloop.tools.model.metrics import label_metrics
from alloop.tools.model.task_metrics import (
    expected_points,
    multi_select_metrics,
    option_matrix,
    option_text,
    scale_metrics,
)
from alloop.tools.model.uncertainty import MAGNITUDE_COLUMNS
from alloop.tools.run.schema import TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    from alloop.tools.model.encoders import HFEncoder
    from alloop.tools.run.items import ItemTable
    from alloop.tools.run.rundir import RunDir

OPTION_ID = "\x1foption\x1f"
"""Joins an item id and an option label into the embedding cache's id for that option's text."""


def features(
    run: RunDir, spec: TaskSpec, table: ItemTable, encoder: HFEncoder, head: str, progress: Any = None
) -> np.ndarray:
    """The input rows of the named head: the items' embeddings, or for forced choice the options'.

    The conditional logit takes the k option embeddings side by side (n × k·d). The GLMM head's
    binary logit of choosing the second of two options (class index 1) takes their difference
    x₂ − x₁: with its intercept (a position constant) and participant/item intercepts that is
    exactly the two-option conditional logit with random effects, a person's intercept being
    their lean toward the second option. With more options the GLMM head gets them side by side,
    one binary GLMM per option.
    """
    from alloop.tools.base import no_progress
    from alloop.tools.model.encoders import embed_table

    progress = progress or no_progress
    choice = spec.task_type == "forced_choice" and head in ("conditional_logit", "glmm")
    if not choice:
        return embed_table(run, table, spec.text_fields, encoder, progress)
    options = [
        embed_table(run, option_table(table, option, spec.labels), ["text"], encoder, progress)
        for option in spec.labels
    ]
    if head == "glmm" and len(options) == 2:
        return options[1] - options[0]  # P(second) = σ(w·(x₂ − x₁) + b + effects): the mixed choice model
    return np.concatenate(options, axis=1)


def option_table(table: ItemTable, option: str, options: Sequence[str]) -> ItemTable:
    """One option's texts as items of their own (ids `<item>␟option␟<label>`), so the cache keeps them apart."""
    import pyarrow as pa

    from alloop.tools.run.items import ItemTable

    if not table.has(option):
        raise InputError(
            f"{table.source}: forced_choice items need one field per option, named as its label "
            f"({', '.join(options)}), holding that option's text; there is no field {option!r}"
        )
    texts = table.table.column(option).cast(pa.string()).fill_null("")
    ids = [f"{item_id}{OPTION_ID}{option}" for item_id in table.ids]
    return ItemTable(pa.table({"id": pa.array(ids, pa.string()), "text": texts}), table.source)


def targets(spec: TaskSpec, labels: list[Any]) -> np.ndarray:
    """Training targets: class indices, an option matrix (multi_select) or numbers (magnitude)."""
    if spec.task_type == "multi_select":
        return option_matrix(labels, spec.labels)
    if spec.task_type == "magnitude":
        return magnitudes(labels, "training labels")
    index = {label: i for i, label in enumerate(spec.labels)}
    return np.asarray([index[label] for label in labels], dtype=np.int64)


def magnitudes(values: list[Any], where: str) -> np.ndarray:
    """Labels as finite numbers, or an error naming the first that is not one."""
    out = np.empty(len(values))
    for i, value in enumerate(values):
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{where}: magnitude {value!r} is not a number") from None
        if not np.isfinite(out[i]):
            raise InputError(f"{where}: magnitude {value!r} is not a finite number")
    return out


def label_counts(spec: TaskSpec, y: np.ndarray) -> dict[str, int]:
    """Labels per class, or per option for multi_select (answers choosing it); magnitude: the count."""
    if spec.task_type == "magnitude":
        return {"n": len(y)}
    if spec.task_type == "multi_select":
        return {option: int(y[:, j].sum()) for j, option in enumerate(spec.labels)}
    return {label: int((y == i).sum()) for i, label in enumerate(spec.labels)}


def score_columns(spec: TaskSpec) -> list[str]:
    """What each column of a score row holds: the labels, the options, or mean and sd."""
    return list(MAGNITUDE_COLUMNS) if spec.task_type == "magnitude" else list(spec.labels)


def scores(head: Head, X: np.ndarray, design: Design | None) -> np.ndarray:
    """A head's score rows: `predict_scores` where the head has it (magnitude), else probabilities."""
    predict = getattr(head, "predict_scores", None) or head.predict_proba
    return predict(X, design)


def predicted(spec: TaskSpec, rows: np.ndarray) -> np.ndarray:
    """Each score row's prediction as text: a label, an option set 'a|b', or a number."""
    if not len(rows):
        return np.array([], dtype=str)
    if spec.task_type == "multi_select":
        return np.asarray([option_text(r, spec.labels) for r in rows > 0.5], dtype=str)
    if spec.task_type == "magnitude":
        return np.asarray([f"{v:.6g}" for v in rows[:, 0]], dtype=str)
    return np.asarray(spec.labels, dtype=str)[rows.argmax(axis=1)]


def confidence(spec: TaskSpec, rows: np.ndarray) -> np.ndarray | None:
    """How sure each prediction is: P(predicted label or set); magnitude and written answers have none."""
    if spec.task_type in ("magnitude", "free_text", "cloze"):
        return None
    if spec.task_type == "multi_select":
        return np.maximum(rows, 1 - rows).prod(axis=1)
    return rows.max(axis=1)


def gold_figures(spec: TaskSpec, gold: list[Any], rows: np.ndarray, prefix: str = "gold") -> dict[str, Any]:
    """`<prefix>_*` figures of score rows against true labels, as the task type measures them."""
    if spec.task_type == "multi_select":
        return multi_select_metrics(option_matrix(gold, spec.labels), (rows > 0.5).astype(int), spec.labels, prefix)
    if spec.task_type == "magnitude":
        return {f"{prefix}_n": len(gold)} | scale_metrics(magnitudes(gold, "held-out gold"), rows[:, 0], prefix)
    ordinal = spec.task_type == "ordinal_scale"
    if spec.task_type == "forced_choice":
        return label_metrics([str(v) for v in gold], list(predicted(spec, rows)), spec.labels, prefix=prefix) | {
            f"{prefix}_log_loss": choice_log_loss(spec, gold, rows)
        }
    return label_metrics(
        [str(v) for v in gold],
        list(predicted(spec, rows)),
        spec.labels,
        ordinal=ordinal,
        prefix=prefix,
        expected=expected_points(rows) if ordinal else None,
    )


def choice_log_loss(spec: TaskSpec, gold: list[Any], rows: np.ndarray) -> float:
    """Mean −log P(the chosen option), by scikit-learn (probabilities clipped as it clips them)."""
    from sklearn.metrics import log_loss

    index = {label: i for i, label in enumerate(spec.labels)}
    probs = np.asarray(rows, dtype=np.float64)
    return float(
        log_loss(
            [index[str(v)] for v in gold], probs / probs.sum(axis=1, keepdims=True), labels=range(len(spec.labels))
        )
    )


def cv_figures(spec: TaskSpec, head: Head, y: np.ndarray) -> dict[str, Any]:
    """cv_* figures from the head's out-of-fold predictions (none when the head gives none)."""
    oof = getattr(head, "oof_predictions_", None)
    if oof is None:
        return {}
    if spec.task_type == "multi_select":
        figures = multi_select_metrics(y, oof, spec.labels, "cv")
    elif spec.task_type == "magnitude":
        figures = scale_metrics(y, oof, "cv")
    else:
        return {}  # class heads: model/training.py's cross_validated
    return {k: None if v is None else round(v, 6) for k, v in figures.items() if k not in ("cv_n", "cv_f1_by_class")}
