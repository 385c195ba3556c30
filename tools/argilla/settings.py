"""The run's Argilla dataset as spec.json asks for it: fields, the question, metadata, guidelines.

One Argilla dataset per run. Its settings come from spec.json: one text field per
`spec.text_fields`, one question named `label` whose kind fits the task type, the guidelines,
metadata for what the selection said about each item, and task distribution with
`min_submitted = spec.annotators_per_item` so agreement can be measured. The plan and the
comparison with a dataset on the server are pure; `ensure_dataset` makes or checks the dataset.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alloop.tools.errors import AlloopError, InputError, ServiceError, StateError
from alloop.tools.run.schema import TaskSpec
from alloop.tools.secrets import scrub

if TYPE_CHECKING:  # pragma: no cover
    from alloop.tools.argilla.client import Argilla, Target

QUESTION = "label"

_NAME_OK = re.compile(r"^[a-z0-9_-]+$")

# Metadata properties every record carries: (name, kind, visible to annotators). The model's
# view of an item and why it was chosen are hidden from annotators; owners and admins see them,
# and alloop's item id, which Argilla's record UUID does not tell them.
BASE_METADATA: tuple[tuple[str, str, bool], ...] = (
    ("item_id", "terms", False),
    ("round", "integer", True),
    ("rank", "integer", False),
    ("strategy", "terms", False),
    ("reason", "terms", False),
    ("prediction", "terms", False),
    ("confidence", "float", False),
    ("model_version", "terms", False),
)
SCORE_PREFIX = "score_"


# --------------------------------------------------------------------------------------------
# The plan: what the dataset must look like for a spec (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldPlan:
    name: str  # the Argilla field name
    title: str
    source: str  # the pool column


@dataclass(frozen=True)
class QuestionPlan:
    """The one question: `kind` is Argilla's question type; `options` its labels or values."""

    kind: str  # label_selection | multi_label_selection | rating | text
    options: tuple[Any, ...] = ()
    title: str = "Label"
    description: str = ""
    value_to_label: dict[Any, str] = field(default_factory=dict)
    numeric: bool = False  # magnitude: a text answer that must parse as a number

    def signature(self) -> tuple[str, tuple[Any, ...]]:
        return self.kind, tuple(self.options)


@dataclass(frozen=True)
class DatasetPlan:
    fields: tuple[FieldPlan, ...]
    question: QuestionPlan
    metadata: tuple[tuple[str, str, bool], ...]
    guidelines: str
    min_submitted: int
    task_type: str
    labels: tuple[str, ...]


def _argilla_name(raw: str, what: str) -> str:
    name = re.sub(r"[^a-z0-9_-]+", "_", raw.strip().lower()).strip("_")
    if not name or not _NAME_OK.match(name):
        raise InputError(f"{what} {raw!r} cannot be made into an Argilla name (letters, digits, '_', '-')")
    return name


def score_metadata_name(score: str) -> str:
    return SCORE_PREFIX + _argilla_name(score, "score name")


def question_plan(spec: TaskSpec) -> QuestionPlan:
    """The question that fits the task type."""
    labels = tuple(spec.labels)
    task = spec.task_type
    if task in ("binary", "categorical", "forced_choice"):
        return QuestionPlan("label_selection", labels, title="Label")
    if task == "multi_select":
        return QuestionPlan("multi_label_selection", labels, title="Which labels apply?")
    if task == "ordinal_scale":
        as_ints = [_int_or_none(label) for label in labels]
        if all(v is not None and 0 <= v <= 10 for v in as_ints) and len(set(as_ints)) == len(as_ints):
            values = tuple(int(v) for v in as_ints if v is not None)
            return QuestionPlan("rating", values, title="Rating", value_to_label=dict(zip(values, labels, strict=True)))
        if len(labels) <= 11:
            start = 1 if len(labels) <= 10 else 0
            values = tuple(range(start, start + len(labels)))
            legend = "; ".join(f"{v} = {label}" for v, label in zip(values, labels, strict=True))
            return QuestionPlan(
                "rating",
                values,
                title="Rating",
                description=legend[:1000],
                value_to_label=dict(zip(values, labels, strict=True)),
            )
        # Argilla's rating takes at most 11 points; a longer scale is offered as ordered labels.
        return QuestionPlan("label_selection", labels, title="Rating")
    if task == "magnitude":
        return QuestionPlan("text", (), title="Value", description="Answer with a number.", numeric=True)
    if task in ("free_text", "cloze"):
        title = "Fill in the blank" if task == "cloze" else "Your answer"
        return QuestionPlan("text", (), title=title)
    raise InputError(f"task_type {task!r} has no Argilla question")  # pragma: no cover


