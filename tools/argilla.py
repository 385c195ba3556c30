"""Argilla 2.x as an annotation destination: the dataset, the push, the pull, the progress.

One Argilla dataset per run. Its settings come from spec.json: one text field per
`spec.text_fields`, one question named `label` whose kind fits the task type, the guidelines,
metadata for what the selection said about each item, and task distribution with
`min_submitted = spec.annotators_per_item` so agreement can be measured. Records are keyed by
item id (Argilla's `external_id`), so pushing a batch again updates records, never duplicates.

The pull lists every record with its responses through the REST API (the SDK drops response
ids and times, and fails on a discarded response that has no values): each submitted or
discarded response becomes a `LabelEvent` (source human, annotator = Argilla username,
destination argilla, external id = response id @ its update time). Drafts stay in Argilla.
A response changed after an earlier pull becomes a new event that supersedes the old one;
pulling twice adds nothing.

The server and key come only from ARGILLA_API_URL and ARGILLA_API_KEY in the environment;
neither is written to the run directory nor logged. Pure functions (settings plan, record
payloads, response → event conversion, progress) are separated from the network so that they
can be tested without a server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from alloop.tools.errors import AlloopError, InputError, ServiceError, StateError
from alloop.tools.schema import LabelEvent, SelectionRow, TaskSpec, utc_now

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from alloop.tools.items import ItemTable
    from alloop.tools.rundir import RunDir

log = logging.getLogger("alloop.argilla")

ENV_URL = "ARGILLA_API_URL"
ENV_KEY = "ARGILLA_API_KEY"
DESTINATION = "argilla"
DEFAULT_WORKSPACE = "alloop"
QUESTION = "label"
UPSERT_BATCH = 256  # records per bulk request (the server takes up to 500; the SDK sends 256)
BULK_TIMEOUT = 300.0  # seconds for one bulk request: the server indexes every record before answering
LIST_PAGE = 1000  # the server's largest page for GET /datasets/{id}/records
NO_PROGRESS: Callable[[float, float | None, str], None] = lambda done, total, message: None  # noqa: E731

_NAME_OK = re.compile(r"^[a-z0-9_-]+$")
_WORKSPACE_OK = re.compile(r"^[A-Za-z0-9_-]+$")

# Metadata properties every record carries: (name, kind, visible to annotators). The model's
# view of an item is hidden from annotators (they see the suggestion, not the numbers behind it).
BASE_METADATA: tuple[tuple[str, str, bool], ...] = (
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
    return f"{what}{labels} The suggestion is the model's guess: judge for yourself."


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


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
# Records to push (pure)
# --------------------------------------------------------------------------------------------


def suggestion_value(plan: QuestionPlan, prediction: Any) -> Any:
    """The model's prediction as a value the question accepts, or None when it fits none."""
    if prediction is None or (isinstance(prediction, float) and math.isnan(prediction)):
        return None
    if plan.kind == "label_selection":
        value = str(prediction)
        return value if value in plan.options else None
    if plan.kind == "multi_label_selection":
        values = [str(prediction)] if str(prediction) in plan.options else _as_label_list(prediction)
        if not values or any(v not in plan.options for v in values):
            return None
        return values
    if plan.kind == "rating":
        for value, label in plan.value_to_label.items():
            if str(prediction) == label:
                return value
        return None
    if plan.numeric:
        number = _as_number(prediction)
        return None if number is None else _format_number(number)
    text = str(prediction)
    return text if text.strip() else None


def _as_label_list(prediction: Any) -> list[str] | None:
    if isinstance(prediction, list | tuple):
        return [str(p) for p in prediction]
    text = str(prediction).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return None
        return [str(p) for p in parsed] if isinstance(parsed, list) else None
    separator = "|" if "|" in text else ","
    return [part.strip() for part in text.split(separator) if part.strip()]


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


