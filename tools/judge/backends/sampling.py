"""The `sampling` backend: the MCP client's own model, through the sampler the server sets."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from alloop.tools.errors import InputError
from alloop.tools.judge.answers import AnswerSpace
from alloop.tools.judge.backends.base import (
    API_KEY_ENV,
    SMOLLM2_ALIAS,
    BackendConfig,
    BackendError,
    Completion,
    TransientBackendError,
    scrub,
)
from alloop.tools.judge.rubrics import Prompt


class SamplingBackend:
    """The MCP client's own model, through the server's sampler (its contract: the package docstring)."""

    name: ClassVar[str] = "sampling"
    max_concurrency: int | None = None
    decoding: str = ""

    def __init__(self, config: BackendConfig) -> None:
        if config.sampler is None:
            raise InputError(
                "judge backend 'sampling' needs an MCP client that offers sampling, and this call has "
                f"none; use backend 'anthropic' ({API_KEY_ENV}) or 'local' (a model path, or '{SMOLLM2_ALIAS}')"
            )
        self._sampler = config.sampler
        self.model = config.model or "mcp-client"

    def estimate_cost(self, prompt: Prompt) -> float | None:
        return None

    def complete(self, prompt: Prompt, *, timeout_s: float, choices: AnswerSpace | None = None) -> Completion:
        box: dict[str, Any] = {}

        def ask() -> None:
            try:
                box["reply"] = self._sampler(
                    system=prompt.system, messages=[dict(m) for m in prompt.messages], max_tokens=prompt.max_tokens
                )
            except BaseException as exc:
                box["error"] = exc

        # The sampler blocks on the client; a daemon thread bounds the wait without killing it.
        worker = threading.Thread(target=ask, name="alloop-judge-sampling", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            raise TransientBackendError(f"the MCP client did not answer the sampling request within {timeout_s:g}s")
        error = box.get("error")
        if isinstance(error, BackendError):
            raise error
        if isinstance(error, TimeoutError):
            raise TransientBackendError(scrub(f"sampling timed out: {error}"))
        if error is not None:
            raise BackendError(scrub(f"sampling failed: {type(error).__name__}: {error}"))
        reply = box.get("reply")
        if hasattr(reply, "model_dump"):
            reply = reply.model_dump()
        if not isinstance(reply, dict) or not isinstance(reply.get("text"), str):
            raise BackendError(f"the sampler returned {type(reply).__name__}, not a dict with a 'text' string")
        usage = reply.get("usage") or {}
        return Completion(
            text=reply["text"],
            model=str(reply.get("model") or self.model),
            input_tokens=usage.get("input_tokens"),
            output_tokens=usage.get("output_tokens"),
            cost_usd=None,
            info={"stop_reason": reply.get("stop_reason")},
        )
