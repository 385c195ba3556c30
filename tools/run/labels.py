"""From the append-only label log to what training and evaluation use.

Corrections supersede earlier events; discarded records carry no label; several annotators per
item are resolved by majority (ties go to the label given first). Judge labels count only
where the spec lets pseudo-labels into training, and never as gold.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alloop.tools.errors import InputError
from alloop.tools.run.schema import LabelEvent, TaskSpec

HUMAN_SOURCES = frozenset({"human", "seed", "import", "simulated"})
"""Sources that stand for people; `judge` is never among them."""


def live_events(events: Iterable[LabelEvent]) -> list[LabelEvent]:
    """Events not superseded by a later correction."""
    events = list(events)
    superseded = {e.supersedes for e in events if e.supersedes}
    return [e for e in events if e.event_id not in superseded]


def current_labels(events: Sequence[LabelEvent]) -> dict[tuple[str, str, bool], LabelEvent]:
    """The standing label per (item, annotator, is_judge): the latest, minus superseded and
    discarded ones. A judge and a person never share a key, whatever their names."""
    standing: dict[tuple[str, str, bool], LabelEvent] = {}
    for event in live_events(events):
        key = (event.item_id, event.annotator, event.source == "judge")
        if event.status == "discarded":
            standing.pop(key, None)
            continue
        standing[key] = event
    return standing


def check_label(spec: TaskSpec, label: object, where: str) -> str | float | list[str]:
    """A label in the spec's schema, or an error that names the allowed values."""
    allowed = spec.labels
    if spec.task_type == "multi_select":
        values = label if isinstance(label, list) else [v for v in str(label).split("|") if v]
        bad = [v for v in values if v not in allowed]
        if bad:
            raise InputError(f"{where}: {bad} not in the label schema {allowed}")
        return [str(v) for v in values]
    if spec.task_type in {"magnitude"}:
        try:
            return float(label)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: magnitude label {label!r} is not a number") from exc
    if spec.task_type in {"free_text", "cloze"}:
        return str(label)
    text = str(label).strip() if label is not None else ""
    if text not in allowed:
        raise InputError(f"{where}: label {label!r} is not in the label schema {allowed}")
    return text


@dataclass
class TrainingLabels:
    """One label per item, resolved from the log, with the counts a round row records."""

    item_ids: list[str]
    labels: list[str]
    rounds: list[int]
    n_pseudo: int


def training_labels(
    spec: TaskSpec, events: Sequence[LabelEvent], exclude: set[str], max_round: int | None = None
) -> TrainingLabels:
    """Majority label per item from human-standing sources (plus judge pseudo-labels if allowed).

    `exclude` holds held-out ids: they are never trained on, whatever the log says.
    """
    use_judge = spec.judge.allowed and spec.judge.pseudo_labels_in_training
    human: dict[str, list[str]] = defaultdict(list)
    judge: dict[str, list[str]] = defaultdict(list)
    first_round: dict[str, int] = {}
    for event in live_events(events):
        if event.status != "submitted" or event.item_id in exclude:
            continue
        if max_round is not None and event.round > max_round:
            continue
        if event.source == "judge":
            if not (use_judge and event.extra.get("use") == "pseudo_labeling"):
                continue
            judge[event.item_id].append(str(event.label))
        else:
            human[event.item_id].append(str(event.label))
        first_round[event.item_id] = min(first_round.get(event.item_id, event.round), event.round)
    pseudo = {i: v for i, v in judge.items() if i not in human}
    votes = {**pseudo, **human}
    item_ids = sorted(votes)
    return TrainingLabels(
        item_ids=item_ids,
        labels=[Counter(votes[i]).most_common(1)[0][0] for i in item_ids],
        rounds=[first_round[i] for i in item_ids],
        n_pseudo=len(pseudo),
    )


def answered_items(events: Iterable[LabelEvent]) -> set[str]:
    """Items with any answer from people, a discard included: they are not asked again.

    A judge's label is not an answer: it never keeps an item from people or closes a batch.
    """
    return {e.item_id for e in events if e.source != "judge"}
