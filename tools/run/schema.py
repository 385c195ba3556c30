"""The data contracts of a run: each file's row, defined once and used everywhere.

spec.json is a `TaskSpec`; a line of labels.jsonl or annotation_round_XX.jsonl is a
`LabelEvent`; a line of selection_round_XX.jsonl is a `SelectionRow`; a row of results.tsv
is a `ResultRow`. Readers validate with these models, writers serialize with them.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TaskType = Literal[
    "binary",
    "categorical",
    "forced_choice",
    "ordinal_scale",
    "multi_select",
    "magnitude",
    "free_text",
    "cloze",
]
CLASSIFICATION_TASKS: frozenset[str] = frozenset({"binary", "categorical", "forced_choice"})
LABELED_TASKS: frozenset[str] = frozenset({"binary", "categorical", "forced_choice", "ordinal_scale", "multi_select"})

LabelSource = Literal["seed", "human", "import", "judge", "simulated"]
"""Where a label came from. `judge` never counts as human; `simulated` answers from gold."""

Destination = Literal["file", "argilla", "jatos", "simulated"]
EffectsMode = Literal["fixed", "random_intercepts", "random_slopes"]
TrainingStrategy = Literal["retrain", "fine_tune", "new_only", "hybrid"]
DecisionSource = Literal["cv", "gold"]
"""Where the figures that decisions read (hybrid switch, plateau rule) come from: out-of-fold
predictions on the labeled items, or the held-out gold set, which is also what is reported."""
JudgeUse = Literal["evaluation", "prioritization", "adjudication", "pseudo_labeling"]
JudgeBackendName = Literal["anthropic", "sampling", "local"]
LabeledState = Literal["none", "partial", "full"]
PredictionUnit = Literal["item", "response"]
Metric = Literal["macro_f1", "accuracy", "mae", "spearman", "rmse"]
"""The figure a spec optimises; each has a `gold_<metric>` column in results.tsv."""
METRIC_COLUMNS: dict[str, str] = {metric: f"gold_{metric}" for metric in get_args(Metric)}
CV_METRIC_COLUMNS: dict[str, str] = {metric: f"cv_{metric}" for metric in get_args(Metric)}
SCALE_METRICS: frozenset[str] = frozenset({"mae", "rmse", "spearman"})
SCALE_TASKS: frozenset[str] = frozenset({"ordinal_scale", "magnitude"})
AgreementMetric = Literal["krippendorff_alpha", "fleiss_kappa", "cohens_kappa", "percent"]


def utc_now() -> str:
    """An ISO-8601 UTC timestamp, the one time format of every run file."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BudgetSpec(_Strict):
    """How much annotation the run may spend."""

    batch_size: int = Field(20, ge=1, description="Items selected per round.")
    max_rounds: int | None = Field(10, ge=1, description="Active-learning rounds at most.")
    max_examples: int | None = Field(None, ge=1, description="Human labels at most.")
    max_hours: float | None = Field(None, gt=0, description="Wall-clock hours at most.")
    max_cost: float | None = Field(None, gt=0, description="Money at most (same unit as cost).")
    cost_per_label: float | None = Field(None, ge=0, description="Cost of one human label.")


class StoppingSpec(_Strict):
    """Stopping rules; each is off when its field is None."""

    plateau_epsilon: float | None = Field(0.005, gt=0, description="Stop when |ΔF1| < ε ...")
    plateau_rounds: int = Field(3, ge=1, description="... for this many rounds in a row.")
    stability_kappa: float | None = Field(
        None, gt=0, le=1, description="Stop when κ between successive pool predictions ≥ this"
    )
    stability_rounds: int = Field(3, ge=1, description="... for this many rounds in a row.")
    agreement_threshold: float | None = Field(
        None, description="Stop when model–human agreement reaches this absolute value."
    )
    agreement_margin: float | None = Field(
        None, ge=0, description="Or when it reaches the human–human ceiling minus this margin."
    )
    agreement_metric: AgreementMetric = "krippendorff_alpha"
    agreement_min_items: int = Field(
        20, ge=1, description="Held-out items labeled by two or more people before agreement may stop the run."
    )
    agreement_use_lower_bound: bool = Field(
        False, description="Compare the interval's lower bound, not the point estimate, with the threshold."
    )