def dataset_plan(spec: TaskSpec, score_names: Sequence[str] = ()) -> DatasetPlan:
    """What the run's dataset must hold for `spec` (and these selection score names)."""
    fields: list[FieldPlan] = []
    seen: set[str] = set()
    for source in spec.text_fields:
        name = _argilla_name(source, "spec.text_fields entry")
        if name in seen or name == QUESTION:
            raise InputError(f"spec.text_fields: {source!r} clashes with another name ({name!r}) in Argilla")
        seen.add(name)
        fields.append(FieldPlan(name=name, title=source, source=source))
    metadata = list(BASE_METADATA)
    for score in sorted({score_metadata_name(s) for s in score_names}):
        metadata.append((score, "float", False))
    guidelines = spec.guidelines.strip() or _default_guidelines(spec)
    return DatasetPlan(
        fields=tuple(fields),
        question=question_plan(spec),
        metadata=tuple(metadata),
        guidelines=guidelines[:10000],
        min_submitted=spec.annotators_per_item,
        task_type=spec.task_type,
        labels=tuple(spec.labels),
    )


def _default_guidelines(spec: TaskSpec) -> str:
    what = {
        "binary": "Choose the label that fits.",
        "categorical": "Choose the one label that fits best.",
        "forced_choice": "Choose one of the options.",
        "multi_select": "Tick every label that applies.",
        "ordinal_scale": "Rate the item on the scale.",
        "magnitude": "Give a number.",
        "free_text": "Write your answer.",
        "cloze": "Fill in the blank.",
    }[spec.task_type]
    labels = f" Labels: {', '.join(spec.labels)}." if spec.labels else ""
    suggestion = " The suggestion is the model's guess: judge for yourself." if spec.argilla_suggestions else ""
    return f"{what}{labels}{suggestion}"


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip().replace("\u2212", "-")
        try:
            number = float(text)
        except ValueError:
            return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------------------------
# Comparing a dataset on the server with the plan (pure)
# --------------------------------------------------------------------------------------------


def describe_questions(questions: Sequence[dict[str, Any]]) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """Server questions (GET /datasets/{id}/questions items) as name → (kind, options)."""
    described = {}
    for question in questions:
        settings = question.get("settings") or {}
        kind = settings.get("type", "?")
        options = tuple(option.get("value") for option in settings.get("options") or [])
        described[question["name"]] = (kind, options)
    return described


def mismatches(plan: DatasetPlan, questions: Sequence[dict[str, Any]], fields: Sequence[dict[str, Any]]) -> list[str]:
    """How the dataset's questions and fields differ from what spec.json asks; [] when they fit."""
    problems = []
    described = describe_questions(questions)
    expected_kind, expected_options = plan.question.signature()
    if QUESTION not in described:
        problems.append(
            f"it has no question {QUESTION!r} (it has {sorted(described) or 'none'}); "
            f"spec.json needs a {expected_kind} question"
        )
    else:
        kind, options = described[QUESTION]
        if kind != expected_kind:
            problems.append(f"question {QUESTION!r} is a {kind} question; spec.json needs a {expected_kind} question")
        elif list(options) != list(expected_options):
            problems.append(
                f"question {QUESTION!r} offers {list(options)}; spec.json (task {plan.task_type}, "
                f"labels {list(plan.labels)}) needs {list(expected_options)}"
            )
    have_fields = {f["name"] for f in fields}
    missing = [f.name for f in plan.fields if f.name not in have_fields]
    if missing:
        problems.append(f"it lacks the field(s) {missing} that spec.text_fields names (it has {sorted(have_fields)})")
    return problems


# --------------------------------------------------------------------------------------------
# Making or checking the dataset on the server
# --------------------------------------------------------------------------------------------


def sdk_settings(plan: DatasetPlan) -> Any:
    """The plan as the Argilla SDK's `Settings`, for making the dataset with the SDK."""
    import argilla as rg

    fields = [rg.TextField(name=f.name, title=f.title, required=True, use_markdown=False) for f in plan.fields]
    q = plan.question
    common = {"name": QUESTION, "title": q.title, "required": True}
    if q.description:
        common["description"] = q.description
    if q.kind == "label_selection":
        question = rg.LabelQuestion(labels=list(q.options), **common)
    elif q.kind == "multi_label_selection":
        question = rg.MultiLabelQuestion(labels=list(q.options), **common)
    elif q.kind == "rating":
        question = rg.RatingQuestion(values=list(q.options), **common)
    else:
        question = rg.TextQuestion(use_markdown=False, **common)
    return rg.Settings(
        guidelines=plan.guidelines,
        fields=fields,
        questions=[question],
        metadata=[_sdk_metadata(name, kind, visible) for name, kind, visible in plan.metadata],
        distribution=rg.TaskDistribution(min_submitted=plan.min_submitted),
        allow_extra_metadata=True,
    )


