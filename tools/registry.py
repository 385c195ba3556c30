"""Every tool alloop offers, in the order an agent meets them; both adapters read this list.

The list names each tool's module and its one-sentence summary without importing it, so a listing
(`alloop --help`) stays fast; a tool's module, with its models and libraries, is imported when the
tool is used (`tool_named`) or when every spec is wanted (`TOOLS`, built on first use).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from alloop.tools.base import ToolSpec

Area = Literal["setup", "loop", "destinations", "analysis"]
"""Where a tool belongs in a person's work; the CLI groups its help by it."""


@dataclass(frozen=True)
class ToolEntry:
    """A tool as a listing needs it; `summary` is the first sentence of its docstring (a test keeps them equal)."""

    name: str
    summary: str
    area: Area
    aliases: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return f"alloop.tools.{self.name}"

    def load(self) -> ToolSpec:
        """The tool's spec: imports its module (and whatever that module needs)."""
        return importlib.import_module(self.module).SPEC


ENTRIES: tuple[ToolEntry, ...] = (
    ToolEntry(
        "status",
        "Summarize the run (sizes, labels by source, rounds, last results row) and say what to do next.",
        "loop",
    ),
    ToolEntry("interview_spec", "Set up or revise a run's spec.json from the interview answers.", "setup", ("init",)),
    ToolEntry(
        "archive_run",
        "Move a run (or its unfinished setup) to <root>/.archive/, never deleting it; its name is free again.",
        "setup",
    ),
    ToolEntry(
        "seed_set", "Choose the seed items to label first (selection_round_00.jsonl), before any model exists.", "setup"
    ),
    ToolEntry(
        "train_glmm",
        "Train the next round's model on every label so far; its held-out gold_* scores go to results.tsv.",
        "loop",
    ),
    ToolEntry(
        "score_pool",
        "Score the pool and held-out set with a round's model, for select_batch and check_convergence.",
        "loop",
    ),
    ToolEntry(
        "select_batch", "Select the next batch to label (selection_round_XX.jsonl, each item with its reason).", "loop"
    ),
    ToolEntry(
        "export_batch",
        "Write annotation_request_round_XX.{jsonl,csv} in the run: one row per selected item with its text, the "
        "model's suggestion and an empty `label` column to fill in, then import_labels it.",
        "destinations",
    ),
    ToolEntry(
        "push_to_argilla",
        "Send a round's selection to Argilla for people to label; a re-push updates its records.",
        "destinations",
    ),
    ToolEntry(
        "pull_from_argilla",
        "Bring people's answers back from Argilla as labels, with progress per annotator.",
        "destinations",
    ),
    ToolEntry(
        "build_jspsych",
        "Build a jsPsych 8 study for a selection round (or any item set) under experiments/.",
        "destinations",
    ),
    ToolEntry(
        "export_jzip",
        "Pack a built experiment as a JATOS study archive (.jzip); a re-export updates the same study.",
        "destinations",
    ),
    ToolEntry("jatos_import", "Upload an experiment's .jzip to JATOS and create participant links.", "destinations"),
    ToolEntry(
        "pull_jatos", "Bring a JATOS study's results back as labels; pulling twice adds nothing.", "destinations"
    ),
    ToolEntry(
        "import_labels", "Add the labels in a JSONL or CSV file to the run (after export_batch).", "destinations"
    ),
    ToolEntry(
        "simulate_annotator",
        "Answer a selection round from a gold file as simulated people (labels marked simulated).",
        "loop",
    ),
    ToolEntry(
        "simulate",
        "Run seed → (train → score → check_convergence → select → simulated labels) rounds, or go on from where a "
        "run stands (a loop that was stopped or killed resumes; `rounds` counts the run's rounds).",
        "loop",
    ),
    ToolEntry(
        "check_convergence",
        "Decide stop or go, and why: spec.json's stopping rules, and the model's agreement with people beside the "
        "human ceiling (on held-out items two or more people labeled).",
        "loop",
    ),
    ToolEntry(
        "llm_judge",
        "Have an LLM judge label, score, rank or explain items where spec.json allows it; never human gold.",
        "loop",
    ),
    ToolEntry(
        "note",
        "Add a line to the run's notes.md: a surprise, a decision and why (the report shows the notes).",
        "analysis",
    ),
    ToolEntry(
        "write_report",
        "Write report.md, learning_curve.png and report.html from the run's files (gold_* and judge_* kept apart).",
        "analysis",
    ),
)

_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)[.!?](?=\s|$)")


def first_sentence(text: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line: what a listing shows."""
    paragraph = " ".join(text.strip().split("\n\n")[0].split())
    end = _SENTENCE_END.search(paragraph)
    return paragraph[: end.end()] if end else paragraph


def entry_named(name: str) -> ToolEntry:
    for entry in ENTRIES:
        if entry.name == name:
            return entry
    from alloop.tools.errors import InputError  # pydantic comes with it: not for a listing

    raise InputError(f"no tool {name!r}; the tools are {', '.join(entry.name for entry in ENTRIES)}")


def tool_named(name: str) -> ToolSpec:
    return entry_named(name).load()


def __getattr__(name: str) -> list[ToolSpec]:
    """`TOOLS`, every spec in order, imported on first use (PEP 562) and kept."""
    if name != "TOOLS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    tools = [entry.load() for entry in ENTRIES]
    globals()["TOOLS"] = tools
    return tools
