"""From the append-only label log to what training and evaluation use.

Corrections supersede earlier events; discarded records carry no label; several annotators per
item are resolved by majority (ties go to the label given first). Judge labels count only
where the spec lets pseudo-labels into training, and never as gold.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alloop.tools.errors import InputError
from alloop.tools.run.schema import LabelEvent, TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    from alloop.tools.run.items import ItemTable

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


BLANK = "___"
"""What stands for a blank in a cloze item's text (build_jspsych's default `trial.blank_marker`)."""
LOG_SCALE_HEAD = "lognormal"
"""The magnitude head that fits on the log scale (model/gaussian.py), so its labels must be positive."""


def log_scale(spec: TaskSpec) -> bool:
    """Whether the spec fits magnitudes on the log scale: then every magnitude must be positive."""
    return spec.task_type == "magnitude" and spec.model.head == LOG_SCALE_HEAD


def check_label(spec: TaskSpec, label: object, where: str, text: str | None = None) -> str | float | list[str]:
    """A label in the spec's schema, or an InputError naming `where` and what to fix.

    `text` is the item's text; a cloze answer is checked against the blanks in it (one answer per
    `___`). Every path labels enter by (files, gold, the interview) comes through here; the
    remote pulls (Argilla, JATOS) ask `label_problem` and list the answers they leave out.
    """
    try:
        return _parse(spec, label, text)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None


def label_problem(spec: TaskSpec, label: object, text: str | None = None) -> str | None:
    """Why `label` does not fit the spec (None: it fits), for callers that skip and report."""
    try:
        _parse(spec, label, text)
    except ValueError as exc:
        return str(exc)
    return None


def _parse(spec: TaskSpec, label: object, text: str | None) -> str | float | list[str]:
    task = spec.task_type
    if task == "multi_select":
        return _options(spec.labels, label)
    if task == "magnitude":
        return _magnitude(label, log_scale(spec))
    if task == "free_text":
        if not isinstance(label, str | int | float) or isinstance(label, bool):
            raise ValueError(f"a free-text answer is one text, not {type(label).__name__} {label!r}")
        if not str(label).strip():
            raise ValueError("the free-text answer is empty; write the answer, or leave the row out")
        return str(label)
    if task == "cloze":
        return _cloze(label, text)
    value = str(label).strip() if isinstance(label, str | int) and not isinstance(label, bool) else None
    if value in spec.labels:
        return value
    if task == "ordinal_scale":
        raise ValueError(
            f"ordinal value {label!r} is off the scale {spec.labels[0]}..{spec.labels[-1]} "
            f"(spec.labels {spec.labels}); use one of its points"
        )
    raise ValueError(f"label {label!r} is not in the label schema {spec.labels}")


def _options(allowed: list[str], label: object) -> list[str]:
    """A multi-select answer: a list of options, or a text 'a|b'; each a known option, once."""
    if isinstance(label, list):
        values = label
    elif isinstance(label, str):
        values = [v.strip() for v in label.split("|") if v.strip()]
    else:
        raise ValueError(f"a multi-select answer is a list of options or a text 'a|b', not {label!r}")
    unknown = [v for v in values if not isinstance(v, str) or v not in allowed]
    if unknown:
        raise ValueError(f"option(s) {unknown} are not among the options {allowed}")
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise ValueError(f"option(s) {twice} are named more than once; name each option once")
    return [str(v) for v in values]


def _magnitude(label: object, log: bool) -> float:
    """A finite number (text such as '412.5' is read as one); positive on a log scale."""
    if isinstance(label, bool) or not isinstance(label, str | int | float):
        raise ValueError(f"magnitude {label!r} is not a number")
    try:
        value = float(label)
    except ValueError:
        raise ValueError(f"magnitude {label!r} is not a number; write digits only (no unit)") from None
    if not math.isfinite(value):
        raise ValueError(f"magnitude {label!r} is not a finite number")
    if log and value <= 0:
        raise ValueError(
            f"magnitude {label!r} is not positive, and the spec fits magnitudes on the log scale "
            f"(model.head {LOG_SCALE_HEAD!r}); fix the value, or use head 'gaussian' for a linear scale"
        )
    return value


def _cloze(label: object, text: str | None) -> str | list[str]:
    """One answer per blank: a text for one blank, a list (or a text 'a | b') for several."""
    if isinstance(label, str):
        answers = [part.strip() for part in label.split("|")]
    elif isinstance(label, list) and all(isinstance(v, str) for v in label):
        answers = [v.strip() for v in label]
    else:
        raise ValueError(f"a cloze answer is a text, or a list of texts one per blank, not {label!r}")
    empty = [k for k, answer in enumerate(answers, start=1) if not answer]
    if empty:
        raise ValueError(f"the answer for blank {empty[0]} is empty; fill in every blank")
    if text is not None:
        blanks = text.count(BLANK)
        if len(answers) > blanks:
            where = "no blank" if blanks == 0 else f"{blanks} blank(s)"
            raise ValueError(
                f"the answer fills {len(answers)} blank(s) but the item has {where} ({BLANK}): "
                f"blank {blanks + 1} does not exist; answer each {BLANK} of the item once"
            )
        if len(answers) < blanks:
            raise ValueError(
                f"the answer fills {len(answers)} of the item's {blanks} blanks ({BLANK}); answer every blank"
            )
    return answers[0] if len(answers) == 1 else answers


def row_text(spec: TaskSpec, row: dict[str, Any]) -> str | None:
    """For cloze, an input row's text (its text fields joined, as ItemTable.texts joins them); else None."""
    if spec.task_type != "cloze":
        return None
    return "\n".join("" if row.get(name) is None else str(row[name]) for name in spec.text_fields)


def item_texts(spec: TaskSpec, *tables: ItemTable | None) -> dict[str, str]:
    """For cloze, each item's text by id (where its blanks are counted); empty for other types."""
    if spec.task_type != "cloze":
        return {}
    texts: dict[str, str] = {}
    for table in tables:
        if table is not None:
            texts.update(zip(table.ids, table.texts(spec.text_fields), strict=True))
    return texts


def vote_text(label: object) -> str:
    """A label as the text votes are counted on: a cloze answer's blanks joined with ' | '."""
    return " | ".join(str(v) for v in label) if isinstance(label, list) else str(label)


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
            judge[event.item_id].append(vote_text(event.label))
        else:
            human[event.item_id].append(vote_text(event.label))
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