def _format_number(number: float) -> str:
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def record_payloads(
    plan: DatasetPlan, rows: Sequence[SelectionRow], items: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The records for a batch: one per selection row, keyed by item id; and warnings.

    `items[i]` is the pool row of `rows[i]`. A record is a dict with `id`, `fields`,
    `metadata` and `suggestion` (value, score, agent) or None.
    """
    payloads = []
    warnings_: list[str] = []
    skipped_suggestions = []
    for row, item in zip(rows, items, strict=True):
        fields = {}
        for f in plan.fields:
            value = item.get(f.source)
            fields[f.name] = "" if value is None else str(value)
        metadata: dict[str, Any] = {"round": row.round, "rank": row.rank, "strategy": row.strategy}
        if row.reason:
            metadata["reason"] = row.reason[:1000]
        if row.prediction is not None:
            metadata["prediction"] = str(row.prediction)[:1000]
        if row.confidence is not None and math.isfinite(row.confidence):
            metadata["confidence"] = float(row.confidence)
        if row.model_version:
            metadata["model_version"] = row.model_version
        for name, score in row.scores.items():
            if score is not None and math.isfinite(score):
                metadata[score_metadata_name(name)] = float(score)
        suggestion = None
        value = suggestion_value(plan.question, row.prediction)
        if value is not None:
            score = row.confidence
            if score is not None and not (math.isfinite(score) and 0.0 <= score <= 1.0):
                score = None
            if isinstance(value, list) and score is not None:
                score = [score] * len(value)  # a multi-label suggestion takes one score per label
            agent = _agent(row.model_version)
            suggestion = {"value": value, "score": score, "agent": agent}
        elif row.prediction is not None:
            skipped_suggestions.append(row.item_id)
        payloads.append({"id": row.item_id, "fields": fields, "metadata": metadata, "suggestion": suggestion})
    if skipped_suggestions:
        warnings_.append(
            f"{len(skipped_suggestions)} prediction(s) fit no answer of the question and were not "
            f"suggested (items {skipped_suggestions[:5]})"
        )
    return payloads, warnings_


def _agent(model_version: str | None) -> str:
    agent = re.sub(r"[^a-zA-Z0-9\-_:./\s]", "-", model_version or "alloop")[:200]
    return agent if re.search(r"[a-zA-Z0-9]", agent) else "alloop"


# --------------------------------------------------------------------------------------------
# Responses back to label events (pure)
# --------------------------------------------------------------------------------------------


@dataclass
class PullBatch:
    """What one pass over the dataset's records found."""

    events: list[LabelEvent] = field(default_factory=list)
    drafts: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[dict[str, Any]] = field(default_factory=list)
    responses_seen: int = 0


def server_time(raw: str | None) -> str:
    """Argilla's naive UTC timestamps as the run's ISO-8601 UTC format."""
    if not raw:
        return utc_now()
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return utc_now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def answer_label(plan: QuestionPlan, labels: Sequence[str], value: Any) -> str | float | list[str]:
    """A response value as the run's label; ValueError says why it is not one."""
    if plan.kind == "label_selection":
        if not isinstance(value, str) or value not in labels:
            raise ValueError(f"{value!r} is not one of the labels {list(labels)}")
        return value
    if plan.kind == "multi_label_selection":
        if not isinstance(value, list) or any(v not in labels for v in value):
            raise ValueError(f"{value!r} is not a list of labels from {list(labels)}")
        return [str(v) for v in value]
    if plan.kind == "rating":
        if value not in plan.value_to_label:
            raise ValueError(f"{value!r} is not a point of the scale {list(plan.value_to_label)}")
        return plan.value_to_label[value]
    if plan.numeric:
        number = _as_number(value)
        if number is None:
            raise ValueError(f"{value!r} is not a number")
        return number
    if not isinstance(value, str) or not value.strip():
        raise ValueError("the answer is empty")
    return value


def events_from_records(
    plan: DatasetPlan,
    records: Sequence[dict[str, Any]],
    usernames: dict[str, str],
    known_items: set[str],
    item_rounds: dict[str, int],
    dataset: str,
    workspace: str,
    round_filter: int | None = None,
) -> PullBatch:
    """Every submitted or discarded response of these records as a candidate LabelEvent.

    `records` are GET /datasets/{id}/records items with responses; `usernames` maps user id to
    username; `item_rounds` gives the round an item was selected in, for records without
    round metadata. Drafts are counted, never turned into events.
    """
    batch = PullBatch()
    for record in records:
        item_id = record.get("external_id")
        metadata = record.get("metadata") or {}
        round_ = metadata.get("round")
        if not isinstance(round_, int):
            round_ = item_rounds.get(item_id or "")
        if round_filter is not None and round_ != round_filter:
            continue
        answered = [r for r in record.get("responses") or [] if r.get("status") in ("submitted", "discarded")]
        batch.drafts += sum(1 for r in record.get("responses") or [] if r.get("status") == "draft")
        if not answered:
            continue
        if item_id is None or item_id not in known_items:
            batch.unknown.append({"record_id": record.get("id"), "item_id": item_id, "responses": len(answered)})
            continue
        if round_ is None:
            batch.unknown.append(
                {
                    "record_id": record.get("id"),
                    "item_id": item_id,
                    "responses": len(answered),
                    "why": "no round: the record has no round metadata and no selection names the item",
                }
            )
            continue
        for response in answered:
            batch.responses_seen += 1
            user_id = str(response.get("user_id"))
            annotator = usernames.get(user_id, f"argilla-user-{user_id}")
            status = response["status"]
            values = response.get("values") or {}
            label: Any = None
            if status == "submitted":
                raw = (values.get(QUESTION) or {}).get("value")
                try:
                    label = answer_label(plan.question, plan.labels, raw)
                except ValueError as exc:
                    batch.invalid.append(
                        {
                            "item_id": item_id,
                            "annotator": annotator,
                            "value": raw,
                            "why": str(exc),
                            "response_id": response.get("id"),
                        }
                    )
                    continue
            updated = response.get("updated_at") or response.get("inserted_at") or ""
            batch.events.append(
                LabelEvent(
                    item_id=item_id,
                    label=label,
                    source="human",
                    annotator=annotator,
                    round=round_,
                    time=server_time(updated),
                    destination=DESTINATION,
                    status=status,
                    external_id=f"{response.get('id')}@{updated}",
                    extra={
                        "argilla_dataset": dataset,
                        "argilla_workspace": workspace,
                        "argilla_record_id": record.get("id"),
                        "argilla_response_id": str(response.get("id")),
                        "argilla_user_id": user_id,
                        "question": QUESTION,
                    },
                )
            )
    return batch


def new_events(candidates: Sequence[LabelEvent], existing: Sequence[LabelEvent]) -> tuple[list[LabelEvent], int]:
    """The candidates not yet in labels.jsonl, and how many were already there.

    A response seen before with the same status and label adds nothing (a re-save of the same
    answer); one that changed becomes a new event that supersedes the last one recorded.
    """
    seen_external = {e.external_id for e in existing if e.destination == DESTINATION and e.external_id}
    last_by_response: dict[str, LabelEvent] = {}
    for event in existing:
        response_id = event.extra.get("argilla_response_id") if event.destination == DESTINATION else None
        if response_id:
            last_by_response[response_id] = event
    fresh: list[LabelEvent] = []
    already = 0
    for event in candidates:
        response_id = event.extra.get("argilla_response_id")
        previous = last_by_response.get(response_id or "")
        if event.external_id in seen_external or (
            previous is not None and previous.status == event.status and previous.label == event.label
        ):
            already += 1
            continue
        if previous is not None:
            event = event.model_copy(update={"supersedes": previous.event_id})
        fresh.append(event)
        if response_id:
            last_by_response[response_id] = event
        seen_external.add(event.external_id)
    return fresh, already


# --------------------------------------------------------------------------------------------
# Progress (pure)
# --------------------------------------------------------------------------------------------


def progress_from_records(
    records: Sequence[dict[str, Any]],
    usernames: dict[str, str],
    min_submitted: int,
    pulled: Sequence[LabelEvent] = (),
    annotators: Sequence[str] = (),
    item_rounds: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Records done and pending, per round and per annotator.

    A record is done when it has `min_submitted` submitted responses (Argilla's own rule with
    task distribution). For each annotator: submitted, discarded, draft, and `to_do` (records
    not done that they have not answered). `not_pulled` counts answers not yet in labels.jsonl.
    """
    item_rounds = item_rounds or {}
    pulled_responses = {e.extra.get("argilla_response_id") for e in pulled if e.destination == DESTINATION}
    rounds: dict[int, dict[str, Any]] = {}
    names = set(annotators)
    for record in records:
        metadata = record.get("metadata") or {}
        round_ = metadata.get("round")
        if not isinstance(round_, int):
            round_ = item_rounds.get(record.get("external_id") or "", -1)
        entry = rounds.setdefault(
            round_,
            {
                "records": 0,
                "done": 0,
                "pending": 0,
                "submitted": 0,
                "discarded": 0,
                "drafts": 0,
                "not_pulled": 0,
                "per_annotator": {},
                "_answered_by": [],
            },
        )
        responses = record.get("responses") or []
        submitted = [r for r in responses if r.get("status") == "submitted"]
        done = record.get("status") == "completed" or len(submitted) >= min_submitted
        entry["records"] += 1
        entry["done" if done else "pending"] += 1
        answered_by = set()
        for response in responses:
            status = response.get("status")
            user = usernames.get(str(response.get("user_id")), f"argilla-user-{response.get('user_id')}")
            names.add(user)
            per = entry["per_annotator"].setdefault(user, {"submitted": 0, "discarded": 0, "draft": 0})
            key = "draft" if status == "draft" else status
            if key in per:
                per[key] += 1
            if status == "submitted":
                entry["submitted"] += 1
            elif status == "discarded":
                entry["discarded"] += 1
            elif status == "draft":
                entry["drafts"] += 1
            if status in ("submitted", "discarded"):
                answered_by.add(user)
                if str(response.get("id")) not in pulled_responses:
                    entry["not_pulled"] += 1
        entry["_answered_by"].append((done, answered_by))
    for entry in rounds.values():
        for user in names:
            per = entry["per_annotator"].setdefault(user, {"submitted": 0, "discarded": 0, "draft": 0})
            per["to_do"] = sum(1 for done, by in entry["_answered_by"] if not done and user not in by)
        del entry["_answered_by"]
    totals = {
        key: sum(entry[key] for entry in rounds.values())
        for key in ("records", "done", "pending", "submitted", "discarded", "drafts", "not_pulled")
    }
    return {
        "annotators_per_item": min_submitted,
        "rounds": {str(r): rounds[r] for r in sorted(rounds)},
        "totals": totals,
    }


# --------------------------------------------------------------------------------------------
# The connection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a run's records live in Argilla."""

    dataset: str
    workspace: str

    def __post_init__(self) -> None:
        if not self.dataset or len(self.dataset) > 200:
            raise InputError(f"Argilla dataset name {self.dataset!r} must have 1 to 200 characters")
        if not _WORKSPACE_OK.match(self.workspace):
            raise InputError(f"Argilla workspace name {self.workspace!r} may hold only letters, digits, '_' and '-'")


def target_for(run: RunDir, dataset: str | None = None, workspace: str | None = None) -> Target:
    """The dataset and workspace: the arguments, else what the run used before, else defaults."""
    before = run.destinations().get(DESTINATION) or {}
    return Target(
        dataset=dataset or before.get("dataset") or run.name,
        workspace=workspace or before.get("workspace") or DEFAULT_WORKSPACE,
    )


class _HideServer(logging.Filter):
    """Drops httpx/httpcore log records about requests to the Argilla server: they carry its URL,
    which alloop never logs (the key is never in them: headers are not logged)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.url = url
        self.host = f"host='{parts.hostname}'"
        self.port = f"port={parts.port or (443 if parts.scheme == 'https' else 80)}"

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to judge
            return True
        return not (self.url in message or (self.host in message and self.port in message))


_TRANSPORT_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy")


class Argilla:
    """A connection to an Argilla server from ARGILLA_API_URL / ARGILLA_API_KEY.

    REST calls go through `request`, which turns every transport or HTTP failure into a
    ServiceError or InputError naming the URL (never the key). `sdk` is the argilla SDK client,
    made on first use, for what the SDK does soundly here: making a dataset from its settings.
    """

    def __init__(self, url: str, key: str, timeout: float = 60.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._key = key
        self.http: httpx.Client = httpx.Client(
            base_url=self.url, headers={"X-Argilla-Api-Key": key}, timeout=httpx.Timeout(timeout, connect=10.0)
        )
        self._sdk: Any = None
        self.me: dict[str, Any] = {}
        self._hide = _HideServer(self.url)
        for name in _TRANSPORT_LOGGERS:
            logging.getLogger(name).addFilter(self._hide)

    def __repr__(self) -> str:
        return f"Argilla({self.url!r})"

    @classmethod
    def from_env(cls, timeout: float = 60.0) -> Argilla:
        url = os.environ.get(ENV_URL, "").strip()
        key = os.environ.get(ENV_KEY, "").strip()
        missing = [name for name, value in ((ENV_URL, url), (ENV_KEY, key)) if not value]
        if missing:
            raise ServiceError(
                f"{' and '.join(missing)} not set: export the Argilla server's URL as {ENV_URL} and an "
                f"owner's or admin's API key as {ENV_KEY} in the environment of alloop (never as arguments)"
            )
        if not url.startswith(("http://", "https://")):
            raise ServiceError(
                f"{ENV_URL}={url!r} is not an http(s) URL; set it to the Argilla server, e.g. http://localhost:6900"
            )
        client = cls(url, key, timeout)
        try:
            client.check()
        except BaseException:
            client.close()
            raise
        return client

    def close(self) -> None:
        self.http.close()
        if self._sdk is not None:
            with contextlib.suppress(Exception):
                self._sdk.http_client.close()
        for name in _TRANSPORT_LOGGERS:
            logging.getLogger(name).removeFilter(self._hide)

    def __enter__(self) -> Argilla:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- REST ------------------------------------------------------------------------------
    def request(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        import httpx

        try:
            reply = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ServiceError(
                f"Argilla at {self.url} did not answer in time while trying to {what} "
                f"({type(exc).__name__}); is it overloaded or down?"
            ) from exc
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"cannot reach Argilla at {self.url} to {what} ({exc.__class__.__name__}: {exc}); "
                f"is the server running and is {ENV_URL} right?"
            ) from exc
        return self._json(reply, what)

    def _json(self, reply: httpx.Response, what: str) -> Any:
        status = reply.status_code
        detail = _detail(reply)
        if status == 401:
            raise ServiceError(
                f"Argilla at {self.url} refused the API key (401) while trying to {what}: check {ENV_KEY}"
            )
        if status == 403:
            who = self.me.get("username", "this key's user")
            raise ServiceError(
                f"Argilla at {self.url}: {who} (role {self.me.get('role', '?')}) may not {what} (403); "
                "use an owner's or admin's API key"
            )
        if status == 422:
            raise InputError(f"Argilla at {self.url} rejected the request to {what} (422): {detail}")
        if status >= 400:
            raise ServiceError(f"Argilla at {self.url} failed to {what} ({status}): {detail}")
        if status == 204 or not reply.content:
            return None
        try:
            return reply.json()
        except ValueError as exc:
            raise ServiceError(
                f"{self.url} answered {what} with something that is not JSON: is {ENV_URL} the Argilla "
                "server's URL (e.g. http://localhost:6900, without /api)?"
            ) from exc

    def check(self) -> dict[str, Any]:
        """Who the key belongs to; says clearly if the URL is not an Argilla server."""
        import httpx

        try:
            reply = self.http.get("/api/v1/me")
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"cannot reach Argilla at {self.url} ({exc.__class__.__name__}: {exc}); "
                f"is the server running and is {ENV_URL} right?"
            ) from exc
        if reply.status_code == 404:
            raise ServiceError(f"{self.url} has no /api/v1/me: it is not an Argilla 2.x server; check {ENV_URL}")
        me = self._json(reply, "identify the API key's user")
        if not isinstance(me, dict) or "username" not in me:
            raise ServiceError(f"{self.url} did not answer /api/v1/me like an Argilla server; check {ENV_URL}")
        self.me = me
        return me

    def paged(self, path: str, what: str, params: dict[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        offset = 0
        while True:
            page = self.request("GET", path, what, params={**(params or {}), "offset": offset, "limit": LIST_PAGE})
            items = page.get("items") or []
            yield items
            offset += len(items)
            if not items or offset >= page.get("total", 0):
                return

    # -- SDK -------------------------------------------------------------------------------
    @property
    def sdk(self) -> Any:
        if self._sdk is None:
            with self.sdk_errors("connect the argilla SDK"):
                import argilla as rg

                self._sdk = rg.Argilla(api_url=self.url, api_key=self._key, timeout=60, retries=2)
        return self._sdk

    @contextlib.contextmanager
    def sdk_errors(self, what: str) -> Iterator[None]:
        """Translate the SDK's exceptions into alloop's."""
        import httpx

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except AlloopError:
            raise
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"cannot reach Argilla at {self.url} to {what} ({exc.__class__.__name__}: {exc})"
            ) from exc
        except Exception as exc:
            from argilla._exceptions import ArgillaError

            if not isinstance(exc, ArgillaError):
                raise
            status = getattr(exc, "status_code", None)
            if status == 422 or exc.__class__.__name__ in ("UnprocessableEntityError", "BadRequestError"):
                raise InputError(f"Argilla at {self.url} rejected the request to {what}: {exc}") from exc
            if exc.__class__.__name__ == "ArgillaCredentialsError" or status == 401:
                raise ServiceError(
                    f"Argilla at {self.url} refused the API key while trying to {what}: check {ENV_KEY}"
                ) from exc
            raise ServiceError(f"Argilla at {self.url} failed to {what}: {exc}") from exc

    # -- lookups ---------------------------------------------------------------------------
    def workspace(self, name: str, create: bool = False) -> dict[str, Any] | None:
        for item in self.request("GET", "/api/v1/me/workspaces", "list workspaces").get("items", []):
            if item["name"] == name:
                return item
        if not create:
            return None
        return self.request("POST", "/api/v1/workspaces", f"create workspace {name!r}", json={"name": name})

    def dataset(self, target: Target) -> dict[str, Any] | None:
        ws = self.workspace(target.workspace)
        if ws is None:
            return None
        found = self.request(
            "GET", "/api/v1/me/datasets", "list datasets", params={"workspace_id": ws["id"], "name": target.dataset}
        )
        for item in found.get("items", []):
            if item["name"] == target.dataset and str(item["workspace_id"]) == str(ws["id"]):
                return item
        return None

    def usernames(self, workspace_id: str, user_ids: set[str]) -> tuple[dict[str, str], list[str]]:
        """(user id → username, the workspace's annotators), from the workspace's members and,
        for answers by users no longer in it, the users list (owners only)."""
        names: dict[str, str] = {}
        annotators: list[str] = []
        with contextlib.suppress(ServiceError):
            for user in self.request("GET", f"/api/v1/workspaces/{workspace_id}/users", "list workspace users")[
                "items"
            ]:
                names[str(user["id"])] = user["username"]
                if user.get("role") == "annotator":
                    annotators.append(user["username"])
        if user_ids - set(names):
            with contextlib.suppress(ServiceError):
                for user in self.request("GET", "/api/v1/users", "list users")["items"]:
                    names[str(user["id"])] = user["username"]
        return names, sorted(annotators)

    def list_records(
        self, dataset_id: str, progress: Callable[[float, float | None, str], None] = NO_PROGRESS
    ) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for page in self.paged(
            f"/api/v1/datasets/{dataset_id}/records", "list the dataset's records", {"include": ["responses"]}
        ):
            records.extend(page)
            progress(len(records), None, f"read {len(records)} records from Argilla")
        return records


def _detail(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:300]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        detail = detail.get("params", {}).get("message") or detail.get("message") or json.dumps(detail)[:300]
    return str(detail)[:500]


# --------------------------------------------------------------------------------------------
# Push
# --------------------------------------------------------------------------------------------


@dataclass
class PushResult:
    dataset: str
    workspace: str
    dataset_id: str
    round: int
    records: int
    created: int
    updated: int
    suggestions: int
    created_dataset: bool
    question: str
    annotators_per_item: int
    warnings: list[str]


def _batch_items(run: RunDir, rows: Sequence[SelectionRow], pool: ItemTable) -> list[dict[str, Any]]:
    ids = [row.item_id for row in rows]
    index = pool.index_of()
    unknown = [i for i in ids if i not in index]
    if unknown:
        raise InputError(
            f"{run.round_file('selection', rows[0].round).name}: item(s) {unknown[:5]} are not in the pool "
            f"of run {run.name!r}; redo select_batch for this round"
        )
    return pool.rows([index[i] for i in ids])


def _sdk_settings(plan: DatasetPlan) -> Any:
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
                name=target.dataset, workspace=target.workspace, settings=_sdk_settings(plan), client=sdk
            ).create()
        created = client.dataset(target)
        if created is None:  # pragma: no cover - the server just made it
            raise ServiceError(
                f"Argilla at {client.url} made dataset {target.dataset!r} but cannot find it (id {ds.id})"
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


def upsert_records(
    client: Argilla,
    dataset: dict[str, Any],
    payloads: Sequence[dict[str, Any]],
    progress: Callable[[float, float | None, str], None] = NO_PROGRESS,
) -> tuple[int, int]:
    """Send records in bulk, keyed by item id (Argilla's external_id); returns (created, updated).

    This is the endpoint the SDK's `records.log` calls (PUT /datasets/{id}/records/bulk), sent
    directly: the SDK reads an `updated_item_ids` key that the 2.8 server never returns (so it
    counts every update as new), and re-parses every returned record into models, which costs
    more than building the request. The dataset's record count before and after tells new
    records from updated ones.
    """
    dataset_id = str(dataset["id"])
    questions = client.request("GET", f"/api/v1/datasets/{dataset_id}/questions", "read the dataset's questions")
    question_id = next(q["id"] for q in questions["items"] if q["name"] == QUESTION)
    before = _record_count(client, dataset_id)
    total = len(payloads)
    for start in range(0, total, UPSERT_BATCH):
        chunk = payloads[start : start + UPSERT_BATCH]
        items = []
        for payload in chunk:
            item: dict[str, Any] = {
                "external_id": payload["id"],
                "fields": payload["fields"],
                "metadata": payload["metadata"],
            }
            if payload["suggestion"] is not None:
                item["suggestions"] = [{"question_id": question_id, "type": "model", **payload["suggestion"]}]
            items.append(item)
        try:
            client.request(
                "PUT",
                f"/api/v1/datasets/{dataset_id}/records/bulk",
                f"send records {start + 1}-{start + len(chunk)} of {total}",
                json={"items": items},
                timeout=BULK_TIMEOUT,
            )
        except AlloopError as exc:
            raise type(exc)(
                f"{exc}. {start} of {total} records were sent before this; push again to send the rest "
                "(records are keyed by item id: nothing duplicates)"
            ) from exc
        progress(start + len(chunk), total, f"sent {start + len(chunk)}/{total} records to Argilla")
    created = max(0, min(total, _record_count(client, dataset_id) - before))
    return created, total - created


def _record_count(client: Argilla, dataset_id: str) -> int:
    reply = client.request("GET", f"/api/v1/datasets/{dataset_id}/progress", "count the dataset's records")
    return int(reply.get("total", 0))


def push_round(
    run: RunDir,
    round_: int,
    dataset: str | None = None,
    workspace: str | None = None,
    annotators: Sequence[str] = (),
    progress: Callable[[float, float | None, str], None] = NO_PROGRESS,
) -> PushResult:
    """Send a round's selection to the run's Argilla dataset (made or checked first)."""
    spec = run.spec()
    rows = sorted(run.selection(round_), key=lambda r: r.rank)
    if not rows:
        raise StateError(f"selection_round_{round_:02d}.jsonl of run {run.name!r} is empty: nothing to push")
    items = _batch_items(run, rows, run.pool())
    plan = dataset_plan(spec, [name for row in rows for name in row.scores])
    payloads, notes = record_payloads(plan, rows, items)
    target = target_for(run, dataset, workspace)
    with Argilla.from_env() as client:
        ds, made, more_notes = ensure_dataset(client, target, plan, annotators)
        created, updated = upsert_records(client, ds, payloads, progress)
    notes.extend(more_notes)
    log.info("round %d: %d records to Argilla dataset %r (%d new, %d updated)", round_, len(payloads),
             target.dataset, created, updated)
    with run.lock():
        before = run.destinations().get(DESTINATION) or {}
        rounds = dict(before.get("rounds") or {})
        rounds[str(round_)] = {"pushed_at": utc_now(), "records": len(payloads)}
        run.write_destination(
            DESTINATION,
            {"dataset": target.dataset, "workspace": target.workspace, "dataset_id": str(ds["id"]), "rounds": rounds},
        )
        run.append_note(
            f"round {round_}: pushed {len(payloads)} records to Argilla dataset {target.dataset!r} "
            f"(workspace {target.workspace!r}; {created} new, {updated} updated)"
        )
    return PushResult(
        dataset=target.dataset,
        workspace=target.workspace,
        dataset_id=str(ds["id"]),
        round=round_,
        records=len(payloads),
        created=created,
        updated=updated,
        suggestions=sum(1 for p in payloads if p["suggestion"] is not None),
        created_dataset=made,
        question=plan.question.kind,
        annotators_per_item=plan.min_submitted,
        warnings=notes,
    )


# --------------------------------------------------------------------------------------------
# Pull
# --------------------------------------------------------------------------------------------


@dataclass
class PullResult:
    dataset: str
    workspace: str
    new_events: int
    submitted: int
    discarded: int
    corrections: int
    already_pulled: int
    drafts_left: int
    by_round: dict[str, int]
    by_annotator: dict[str, int]
    invalid: list[dict[str, Any]]
    skipped_unknown: list[dict[str, Any]]
    progress: dict[str, Any]


def _item_rounds(run: RunDir) -> dict[str, int]:
    rounds: dict[str, int] = {}
    for round_ in run.selection_rounds():
        for row in run.selection(round_):
            rounds[row.item_id] = round_
    return rounds


def _open_dataset(client: Argilla, run: RunDir, target: Target) -> tuple[dict[str, Any], DatasetPlan]:
    ds = client.dataset(target)
    if ds is None:
        raise StateError(
            f"no Argilla dataset {target.dataset!r} in workspace {target.workspace!r} at {client.url}; "
            "push a round first (push_to_argilla), or name the dataset and workspace it went to"
        )
    spec = run.spec()
    plan = dataset_plan(spec)
    questions = client.request("GET", f"/api/v1/datasets/{ds['id']}/questions", "read the dataset's questions")["items"]
    fields = client.request("GET", f"/api/v1/datasets/{ds['id']}/fields", "read the dataset's fields")["items"]
    problems = mismatches(plan, questions, fields)
    if problems:
        raise StateError(
            f"Argilla dataset {target.dataset!r} (workspace {target.workspace!r}) no longer matches spec.json "
            f"v{spec.spec_version}: "
            + "; ".join(problems)
            + ". Its answers cannot be read as labels of this spec; nothing was pulled. Bring spec.json back "
            "(spec_history.jsonl has the earlier versions) or pull from a dataset made for this spec"
        )
    return ds, plan


def pull_responses(
    run: RunDir,
    dataset: str | None = None,
    workspace: str | None = None,
    round_: int | None = None,
    skip_unknown: bool = False,
    progress: Callable[[float, float | None, str], None] = NO_PROGRESS,
) -> PullResult:
    """Bring submitted and discarded responses back as label events (exactly once)."""
    target = target_for(run, dataset, workspace)
    item_rounds = _item_rounds(run)
    with Argilla.from_env() as client:
        ds, plan = _open_dataset(client, run, target)
        records = client.list_records(ds["id"], progress)
        user_ids = {str(r.get("user_id")) for rec in records for r in rec.get("responses") or []}
        usernames, members = client.usernames(str(ds["workspace_id"]), user_ids)
    pool_ids = set(run.pool().ids)
    heldout = run.heldout()
    known = pool_ids | (set(heldout.ids) if heldout is not None else set())
    batch = events_from_records(
        plan, records, usernames, known, item_rounds, target.dataset, target.workspace, round_filter=round_
    )
    if batch.unknown and not skip_unknown:
        shown = ", ".join(f"{u['item_id']!r} (record {u['record_id']})" for u in batch.unknown[:5])
        raise InputError(
            f"Argilla dataset {target.dataset!r} has answers for {len(batch.unknown)} record(s) whose item "
            f"run {run.name!r} does not know: {shown}. Nothing was pulled. Delete those records in Argilla, "
            "or pull again with skip_unknown=true to take the rest and leave them"
        )
    with run.lock():
        existing = run.labels()
        fresh, already = new_events(batch.events, existing)
        written = run.append_labels(fresh)
        pulled = [*existing, *written]
        by_round: dict[str, int] = {}
        by_annotator: dict[str, int] = {}
        for event in written:
            by_round[str(event.round)] = by_round.get(str(event.round), 0) + 1
            by_annotator[event.annotator] = by_annotator.get(event.annotator, 0) + 1
        if written:
            run.append_note(
                f"pulled {len(written)} answer(s) from Argilla dataset {target.dataset!r}: "
                + ", ".join(f"round {r}: {n}" for r, n in sorted(by_round.items()))
            )
    log.info(
        "pulled %d new answer(s) from Argilla dataset %r (%d already pulled, %d drafts left)",
        len(written), target.dataset, already, batch.drafts,
    )
    min_submitted = (ds.get("distribution") or {}).get("min_submitted") or plan.min_submitted
    summary = progress_from_records(records, usernames, min_submitted, pulled, members, item_rounds)
    return PullResult(
        dataset=target.dataset,
        workspace=target.workspace,
        new_events=len(written),
        submitted=sum(1 for e in written if e.status == "submitted"),
        discarded=sum(1 for e in written if e.status == "discarded"),
        corrections=sum(1 for e in written if e.supersedes),
        already_pulled=already,
        drafts_left=batch.drafts,
        by_round=by_round,
        by_annotator=by_annotator,
        invalid=batch.invalid,
        skipped_unknown=batch.unknown,
        progress=summary,
    )


# --------------------------------------------------------------------------------------------
# Progress, for the status tool
# --------------------------------------------------------------------------------------------


def argilla_progress(run: RunDir, dataset: str | None = None, workspace: str | None = None) -> dict[str, Any] | None:
    """Annotation progress of a run in Argilla: records done and pending, per round, per annotator.

    Returns None when the run never pushed to Argilla (and no dataset is named). Raises
    ServiceError when the server cannot be reached or refuses the key: a caller such as `status`
    should catch AlloopError and show its message. Reads only; writes nothing.
    """
    before = run.destinations().get(DESTINATION)
    if before is None and dataset is None:
        return None
    target = target_for(run, dataset, workspace)
    item_rounds = _item_rounds(run)
    with Argilla.from_env() as client:
        ds = client.dataset(target)
        if ds is None:
            raise StateError(f"no Argilla dataset {target.dataset!r} in workspace {target.workspace!r} at {client.url}")
        records = client.list_records(ds["id"])
        user_ids = {str(r.get("user_id")) for rec in records for r in rec.get("responses") or []}
        usernames, members = client.usernames(str(ds["workspace_id"]), user_ids)
    min_submitted = (ds.get("distribution") or {}).get("min_submitted") or run.spec().annotators_per_item
    summary = progress_from_records(records, usernames, min_submitted, run.labels(), members, item_rounds)
    return {"dataset": target.dataset, "workspace": target.workspace, "dataset_id": str(ds["id"]), **summary}
