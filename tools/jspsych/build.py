"""Build a jsPsych 8 study folder from items, a TaskSpec and an ExperimentConfig.

The folder is what JATOS calls the study assets: index.html at its root, jsPsych and its
plugins under jspsych/ (copied from the pinned npm cache, or linked on a CDN), css/, js/ (the
alloop experiment and list assignment code) and data/ (config, items, lists, distribution).
Everything is checked before a byte is written; the folder is built beside its destination
and renamed into place, so a failed build leaves the previous one untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from alloop.tools.errors import InputError
from alloop.tools.jspsych import npm
from alloop.tools.jspsych.config import WIDGETS, ExperimentConfig, ExtraTrial
from alloop.tools.jspsych.lists import make_lists
from alloop.tools.run.schema import TaskSpec, utc_now

HERE = Path(__file__).resolve().parent
STATIC_JS = ("alloop-assign.js", "alloop-text.js", "alloop-experiment.js")
STATIC_CSS = ("alloop.css",)
MANIFEST = "alloop-build.json"


@dataclass
class BuiltStudy:
    """What build_study made."""

    path: Path
    n_items: int
    list_sizes: list[int]
    files: list[str] = field(default_factory=list)
    study_key: str = ""


def widget_for(spec: TaskSpec, config: ExperimentConfig) -> str:
    allowed = WIDGETS[spec.task_type]
    widget = config.trial.widget or allowed[0]
    if widget not in allowed:
        raise InputError(
            f"trial.widget {widget!r} does not fit task_type {spec.task_type!r}: use one of {', '.join(allowed)}"
        )
    return widget


def item_payload(item: dict[str, Any], spec: TaskSpec, config: ExperimentConfig, where: str) -> dict[str, Any]:
    """The part of an item the browser needs, checked for the fields the trial reads."""
    item_id = item.get("id")
    if item_id in (None, ""):
        raise InputError(f"{where}: an item has no 'id'")
    texts = []
    for name in spec.text_fields:
        value = item.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise InputError(
                f"{where}: item {item_id!r} has no text in field {name!r} (spec.text_fields); "
                "fill it in or change spec.text_fields"
            )
        texts.append(str(value))
    payload: dict[str, Any] = {"id": str(item_id), "texts": texts}
    trial = config.trial
    if trial.choices_field:
        choices = item.get(trial.choices_field)
        valid = isinstance(choices, list | tuple) and all(isinstance(c, str) and c for c in choices)
        if not valid or len(choices) < 2:
            raise InputError(
                f"{where}: item {item_id!r} needs a list of two or more option strings in field "
                f"{trial.choices_field!r} (trial.choices_field)"
            )
        payload["choices"] = list(choices)
    if spec.task_type == "cloze" and not any(trial.blank_marker in t for t in texts):
        raise InputError(
            f"{where}: cloze item {item_id!r} has no blank: mark each blank with {trial.blank_marker!r} "
            "(trial.blank_marker)"
        )
    meta = {}
    for name in {config.lists.condition_field, config.lists.group_field, config.order.no_adjacent_field} - {None}:
        if name not in item:
            raise InputError(f"{where}: item {item_id!r} has no field {name!r}, which the lists/order config names")
        meta[str(name)] = None if item[name] is None else str(item[name])
    payload["meta"] = meta
    condition_field = config.lists.condition_field or "condition"
    if item.get(condition_field) is not None:
        payload["condition"] = str(item[condition_field])
    return payload


def options_for(spec: TaskSpec, config: ExperimentConfig) -> list[str]:
    """The response options shared by all items (spec.labels), checked against the widget."""
    widget = widget_for(spec, config)
    needs_labels = spec.task_type in {"binary", "ordinal_scale", "multi_select"} or (
        spec.task_type in {"categorical", "forced_choice"} and not config.trial.choices_field
    )
    if needs_labels and len(spec.labels) < 2:
        raise InputError(
            f"task_type {spec.task_type!r} needs two or more labels in spec.labels for its "
            f"{widget} trial (got {spec.labels}); add them with interview_spec"
        )
    if spec.task_type == "binary" and widget == "keys":
        keys = config.trial.keys
        if len(keys) != 2 or len(set(keys)) != 2:
            raise InputError(f"trial.keys must be two different keys for a binary task, got {keys}")
    if spec.task_type == "magnitude" and config.trial.min >= config.trial.max:
        raise InputError(f"trial.min ({config.trial.min}) must be below trial.max ({config.trial.max})")
    return list(spec.labels)


def _check_expected(trial: ExtraTrial, spec: TaskSpec, where: str) -> None:
    if trial.expected is None:
        raise InputError(f"{where}: an attention check needs 'expected', the response that passes")
    fixed = spec.task_type in {"binary", "categorical", "forced_choice", "ordinal_scale"}
    if spec.labels and fixed and str(trial.expected) not in spec.labels:
        raise InputError(f"{where}: expected {trial.expected!r} is not one of the labels {spec.labels}")


NO_WRONG_ANSWERS = re.compile(
    r"\bno (right|wrong|correct|incorrect)( or (right|wrong|correct|incorrect))? answers?\b", re.I
)


def _check_practice(config: ExperimentConfig) -> None:
    """Practice feedback must not contradict the instructions: no right answer where they say there is none."""
    said = next((found for text in config.instructions if (found := NO_WRONG_ANSWERS.search(text))), None)
    graded = [i for i, trial in enumerate(config.practice) if trial.expected is not None]
    if said and graded:
        raise InputError(
            f"practice[{graded[0]}] has an 'expected' answer, so its feedback would say right or wrong, but the "
            f"instructions say {said.group(0)!r}: drop 'expected' (an 'explanation' "
            "may say what to notice) or change the instructions"
        )


def _check_distribution(config: ExperimentConfig, n_lists: int) -> None:
    dist = config.distribution
    if dist.strategy == "weighted_random" and len(dist.weights) != n_lists:
        raise InputError(f"distribution.weights has {len(dist.weights)} entries but there are {n_lists} lists")
    if dist.strategy == "quota_based" and len(dist.quotas) != n_lists:
        raise InputError(f"distribution.quotas has {len(dist.quotas)} entries but there are {n_lists} lists")
    if dist.strategy == "metadata_based":
        bad = {k: v for k, v in dist.mapping.items() if not 0 <= v < n_lists}
        if bad or (dist.default is not None and not 0 <= dist.default < n_lists):
            raise InputError(f"distribution.mapping/default name lists outside 0..{n_lists - 1}: {bad or dist.default}")
    if config.debug_list is not None and config.debug_list >= n_lists:
        raise InputError(f"debug_list is {config.debug_list} but there are only {n_lists} lists (0..{n_lists - 1})")


def plan_study(
    items: Sequence[dict[str, Any]],
    spec: TaskSpec,
    config: ExperimentConfig,
    shared: Sequence[dict[str, Any]] = (),
) -> tuple[dict[str, Any], list[list[str]], dict[str, Any], dict[str, Any]]:
    """Check everything and return (items, lists, browser config, distribution) without writing.

    `shared` items go into every list (held-out overlap items everyone judges), outside the
    split or Latin square, so they need none of its fields.
    """
    if not items:
        raise InputError("no items: the batch is empty; select a batch first")
    widget = widget_for(spec, config)
    options = options_for(spec, config)
    payloads: dict[str, Any] = {}
    list_fields = {config.lists.condition_field, config.lists.group_field, config.order.no_adjacent_field} - {None}
    unset = dict.fromkeys(list_fields)
    for item in [*items, *({**unset, **row} for row in shared)]:
        payload = item_payload(item, spec, config, "batch")
        if payload["id"] in payloads:
            raise InputError(f"batch: item {payload['id']!r} appears twice")
        payloads[payload["id"]] = payload
    everyone = [str(row["id"]) for row in shared]
    lists = [[*ids, *everyone] for ids in make_lists(list(items), config.lists, config.seed)]
    _check_distribution(config, len(lists))
    _check_practice(config)
    practice = []
    for i, trial in enumerate(config.practice):
        payload = item_payload({"id": f"practice-{i + 1}", **trial.fields}, spec, config, f"practice[{i}]")
        payload["expected"] = trial.expected
        payload["explanation"] = trial.explanation
        practice.append(payload)
    checks = []
    for i, trial in enumerate(config.attention_checks):
        _check_expected(trial, spec, f"attention_checks[{i}]")
        payload = item_payload({"id": f"attention-{i + 1}", **trial.fields}, spec, config, f"attention_checks[{i}]")
        payload["expected"] = trial.expected
        checks.append(payload)
    browser = {
        "title": config.title,
        "task_type": spec.task_type,
        "labels": options,
        "widget": widget,
        "trial": config.trial.model_dump(mode="json"),
        "instructions": config.instructions,
        "consent": config.consent,
        "consent_agree": config.consent_agree,
        "consent_decline": config.consent_decline,
        "demographics": [q.model_dump(mode="json") for q in config.demographics],
        "practice": practice,
        "attention_checks": checks,
        "order": config.order.model_dump(mode="json"),
        "progress_bar": config.progress_bar,
        "min_trial_ms": config.min_trial_ms,
        "completion_message": config.completion_message,
        "completion_url": config.completion_url,
        "device_check": config.device_check,
        "seed": config.seed,
    }
    distribution = {
        **config.distribution.model_dump(mode="json"),
        "n_lists": len(lists),
        "max_participants": config.max_participants,
        "debug_list": config.debug_list,
        "allow_debug_param": config.allow_debug_param,
    }
    return payloads, lists, browser, distribution


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")


def build_study(
    items: Sequence[dict[str, Any]],
    spec: TaskSpec,
    config: ExperimentConfig,
    out_dir: Path,
    *,
    study_key: str,
    provenance: dict[str, Any] | None = None,
    shared: Sequence[dict[str, Any]] = (),
) -> BuiltStudy:
    """Write the study folder at out_dir (replacing an earlier build there, atomically)."""
    payloads, lists, browser, distribution = plan_study(items, spec, config, shared)
    browser["study_key"] = study_key
    distribution["study_key"] = study_key
    modules = npm.check_cache() if config.jspsych_source == "local" else None

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.building-"))
    try:
        files: dict[str, bytes] = {
            "data/config.json": _dump(browser),
            "data/items.json": _dump(payloads),
            "data/lists.json": _dump(lists),
            "data/distribution.json": _dump(distribution),
        }
        for name in STATIC_JS:
            files[f"js/{name}"] = (HERE / "assets" / name).read_bytes()
        for name in STATIC_CSS:
            files[f"css/{name}"] = (HERE / "assets" / name).read_bytes()
        scripts: list[str] = []
        if modules is not None:
            for package in npm.PACKAGES:
                files[f"jspsych/{package.file_name}"] = (modules / package.name / package.dist_path).read_bytes()
                scripts.append(f"jspsych/{package.file_name}")
            files["jspsych/jspsych.css"] = (modules / "jspsych" / npm.CSS_PATH).read_bytes()
            css = "jspsych/jspsych.css"
        else:
            scripts = [package.cdn_url for package in npm.PACKAGES]
            css = npm.CSS_CDN_URL
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, keep_trailing_newline=True
        )
        files["index.html"] = (
            env.get_template("index.html.j2")
            .render(title=config.title, scripts=scripts, css=css, versions={p.name: p.version for p in npm.PACKAGES})
            .encode("utf-8")
        )
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name] + b"\0")
        manifest = {
            "built": utc_now(),
            "study_key": study_key,
            "content_sha256": digest.hexdigest(),
            "task_type": spec.task_type,
            "n_items": len(payloads),
            "list_sizes": [len(lst) for lst in lists],
            "jspsych_source": config.jspsych_source,
            "packages": {p.name: p.version for p in npm.PACKAGES},
            "config": config.model_dump(mode="json"),
            **(provenance or {}),
        }
        files[MANIFEST] = _dump(manifest)
        for name, data in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuiltStudy(
        path=out_dir,
        n_items=len(payloads),
        list_sizes=[len(lst) for lst in lists],
        files=sorted(files),
        study_key=study_key,
    )


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished build onto out_dir; an earlier build is removed only afterwards."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.rename(out_dir, old)
        os.rename(staging, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, out_dir)


def read_manifest(study_dir: Path) -> dict[str, Any]:
    path = Path(study_dir) / MANIFEST
    if not path.is_file():
        raise InputError(f"{study_dir} is not a built study (no {MANIFEST}); run build_jspsych first")
    return json.loads(path.read_text(encoding="utf-8"))
