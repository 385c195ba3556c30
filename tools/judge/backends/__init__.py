"""Judge backends: one interface, a registry by name.

| name        | answers with                                       | needs             | cost               |
|-------------|----------------------------------------------------|-------------------|--------------------|
| `anthropic` | Claude, the Messages API through the anthropic SDK | ANTHROPIC_API_KEY | usage × list price |
| `sampling`  | the MCP client's own model (MCP sampling)          | a client offering it | unknown (client's) |
| `local`     | a GGUF file or Hugging Face causal LM from a path  | the model files   | 0                  |

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

The local backend bounds its work by `max_tokens`, not by `timeout_s`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import ClassVar, Protocol

from alloop.tools.errors import InputError
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
from alloop.tools.judge.backends.sampling import SamplingBackend
from alloop.tools.judge.rubrics import Prompt

__all__ = [
    "BACKENDS",
    "AnthropicBackend",
    "BackendConfig",
    "BackendError",
    "Completion",
    "JudgeBackend",
    "LocalBackend",
    "SamplingBackend",
    "TransientBackendError",
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

    def complete(self, prompt: Prompt, *, timeout_s: float, choices: list[str] | None = None) -> Completion:
        """Answer one prompt. `choices`: answers the backend may constrain itself to, if it can."""
        ...

    def estimate_cost(self, prompt: Prompt) -> float | None:
        """An upper estimate of one call's cost in USD (None: unknown), for the budget."""
        ...


BACKENDS: dict[str, Callable[[BackendConfig], JudgeBackend]] = {
    "anthropic": AnthropicBackend,
    "sampling": SamplingBackend,
    "local": LocalBackend,
}


def pick_backend_name(requested: str | None, config: BackendConfig) -> str:
    """The backend to use: the one asked for, else the first available of anthropic, sampling, local."""
    if requested:
        if requested not in BACKENDS:
            raise InputError(f"unknown judge backend {requested!r}; choose one of {sorted(BACKENDS)}")
        return requested
    if os.environ.get(API_KEY_ENV, "").strip():
        return "anthropic"
    if config.sampler is not None:
        return "sampling"
    if config.local_model or os.environ.get(LOCAL_MODEL_ENV):
        return "local"
    raise InputError(
        "no judge backend is available: set ANTHROPIC_API_KEY for 'anthropic', run under an MCP client "
        f"that offers sampling for 'sampling', or give a local model (local_model, ${LOCAL_MODEL_ENV}, "
        f"or '{SMOLLM2_ALIAS}') for 'local'"
    )


def make_backend(name: str, config: BackendConfig) -> JudgeBackend:
    return BACKENDS[name](config)
