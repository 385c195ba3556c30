"""Tool jatos_import: upload an exported study archive to JATOS and hand back participant links.

Import experiments/<round_XX or name>.jzip into JATOS (3.8/3.9 or 3.10+ endpoint) and create
participant links. Re-importing the same experiment updates the study (same UUID). For Prolific, use
one general-single link with `prolific_suffix` appended. Needs JATOS_TOKEN (and JATOS_URL) in the
environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from alloop.tools.base import ToolContext, ToolSpec
from alloop.tools.errors import StateError
from alloop.tools.jspsych.experiments import JatosArgs
from alloop.tools.jspsych.jzip import read_jzip


class JatosImportInput(JatosArgs):
    link_type: Literal["gs", "gm", "ps", "pm", "none"] = Field(
        "gs", description="General single (one link, for Prolific) or multiple, personal single or multiple, none."
    )
    n_links: int = Field(1, ge=1, le=1000, description="Personal links to create.")


class JatosImportOutput(BaseModel):
    run: str
    study_uuid: str
    study_id: int | None
    links: list[str]
    prolific_suffix: str = "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"


def jatos_import(args: JatosImportInput, ctx: ToolContext) -> JatosImportOutput:
    """Upload an experiment's .jzip to JATOS and create participant links.

    For Prolific: one general-single link, `prolific_suffix` appended. Needs JATOS_TOKEN (and JATOS_URL).
    """
    run = ctx.root.run(args.run)
    name = args.experiment
    path = run.experiment_archive(name)
    if not path.is_file():
        raise StateError(f"run {run.name!r} has no experiments/{name}.jzip; run export_jzip first")
    data = path.read_bytes()
    archive = read_jzip(data)
    with ctx.jatos_client(args.jatos_url) as client:
        answer = client.import_study(data, filename=path.name)
        study = client.get_study(archive.uuid)
        links = (
            []
            if args.link_type == "none"
            else client.participant_links(archive.uuid, args.link_type, amount=args.n_links)
        )
    with run.lock():
        run.append_note(f"jatos_import: {name}.jzip → JATOS study {study.get('id')} ({archive.uuid})")
    study_id = study.get("id", answer.get("id"))
    return JatosImportOutput(
        run=run.name, study_uuid=archive.uuid, study_id=int(study_id) if study_id is not None else None, links=links
    )


SPEC = ToolSpec(
    name="jatos_import",
    fn=jatos_import,
    input_model=JatosImportInput,
    output_model=JatosImportOutput,
    behaviour="remote",
)
