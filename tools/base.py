"""What every tool shares: the call context, progress reporting, and the tool's declaration.

A tool is one plain function `fn(args: InputModel, ctx: ToolContext) -> OutputModel`. The MCP
server and the CLI are generated from its `ToolSpec`; neither holds logic of its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alloop.tools.errors import InputError, PathEscapeError, describe_validation
from alloop.tools.run.rundir import RunRoot

if TYPE_CHECKING:
    from alloop.tools.jspsych.jatos import JatosClient

ProgressFn = Callable[[float, float | None, str], None]
"""progress(done, total, message): the MCP server sends notifications, the CLI draws a bar."""


def no_progress(done: float, total: float | None, message: str) -> None:
    """The progress sink when nobody listens."""


def default_jatos_client(url: str | None) -> JatosClient:
    """The real JATOS client (token from $JATOS_TOKEN); imported on use, so the contract stays light."""
    from alloop.tools.jspsych.jatos import JatosClient

    return JatosClient(url)


def utc_clock() -> datetime:
    """The time now, in UTC: what `ToolContext.now` reads unless a test fixes it."""
    return datetime.now(UTC)


@dataclass
class ToolContext:
    """Where a tool runs: the run root and who hears its progress.

    `sampler` is set by the MCP server when its client offers sampling (llm_judge uses it).
    `jatos_client` opens a JATOS client for a server URL (None: $JATOS_URL); the real one reads the
    token from $JATOS_TOKEN only, and tests put a factory for the JATOS double here.
    """

    root: RunRoot
    progress: ProgressFn = no_progress
    sampler: Callable[..., Any] | None = None
    jatos_client: Callable[[str | None], JatosClient] = default_jatos_client
    inputs_anywhere: bool = False
    """True for a person at the CLI; over MCP, input files must lie inside the run root."""
    now: Callable[[], datetime] = utc_clock
    """The clock, so time-based decisions (check_convergence's time cap) can be tested at a fixed time."""

    def input_path(self, path: str) -> Path:
        """An input file named by the caller, confined to the run root unless `inputs_anywhere`."""
        if "\0" in path:
            raise InputError(f"path {path!r} contains a NUL byte; give the file's path as plain text")
        if self.inputs_anywhere:
            return Path(path).expanduser().resolve()
        candidate = (self.root.path / path).resolve()
        if not candidate.is_relative_to(self.root.path):
            raise PathEscapeError(
                f"{path!r} is outside the run root {self.root.path}; copy the file under the root "
                "and give its path relative to it"
            )
        return candidate


Behaviour = Literal["read_only", "writes", "remote"]
"""Tool annotation presets: read_only reads files; writes changes the run; remote talks to a service."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool's declaration, from which both adapters are built."""

    name: str
    fn: Callable[[Any, ToolContext], BaseModel]
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    behaviour: Behaviour = "writes"
    idempotent: bool = False
    positional: tuple[str, ...] = ("run",)
    """Input fields the CLI takes as positional arguments (in order)."""
    cli_aliases: tuple[str, ...] = ()
    """More CLI names for the tool's command (`alloop init` for interview_spec)."""

    @property
    def description(self) -> str:
        """The tool's docstring: when to use it, in a few lines (every MCP client reads it on every turn)."""
        return inspect.cleandoc(self.fn.__doc__ or self.name)

    def parse(self, arguments: dict[str, Any]) -> BaseModel:
        """The input model from plain arguments; a wrong or unknown one is an InputError that names the fix."""
        try:
            return self.input_model.model_validate(arguments)
        except ValidationError as exc:
            described = describe_validation(exc, model=self.input_model, name=self.name)
            raise InputError(f"invalid arguments: {described}") from exc

    def call(self, args: BaseModel | dict[str, Any], ctx: ToolContext) -> BaseModel:
        model = args if isinstance(args, self.input_model) else self.parse(args)
        return self.fn(model, ctx)


class RunArgs(BaseModel):
    """Base input of a tool that works on one run; unknown arguments are refused, never dropped."""

    model_config = ConfigDict(extra="forbid")

    run: str = Field(description="Run name.")