class JudgeSpec(_Strict):
    """Whether an LLM judge may take part, and for what. A judge is never gold."""

    allowed: bool = False
    uses: list[JudgeUse] = Field(default_factory=list)
    backend: JudgeBackendName | None = None
    model: str | None = None
    budget_usd: float | None = Field(None, ge=0)
    pseudo_labels_in_training: bool = False

    @model_validator(mode="after")
    def _uses_need_permission(self) -> JudgeSpec:
        if self.uses and not self.allowed:
            raise ValueError("judge.uses is set but judge.allowed is false: allow the judge or drop the uses")
        if self.pseudo_labels_in_training and "pseudo_labeling" not in self.uses:
            raise ValueError("pseudo_labels_in_training needs 'pseudo_labeling' in judge.uses")
        return self


EncoderTrainingKind = Literal["frozen", "full", "lora", "contrastive"]


class EncoderTrainingSpec(_Strict):
    """How the encoder itself learns from the labels; `frozen` keeps the pretrained weights.

    full trains every weight, lora trains low-rank adapters (peft), contrastive follows SetFit
    (contrastive pairs, then the head). Defaults suit a few hundred labels on a CPU.
    """

    kind: EncoderTrainingKind = "frozen"
    epochs: int = Field(4, ge=1, le=100, description="Most passes over the training labels.")
    fine_tune_epochs: int = Field(
        1,
        ge=1,
        le=100,
        description="Most passes when a round continues the previous round's encoder (fine_tune, new_only, "
        "hybrid after its switch): a warm start needs fewer than a fresh one.",
    )
    learning_rate: float = Field(5e-5, gt=0, le=1)
    batch_size: int = Field(16, ge=1, le=1024)
    max_length: int = Field(128, ge=8, le=8192, description="Token limit while training.")
    validation_fraction: float = Field(
        0.2, ge=0, lt=0.9, description="Share of the labeled items held back for early stopping (never gold)."
    )
    patience: int = Field(1, ge=0, description="Epochs without a better validation macro-F1 before stopping.")
    lora_rank: int = Field(8, ge=1, le=512)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    lora_target_modules: list[str] = Field(
        default_factory=lambda: ["query", "value"], description="Module names the adapters attach to."
    )
    contrastive_pairs: int = Field(20, ge=1, le=1000, description="Contrastive pairs per labeled item (SetFit).")


class ModelSpec(_Strict):
    """The round's model: an encoder and a head, with its effects and training strategy."""

    encoder: str = Field("all-MiniLM-L6-v2", description="HF model name or local path.")
    head: str = Field("logistic", description="Head family from the heads registry.")
    effects: EffectsMode = "fixed"
    predictors: list[str] = Field(default_factory=list, description="Design predictors (pool fields).")
    training_strategy: TrainingStrategy = "retrain"
    hybrid_epsilon: float = Field(0.01, gt=0, description="Hybrid: fine-tune once ΔF1 < ε ...")
    hybrid_rounds: int = Field(2, ge=1, description="... for this many rounds.")
    hybrid_kappa: float | None = Field(
        None, gt=0, le=1, description="Hybrid: instead of ΔF1, switch once κ of successive pool predictions ≥ this."
    )
    decision_source: DecisionSource = Field(
        "cv",
        description="What the hybrid switch and the plateau rule read: cv (out-of-fold on the labeled items) "
        "or gold (the held-out set, also used for reporting).",
    )
    max_length: int = Field(256, ge=8, le=8192, description="Encoder token limit.")
    encoder_training: EncoderTrainingSpec = Field(default_factory=EncoderTrainingSpec)


class SelectionSpec(_Strict):
    """Defaults for select_batch; a tool argument overrides them for one round."""

    strategy: str = Field(
        "typiclust",
        description="Default from benchmarks/label_efficiency.py: typiclust, the one strategy ≥ random on all "
        "3 data sets.",
    )
    near_duplicate_threshold: float = Field(
        0.98, gt=0, le=1, description="Cosine similarity at or above which two items are duplicates."
    )
    hybrid_factor: int = Field(
        10, ge=1, description="Hybrid, cluster_margin: diversify among factor × batch uncertain items."
    )
    class_targets: dict[str, float] | None = Field(
        None,
        description="class_balance: share of the batch per label, every label named (normalized); none: equal shares.",
    )
    seed: int = 0

    @field_validator("class_targets")
    @classmethod
    def _shares(cls, targets: dict[str, float] | None) -> dict[str, float] | None:
        if targets is not None and (any(not v >= 0 for v in targets.values()) or not sum(targets.values()) > 0):
            raise ValueError(f"class_targets must be shares ≥ 0 with a positive sum, got {targets}")
        return targets


TrackingMode = Literal["off", "offline", "online"]
"""Where a run's rounds are mirrored in Weights & Biases: nowhere, files in the run only, or W&B's servers."""


