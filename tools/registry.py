"""Every tool alloop offers, in the order an agent meets them; both adapters read this list."""

from __future__ import annotations

from alloop.tools import (
    archive_run,
    build_jspsych,
    check_convergence,
    export_batch,
    export_jzip,
    import_labels,
    interview_spec,
    jatos_import,
    llm_judge,
    note,
    pull_from_argilla,
    pull_jatos,
    push_to_argilla,
    score_pool,
    seed_set,
    select_batch,
    simulate,
    simulate_annotator,
    status,
    train_glmm,
    write_report,
)
from alloop.tools.base import ToolSpec
from alloop.tools.errors import InputError

TOOLS: list[ToolSpec] = [
    status.SPEC,
    interview_spec.SPEC,
    archive_run.SPEC,
    seed_set.SPEC,
    train_glmm.SPEC,
    score_pool.SPEC,
    select_batch.SPEC,
    export_batch.SPEC,
    push_to_argilla.SPEC,
    pull_from_argilla.SPEC,
    build_jspsych.SPEC,
    export_jzip.SPEC,
    jatos_import.SPEC,
    pull_jatos.SPEC,
    import_labels.SPEC,
    simulate_annotator.SPEC,
    simulate.SPEC,
    check_convergence.SPEC,
    llm_judge.SPEC,
    note.SPEC,
    write_report.SPEC,
]


def tool_named(name: str) -> ToolSpec:
    for spec in TOOLS:
        if spec.name == name:
            return spec
    raise InputError(f"no tool {name!r}; the tools are {', '.join(spec.name for spec in TOOLS)}")
