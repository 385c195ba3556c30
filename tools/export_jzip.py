"""Tool export_jzip: pack a built jsPsych study as a JATOS study archive (.jzip).

The archive holds one .jas file (format version 3) and the study folder; the study, component and
batch UUIDs are derived from the run and experiment, so importing a re-export into JATOS updates the
study instead of creating a second one. The batch's maxTotalWorkers follows the experiment's
max_participants, and the Prolific completion URL (if any) becomes the study's end redirect. The
archive is validated against JATOS's import rules before it is written. Next: import it
(jatos_import, or JATOS's GUI).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from alloop.tools.base import ToolContext, ToolSpec
from alloop.tools.errors import StateError
from alloop.tools.jspsych.build import read_manifest
from alloop.tools.jspsych.experiments import ExperimentArgs
from alloop.tools.jspsych.jzip import ILLEGAL_IN_FILENAME, jas_document, pack_jzip, read_jzip, study_uuids
from alloop.tools.run.rundir import atomic_write_bytes


class ExportJzipInput(ExperimentArgs):
    title: str | None = Field(None, description="Study title in JATOS (default: the experiment's title).")


class ExportJzipOutput(BaseModel):
    run: str
    experiment: str
    path: str = Field(description="The .jzip file, ready for JATOS's import.")
    study_uuid: str
    dir_name: str
    n_files: int
    bytes: int
    next_step: str


def assets_dir_name(run: str, experiment: str) -> str:
    """A legal, stable JATOS assets folder name for the run's experiment."""
    return ILLEGAL_IN_FILENAME.sub("_", f"alloop_{run}_{experiment}")[:100]


def export_jzip(args: ExportJzipInput, ctx: ToolContext) -> ExportJzipOutput:
    """Pack a built experiment as a JATOS study archive (.jzip); a re-export updates the same study.

    Next: jatos_import (or JATOS's GUI).
    """
    run = ctx.root.run(args.run)
    name = args.experiment
    study_dir = run.experiment_dir(name)
    if not (study_dir / "index.html").is_file():
        raise StateError(f"run {run.name!r} has no built experiment {name!r}; run build_jspsych first")
    manifest = read_manifest(study_dir)
    config = manifest.get("config", {})
    title = args.title or config.get("title") or f"alloop {run.name} {name}"
    title = re.sub(r"[<>]", "", title).strip()[:255] or f"alloop {run.name} {name}"
    uuids = study_uuids(run.name, name)
    code = config.get("prolific_completion_code")
    dir_name = assets_dir_name(run.name, name)
    document = jas_document(
        uuids=uuids,
        title=title,
        dir_name=dir_name,
        description=re.sub(r"[<>]", "", config.get("description") or "")
        or f"Built by alloop from run {run.name}, {name}.",
        comments=f"alloop run={run.name} experiment={name} content_sha256={manifest.get('content_sha256', '')}",
        end_redirect_url=f"https://app.prolific.com/submissions/complete?cc={code}" if code else None,
        max_total_workers=config.get("max_participants"),
    )
    data = pack_jzip(study_dir, document)
    archive = read_jzip(data)
    target = run.experiment_archive(name)
    with run.lock():
        atomic_write_bytes(target, data)
        run.append_note(f"export_jzip: experiments/{name}.jzip (study {uuids['study']})")
    return ExportJzipOutput(
        run=run.name,
        experiment=name,
        path=str(target),
        study_uuid=uuids["study"],
        dir_name=dir_name,
        n_files=len(archive.files),
        bytes=len(data),
        next_step="import the .jzip into JATOS (jatos_import with JATOS_URL and JATOS_TOKEN set, or the GUI)",
    )


SPEC = ToolSpec(
    name="export_jzip",
    fn=export_jzip,
    input_model=ExportJzipInput,
    output_model=ExportJzipOutput,
    behaviour="writes",
    idempotent=True,
)