class TrackingSpec(_Strict):
    """Experiment tracking (W&B), off unless a person turns it on; the API key is read from $WANDB_API_KEY only."""

    wandb: TrackingMode = Field(
        "off", description="off; offline (files under <run>/wandb/ only); online (uploads, needs $WANDB_API_KEY)."
    )
    project: str = Field("alloop", description="W&B project.")
    entity: str | None = Field(None, description="W&B user or team; none: the key's own.")

    @field_validator("project", "entity")
    @classmethod
    def _wandb_name(cls, name: str | None) -> str | None:
        if name is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", name):
            raise ValueError(f"{name!r} is not a W&B name: use 1 to 128 letters, digits, '.', '_' or '-'")
        return name


ComputeBackend = Literal["local", "modal"]
"""Where embedding, encoder training and pool scoring run: in this process, or on Modal's GPUs."""


class ComputeSpec(_Strict):
    """Where the heavy steps run; Modal shards the pool, its tokens read from the environment only.

    The same functions run either way and the run directory ends up the same; $ALLOOP_BACKEND overrides `backend`.
    """

    backend: ComputeBackend = Field("local", description="local (this process) or modal (sharded over the pool).")
    gpu: str | None = Field("T4", description="Modal GPU type (T4, L4, A10G, A100, H100, ... or 'H100:2'); null: CPU.")
    shard_size: int = Field(
        4096, ge=1, description="Pool items per shard (embedding rounds it to the encoder's batch)."
    )
    timeout_s: int = Field(900, ge=10, le=86_400, description="Seconds one shard may run before it counts as failed.")
    retries: int = Field(2, ge=0, le=10, description="Retries of a failed or timed-out shard before the step fails.")

    @field_validator("gpu")
    @classmethod
    def _gpu_name(cls, gpu: str | None) -> str | None:
        if gpu is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,31}(:[1-8])?", gpu):
            raise ValueError(f"{gpu!r} is not a Modal GPU type: give a name such as 'T4', 'A100-80GB' or 'H100:2'")
        return gpu


