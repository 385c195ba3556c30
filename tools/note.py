"""note: the agent's line in the run's notes.md, the log a researcher reads beside the report.

The tools log what they did there themselves; what the agent noticed or decided (a class the
model never predicts, a plateau, an annotator who disagrees with everyone, a step skipped and
why) is added with this tool. A note is one line; it is appended and fsynced like every other,
and it takes no lock, so a note can be written while a long step holds the run.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import InputError


class NoteInput(RunArgs):
    text: str = Field(min_length=1, max_length=2000, description="One line: what happened or was decided, and why.")


class NoteOutput(BaseModel):
    run: str
    note: str = Field(description="The line as written (whitespace and line breaks folded).")
    file: str


def note(args: NoteInput, ctx: ToolContext) -> NoteOutput:
    """Add a line to the run's notes.md: a surprise, a decision and why (the report shows the notes)."""
    run = ctx.root.run(args.run)
    text = " ".join(args.text.split())
    if not text:
        raise InputError("the note is blank; give the line to add as `text`")
    run.append_note(text)
    return NoteOutput(run=run.name, note=text, file=run.notes_path.name)


SPEC = ToolSpec(name="note", fn=note, input_model=NoteInput, output_model=NoteOutput, positional=("run", "text"))
