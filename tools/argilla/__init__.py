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

from alloop.tools.argilla.progress import argilla_progress, progress_from_records
from alloop.tools.argilla.records import push_round, record_payloads, suggestion_value
from alloop.tools.argilla.responses import answer_label, events_from_records, new_events, pull_responses, server_time
from alloop.tools.argilla.settings import dataset_plan, mismatches, question_plan, sdk_settings

__all__ = [
    "answer_label",
    "argilla_progress",
    "dataset_plan",
    "events_from_records",
    "mismatches",
    "new_events",
    "progress_from_records",
    "pull_responses",
    "push_round",
    "question_plan",
    "record_payloads",
    "sdk_settings",
    "server_time",
    "suggestion_value",
]