class TaskSpec(_Strict):
    """spec.json: what the run is about. Changes bump `spec_version` and are logged."""

    spec_version: int = Field(1, ge=1)
    run: str
    task_type: TaskType
    labels: list[str] = Field(
        default_factory=list,
        description="Label schema: classes, options or ordinal scale points, in order.",
    )
    data_source: str = Field("", description="Where the pool came from (path, corpus, query).")
    pool_file: str = Field("", description="The pool file the run was made from, as given.")
    labeled_state: LabeledState = "none"
    prediction_unit: PredictionUnit = Field("item", description="Predict per item, or per participant response (GLMM).")
    text_fields: list[str] = Field(default_factory=lambda: ["text"], min_length=1)
    participant_field: str = "annotator"
    metric: Metric = "macro_f1"
    heldout: str = Field("heldout file", description="How the held-out set was made.")
    destination: Destination = "file"
    annotators_per_item: int = Field(1, ge=1, description="Overlap: people per item, for agreement.")
    argilla_suggestions: bool = Field(False, description="Argilla: pre-fill the model's guess (it anchors annotators).")
    guidelines: str = ""
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    stopping: StoppingSpec = Field(default_factory=StoppingSpec)
    judge: JudgeSpec = Field(default_factory=JudgeSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    compute: ComputeSpec = Field(default_factory=ComputeSpec)
    answered: list[str] = Field(
        default_factory=list, description="Interview questions a person answered (the rest are defaults)."
    )
    created: str = Field(default_factory=utc_now)
    updated: str = Field(default_factory=utc_now)

    @field_validator("labels")
    @classmethod
    def _labels_unique(cls, labels: list[str]) -> list[str]:
        cleaned = [label.strip() for label in labels]
        if any(not label for label in cleaned):
            raise ValueError("labels must be non-empty strings")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError(f"labels must be unique, got {cleaned}")
        return cleaned

    @model_validator(mode="after")
    def _labels_fit_task(self) -> TaskSpec:
        if self.task_type in LABELED_TASKS and len(self.labels) < 2:
            raise ValueError(f"task_type {self.task_type!r} needs at least two labels, got {self.labels}")
        if self.task_type == "binary" and len(self.labels) != 2:
            raise ValueError(f"task_type 'binary' needs exactly two labels, got {self.labels}")
        if self.metric in SCALE_METRICS and self.task_type not in SCALE_TASKS:
            raise ValueError(
                f"metric {self.metric!r} measures distances on a scale; task_type {self.task_type!r} has none: "
                "use macro_f1 or accuracy"
            )
        return self


class LabelEvent(_Strict):
    """One line of labels.jsonl: a label given once, never rewritten.

    A correction is a new event with `supersedes` set; a discarded record has
    `status="discarded"` and no label.
    """

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    item_id: str
    label: str | float | list[str] | None
    source: LabelSource
    annotator: str = Field(description="Who gave it: a person, participant, 'simulator' or a judge model.")
    round: int = Field(ge=0)
    time: str = Field(default_factory=utc_now)
    destination: str = "file"
    status: Literal["submitted", "discarded"] = "submitted"
    external_id: str | None = Field(
        None, description="The destination's id for this answer; a second pull of it adds nothing."
    )
    supersedes: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _label_matches_status(self) -> LabelEvent:
        if self.status == "submitted" and self.label is None:
            raise ValueError("a submitted label event needs a label")
        return self


class SelectionRow(_Strict):
    """One line of selection_round_XX.jsonl: an item chosen for annotation, and why."""

    round: int = Field(ge=0)
    rank: int = Field(ge=1)
    item_id: str
    strategy: str
    reason: str
    scores: dict[str, float] = Field(default_factory=dict)
    prediction: str | None = None
    confidence: float | None = None
    model_version: str | None = None
    seed: int = 0


class ResultRow(_Strict):
    """One row of results.tsv. `gold_*` read human gold only; `judge_*` read judge output only."""

    round: int
    model_version: str
    strategy: str = ""
    training_strategy: str = ""
    n_labeled: int = 0
    n_pool: int = 0
    n_batch: int = 0
    n_pseudo_labeled: int = 0
    train_seconds: float | None = None
    score_seconds: float | None = None
    select_seconds: float | None = None
    gold_n: int | None = None
    gold_accuracy: float | None = None
    gold_macro_f1: float | None = None
    gold_f1_by_class: str = Field("", description="JSON object: label → F1 on held-out gold.")
    gold_mae: float | None = None
    gold_rmse: float | None = None
    gold_spearman: float | None = None
    gold_r2: float | None = Field(None, description="magnitude: R² of the predicted means.")
    gold_micro_f1: float | None = Field(None, description="multi_select: F1 over every (item, option) decision.")
    gold_hamming_loss: float | None = Field(None, description="multi_select: share of (item, option) decisions wrong.")
    gold_jaccard: float | None = Field(None, description="multi_select: mean Jaccard index of the option sets.")
    gold_log_loss: float | None = Field(None, description="forced_choice: mean −log P(the chosen option).")
    gold_exact_match: float | None = Field(None, description="free_text/cloze: share of normalized answers exact.")
    gold_token_f1: float | None = Field(None, description="free_text/cloze: mean SQuAD token F1.")
    gold_chrf: float | None = Field(None, description="free_text/cloze: corpus chrF (when sacrebleu is installed).")
    cv_accuracy: float | None = Field(None, description="cv_*: out-of-fold on the labeled items, never gold.")
    cv_macro_f1: float | None = None
    cv_mae: float | None = None
    cv_rmse: float | None = None
    cv_spearman: float | None = None
    cv_r2: float | None = None
    cv_micro_f1: float | None = None
    cv_hamming_loss: float | None = None
    cv_jaccard: float | None = None
    decision_source: str = Field("", description="cv or gold: which figures this round's decisions read.")
    encoder_training: str = Field("", description="frozen, full, lora or contrastive: how the encoder learned.")
    final: bool = Field(False, description="The final model: trained once on every label (PRepAL).")
    judge_n: int | None = None
    judge_agreement_with_gold: float | None = None
    judge_accuracy: float | None = None
    agreement_model_human: float | None = None
    agreement_human_ceiling: float | None = None
    stop_decision: str = ""
    stop_reasons: str = ""
    time: str = Field(default_factory=utc_now)

    @classmethod
    def columns(cls) -> list[str]:
        return list(cls.model_fields)


SUMMARY_COLUMNS = [
    "round",
    "model_version",
    "n_labeled",
    "n_batch",
    "strategy",
    "training_strategy",
    "gold_accuracy",
    "gold_macro_f1",
    "gold_mae",
    "judge_accuracy",
    "agreement_model_human",
    "agreement_human_ceiling",
    "stop_decision",
    "train_seconds",
    "score_seconds",
    "select_seconds",
]
"""The results.tsv columns a round table shows (the report, the loop's output)."""
