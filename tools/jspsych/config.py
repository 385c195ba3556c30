"""ExperimentConfig: everything a researcher sets about a jsPsych study, validated in one place.

The builder turns a TaskSpec, an item set and this config into a study folder; the browser
code reads the same config back from `data/config.json`. No text here is HTML: every one a
participant sees (instructions, consent, prompts, labels, options, button texts, messages) is shown
literally. The browser escapes the whole config once on its way into the timeline (alloop-text.js),
and index.html escapes the title; only blank lines format a text (they make paragraphs).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PROLIFIC_COMPLETE_URL = "https://app.prolific.com/submissions/complete?cc="
"""Prolific's completion URL; the completion code is appended."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- trials ----------------------------------------------------------------------------------


class TrialConfig(_Strict):
    """How a trial asks for the response; which fields apply depends on the task type."""

    prompt: str = Field("", description="Question shown under each item (text).")
    widget: str | None = Field(
        None,
        description=(
            "ordinal_scale: likert|slider; binary: buttons|keys; forced_choice: buttons; "
            "categorical: buttons|multiple_choice; multi_select: checkboxes; "
            "magnitude: slider|number|spr; free_text: text; cloze: blanks. Default: the first."
        ),
    )
    keys: list[str] = Field(
        default_factory=lambda: ["f", "j"],
        description="binary with widget=keys: one key per label, in label order.",
    )
    choices_field: str | None = Field(
        None, description="forced_choice/categorical: an item field holding that item's options (a list)."
    )
    min: float = Field(0, description="magnitude slider/number: lowest value.")
    max: float = Field(100, description="magnitude slider/number: highest value.")
    step: float = Field(1, gt=0, description="magnitude slider/number: step.")
    slider_labels: list[str] = Field(default_factory=list, description="Labels under a slider.")
    spr_summary: Literal["mean", "total"] = Field(
        "mean", description="magnitude with widget=spr: the label is the mean or total reading time (ms)."
    )
    rows: int = Field(3, ge=1, le=40, description="free_text: rows of the text box.")
    blank_marker: str = Field(
        "___", min_length=1, description="cloze: the marker in item text that stands for a blank."
    )
    scale_ends: list[str] = Field(
        default_factory=list, description="likert: two texts for the scale's ends, e.g. ['unnatural', 'natural']."
    )
    fixation_ms: int = Field(0, ge=0, le=10000, description="A fixation cross before each item, ms (0: none).")
    iti_ms: int = Field(0, ge=0, le=10000, description="A blank pause after each trial, ms.")
    button_label: str = "Continue"
    required: bool = True

    @field_validator("scale_ends")
    @classmethod
    def _two_ends(cls, ends: list[str]) -> list[str]:
        if ends and len(ends) != 2:
            raise ValueError("scale_ends takes two texts (left end, right end) or none")
        return ends


WIDGETS: dict[str, tuple[str, ...]] = {
    "ordinal_scale": ("likert", "slider"),
    "binary": ("buttons", "keys"),
    "forced_choice": ("buttons",),
    "categorical": ("buttons", "multiple_choice"),
    "multi_select": ("checkboxes",),
    "magnitude": ("slider", "number", "spr"),
    "free_text": ("text",),
    "cloze": ("blanks",),
}


# -- lists -----------------------------------------------------------------------------------


class ListConfig(_Strict):
    """How items become lists.

    - `all`: one list with every item (everyone judges everything);
    - `split`: `n_lists` disjoint lists, items dealt round-robin after a seeded shuffle
      (balanced by `condition_field` where given);
    - `latin_square`: items are variants of `group_field` × `condition_field`; list k holds
      each group once, in condition (g + k) mod C, so there are C lists.
    """

    mode: Literal["all", "split", "latin_square"] = "all"
    n_lists: int = Field(1, ge=1)
    group_field: str | None = None
    condition_field: str | None = None

    @model_validator(mode="after")
    def _fields_fit_mode(self) -> ListConfig:
        if self.mode == "latin_square" and not (self.group_field and self.condition_field):
            raise ValueError("lists.mode 'latin_square' needs lists.group_field and lists.condition_field")
        if self.mode == "all" and self.n_lists != 1:
            raise ValueError("lists.mode 'all' makes one list: drop n_lists or use mode 'split'")
        return self


# -- distribution strategies -----------------------------------------------------------------


class _Strategy(_Strict):
    pass


class RandomStrategy(_Strategy):
    """Each participant gets a list drawn uniformly at random."""

    strategy: Literal["random"] = "random"


class SequentialStrategy(_Strategy):
    """Participants get lists 0, 1, 2, ... in the order they start, wrapping around."""

    strategy: Literal["sequential"] = "sequential"


class BalancedStrategy(_Strategy):
    """The list with the fewest participants so far (ties: the lowest index)."""

    strategy: Literal["balanced"] = "balanced"
    count: Literal["assigned", "completed"] = Field(
        "assigned", description="Balance on starts, or on completions (abandoned runs then free their slot)."
    )


class LatinSquareStrategy(_Strategy):
    """Rows of the Latin square in cyclic order; a new cycle starts only when a cycle is full.

    Needs lists built with lists.mode = 'latin_square'."""

    strategy: Literal["latin_square"] = "latin_square"


class StratifiedStrategy(_Strategy):
    """Balanced within each stratum; the stratum is a URL query parameter of the participant's link."""

    strategy: Literal["stratified"] = "stratified"
    stratum_param: str = Field(min_length=1, description="URL query parameter naming the stratum.")
    strata: list[str] = Field(default_factory=list, description="Allowed strata; empty allows any.")