def _sdk_metadata(name: str, kind: str, visible: bool) -> Any:
    import argilla as rg

    cls = {"integer": rg.IntegerMetadataProperty, "float": rg.FloatMetadataProperty, "terms": rg.TermsMetadataProperty}[
        kind
    ]
    return cls(name=name, title=name.replace("_", " "), visible_for_annotators=visible)


def _metadata_body(name: str, kind: str, visible: bool) -> dict[str, Any]:
    return {
        "name": name,
        "title": name.replace("_", " "),
        "settings": {"type": kind},
        "visible_for_annotators": visible,
    }


def ensure_dataset(
    client: Argilla, target: Target, plan: DatasetPlan, annotators: Sequence[str] = ()
) -> tuple[dict[str, Any], bool, list[str]]:
    """The run's dataset, made if missing and checked against the plan if present.

    Returns (dataset, created, warnings). A dataset whose question or fields no longer fit
    spec.json is an error: nothing is changed on the server or in the run.
    """
    notes: list[str] = []
    ws = client.workspace(target.workspace, create=True)
    assert ws is not None
    if annotators:
        _add_members(client, ws, annotators)
    existing = client.dataset(target)
    if existing is not None and existing.get("status") == "draft":
        # An earlier push died while making the dataset: a draft holds no records or answers.
        client.request("DELETE", f"/api/v1/datasets/{existing['id']}", "remove an unfinished (draft) dataset")
        notes.append(f"removed the unfinished draft dataset {target.dataset!r} of an earlier push; made it anew")
        existing = None
    if existing is None:
        with client.sdk_errors(f"create dataset {target.dataset!r} in workspace {target.workspace!r}"):
            import argilla as rg

            sdk = client.sdk  # first: SDK objects made below bind to the latest client
            ds = rg.Dataset(
                name=target.dataset, workspace=target.workspace, settings=sdk_settings(plan), client=sdk
            ).create()
        created = client.dataset(target)
        if created is None:  # pragma: no cover - the server just made it
            raise ServiceError(
                scrub(f"Argilla at {client.url} made dataset {target.dataset!r} but cannot find it (id {ds.id})")
            )
        return created, True, notes
    dataset_id = existing["id"]
    questions = client.request("GET", f"/api/v1/datasets/{dataset_id}/questions", "read the dataset's questions")[
        "items"
    ]
    fields = client.request("GET", f"/api/v1/datasets/{dataset_id}/fields", "read the dataset's fields")["items"]
    problems = mismatches(plan, questions, fields)
    if problems:
        raise StateError(
            f"Argilla dataset {target.dataset!r} (workspace {target.workspace!r}) no longer matches spec.json: "
            + "; ".join(problems)
            + ". Push to a new dataset (argument `dataset`), or bring spec.json back to what the dataset asks; "
            "nothing was sent"
        )
    have = {
        m["name"]
        for m in client.request(
            "GET", f"/api/v1/me/datasets/{dataset_id}/metadata-properties", "read the dataset's metadata properties"
        )["items"]
    }
    for name, kind, visible in plan.metadata:
        if name not in have:
            client.request(
                "POST",
                f"/api/v1/datasets/{dataset_id}/metadata-properties",
                f"add metadata property {name!r}",
                json=_metadata_body(name, kind, visible),
            )
    patch: dict[str, Any] = {}
    if (existing.get("guidelines") or "") != plan.guidelines:
        patch["guidelines"] = plan.guidelines
    distribution = existing.get("distribution") or {}
    if distribution.get("min_submitted") != plan.min_submitted:
        patch["distribution"] = {"strategy": "overlap", "min_submitted": plan.min_submitted}
    if patch:
        try:
            existing = client.request(
                "PATCH", f"/api/v1/datasets/{dataset_id}", "update the dataset's settings", json=patch
            )
        except AlloopError as exc:
            notes.append(f"could not update {sorted(patch)} of the dataset: {exc}")
    return existing, False, notes


def _add_members(client: Argilla, ws: dict[str, Any], usernames: Sequence[str]) -> None:
    members = {
        u["username"]
        for u in client.request("GET", f"/api/v1/workspaces/{ws['id']}/users", "list workspace users")["items"]
    }
    wanted = [u for u in usernames if u not in members]
    if not wanted:
        return
    users = {u["username"]: u for u in client.request("GET", "/api/v1/users", "list users")["items"]}
    unknown = [u for u in wanted if u not in users]
    if unknown:
        raise InputError(
            f"no Argilla user(s) {unknown} at {client.url} (users: {sorted(users)}); create them first "
            "(`argilla_server database users create` or the UI)"
        )
    for name in wanted:
        client.request(
            "POST",
            f"/api/v1/workspaces/{ws['id']}/users",
            f"add {name!r} to workspace {ws['name']!r}",
            json={"user_id": users[name]["id"]},
        )
