"""alloop.tools.argilla: Argilla 2.x as an annotation destination (dataset, push, pull, progress).

One Argilla dataset per run, its settings from spec.json; records keyed by item id, so a re-push
updates and never duplicates; submitted and discarded responses come back as `LabelEvent`s,
exactly once. The server and key come only from ARGILLA_API_URL and ARGILLA_API_KEY in the
environment; neither is written to the run directory nor logged. Pure functions (settings plan,
record payloads, response → event conversion, progress) are kept apart from the network so that
they can be tested without a server.

- `client`: the connection (`Argilla`), the environment, errors, HTTP; `Target` and `target_for`.
- `settings`: what the dataset must look like for a spec (`dataset_plan`, `question_plan`), how a
  dataset on the server differs from it (`mismatches`), and `ensure_dataset`, which makes or checks it.
- `records`: the push: selection rows as records (`record_payloads`), `upsert_records`, `push_round`.
- `responses`: the pull: responses as label events (`events_from_records`, `new_events`),
  `pull_responses`.
- `progress`: records done and pending (`progress_from_records`), `argilla_progress` for `status`.
The tools themselves are alloop.tools.push_to_argilla and alloop.tools.pull_from_argilla.
"""

from __future__ import annotations

from alloop.tools.argilla.client import (
    DEFAULT_WORKSPACE,
    DESTINATION,
    ENV_KEY,
    ENV_URL,
    LIST_PAGE,
    NO_PROGRESS,
    Argilla,
    Target,
    target_for,
)
from alloop.tools.argilla.progress import argilla_progress, progress_from_records
from alloop.tools.argilla.records import (
    BULK_TIMEOUT,
    UPSERT_BATCH,
    PushResult,
    push_round,
    record_payloads,
    suggestion_value,
    upsert_records,
)
from alloop.tools.argilla.responses import (
    PullBatch,
    PullResult,
    answer_label,
    events_from_records,
    new_events,
    pull_responses,
    server_time,
)
from alloop.tools.argilla.settings import (
    BASE_METADATA,
    QUESTION,
    SCORE_PREFIX,
    DatasetPlan,
    FieldPlan,
    QuestionPlan,
    _sdk_settings,
    dataset_plan,
    describe_questions,
    ensure_dataset,
    mismatches,
    question_plan,
    score_metadata_name,
)

__all__ = [
    "BASE_METADATA",
    "BULK_TIMEOUT",
    "DEFAULT_WORKSPACE",
    "DESTINATION",
    "ENV_KEY",
    "ENV_URL",
    "LIST_PAGE",
    "NO_PROGRESS",
    "QUESTION",
    "SCORE_PREFIX",
    "UPSERT_BATCH",
    "Argilla",
    "DatasetPlan",
    "FieldPlan",
    "PullBatch",
    "PullResult",
    "PushResult",
    "QuestionPlan",
    "Target",
    "_sdk_settings",
    "answer_label",
    "argilla_progress",
    "dataset_plan",
    "describe_questions",
    "ensure_dataset",
    "events_from_records",
    "mismatches",
    "new_events",
    "progress_from_records",
    "pull_responses",
    "push_round",
    "question_plan",
    "record_payloads",
    "score_metadata_name",
    "server_time",
    "suggestion_value",
    "target_for",
    "upsert_records",
]