class WeightedRandomStrategy(_Strategy):
    """A list drawn at random with the given weights (one per list)."""

    strategy: Literal["weighted_random"] = "weighted_random"
    weights: list[float] = Field(min_length=1)

    @field_validator("weights")
    @classmethod
    def _positive(cls, weights: list[float]) -> list[float]:
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        return weights


class QuotaStrategy(_Strategy):
    """Each list takes at most its quota of participants; when all are full the study is full."""

    strategy: Literal["quota_based"] = "quota_based"
    quotas: list[int] = Field(min_length=1)

    @field_validator("quotas")
    @classmethod
    def _positive(cls, quotas: list[int]) -> list[int]:
        if any(q < 0 for q in quotas) or sum(quotas) == 0:
            raise ValueError("quotas must be non-negative with a positive sum")
        return quotas


class MetadataStrategy(_Strategy):
    """The list follows a URL query parameter of the participant's link through a mapping."""

    strategy: Literal["metadata_based"] = "metadata_based"
    param: str = Field(min_length=1, description="URL query parameter to read.")
    mapping: dict[str, int] = Field(min_length=1, description="Parameter value → list index.")
    default: int | None = Field(None, description="List for values not in the mapping; none: an error page.")


Distribution = Annotated[
    RandomStrategy
    | SequentialStrategy
    | BalancedStrategy
    | LatinSquareStrategy
    | StratifiedStrategy
    | WeightedRandomStrategy
    | QuotaStrategy
    | MetadataStrategy,
    Field(discriminator="strategy"),
]
STRATEGIES = (
    "random",
    "sequential",
    "balanced",
    "latin_square",
    "stratified",
    "weighted_random",
    "quota_based",
    "metadata_based",
)


# -- the rest of the study -------------------------------------------------------------------


class DemographicQuestion(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    prompt: str = Field(min_length=1)
    type: Literal["text", "number", "choice"] = "text"
    options: list[str] = Field(default_factory=list)
    required: bool = False

    @model_validator(mode="after")
    def _choice_has_options(self) -> DemographicQuestion:
        if self.type == "choice" and len(self.options) < 2:
            raise ValueError(f"demographic question {self.name!r} of type 'choice' needs two or more options")
        return self


class ExtraTrial(_Strict):
    """A practice item or an attention check: item fields (at least the text fields) and,
    for a check, the response that passes.

    Practice feedback says "right" or "wrong" only for an item given `expected`, so judgment
    tasks (no right answers) leave it out and may give an `explanation` instead."""

    fields: dict[str, Any] = Field(description="Item fields, as a pool row would have them.")
    expected: Any = Field(
        None, description="Check: the label that passes. Practice: its right answer, only if it has one."
    )
    explanation: str = Field("", description="Practice: text shown after the answer.")


class OrderConfig(_Strict):
    """Seeded per-participant order of the main trials under constraints."""

    randomize: bool = True
    no_adjacent_field: str | None = Field(
        None, description="Item field (e.g. the condition) whose value may not repeat more than max_run times in a row."
    )
    max_run: int = Field(1, ge=1)


class ExperimentConfig(_Strict):
    """A jsPsych study: its pages, its trials, its lists and how lists are handed out."""

    title: str = Field("Judgment study", min_length=1, max_length=255)
    description: str = ""
    instructions: list[str] = Field(
        default_factory=lambda: ["Thank you for taking part. Read each item and give your judgment."],
        description="Instruction pages (text; blank lines make paragraphs).",
    )
    consent: str | None = Field(None, description="Consent text; the study ends for a participant who declines.")
    consent_agree: str = "I agree"
    consent_decline: str = "I do not agree"
    demographics: list[DemographicQuestion] = Field(default_factory=list)
    practice: list[ExtraTrial] = Field(default_factory=list)
    attention_checks: list[ExtraTrial] = Field(default_factory=list)
    trial: TrialConfig = Field(default_factory=TrialConfig)
    order: OrderConfig = Field(default_factory=OrderConfig)
    lists: ListConfig = Field(default_factory=ListConfig)
    distribution: Distribution = Field(default_factory=BalancedStrategy)
    max_participants: int | None = Field(
        None, ge=1, description="Participants at most; later ones see a 'study full' page."
    )
    progress_bar: bool = True
    min_trial_ms: int = Field(0, ge=0, le=60000, description="No response is taken before this many ms.")
    completion_message: str = Field(
        "Thank you! Your responses have been saved.",
        description="The last page under JATOS; a local preview says nothing was saved and offers a download.",
    )
    prolific_completion_code: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    debug_list: int | None = Field(None, ge=0, description="Pin every participant to this list (debugging only).")
    allow_debug_param: bool = Field(
        False, description="Let a `?alloop_debug_list=K` URL parameter pin a list (never for live studies)."
    )
    jspsych_source: Literal["local", "cdn"] = Field(
        "local", description="Copy jsPsych into the study (runs offline) or link the jsDelivr CDN."
    )
    device_check: bool = Field(False, description="Turn away phones and small screens (< 700 px or touch only).")
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        if self.distribution.strategy == "latin_square" and self.lists.mode != "latin_square":
            raise ValueError(
                "distribution.strategy 'latin_square' needs lists.mode 'latin_square' "
                "(with lists.group_field and lists.condition_field)"
            )
        return self

    @property
    def completion_url(self) -> str | None:
        if self.prolific_completion_code:
            return PROLIFIC_COMPLETE_URL + self.prolific_completion_code
        return None
