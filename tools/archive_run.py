"""archive_run: move a run aside so its name is free again; nothing is ever deleted.

A run's pool and held-out set cannot be replaced, so a run made with the wrong ones is
archived and made again. The folder moves to `<root>/.archive/<run>-<UTC time>` whole (labels,
models, notes), where a person can look at it or move it back.
"""

from __future__ import annotations

from pydantic import BaseModel

from alloop.tools.base import RunArgs, ToolContext, ToolSpec


class ArchiveInput(RunArgs):
    pass


class ArchiveOutput(BaseModel):
    run: str
    archived_to: str
    next_step: str

    def summary(self) -> str:
        return f"run {self.run!r} moved to {self.archived_to}; {self.next_step}"


def archive_run(args: ArchiveInput, ctx: ToolContext) -> ArchiveOutput:
    """Move a run (or its unfinished setup) to <root>/.archive/, never deleting it; its name is free again."""
    target = ctx.root.archive(args.run)
    return ArchiveOutput(
        run=args.run,
        archived_to=str(target.relative_to(ctx.root.path)),
        next_step=f"the name {args.run!r} is free: interview_spec makes the run anew",
    )


SPEC = ToolSpec(
    name="archive_run",
    fn=archive_run,
    input_model=ArchiveInput,
    output_model=ArchiveOutput,
    behaviour="writes",
)
