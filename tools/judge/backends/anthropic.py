"""The `anthropic` backend: Claude through the Messages API, priced from the published list."""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

from alloop.tools.errors import InputError, ServiceError
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

BASE_URL_ENV = "ANTHROPIC_BASE_URL"
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-5-5"

# USD per million tokens (input, output): Anthropic's published list prices (late 2026; Haiku 5.5
# at its rate for prompts up to 100k tokens). A model not listed has an unknown cost: give the
# tool its prices when the run has a judge budget.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "claude-fable-5-1": (10.0, 50.0),
    "claude-fable-5": (10.0, 50.0),
    "claude-mythos-5-1": (10.0, 50.0),
    "claude-mythos-5": (10.0, 50.0),
    "claude-opus-5-5": (4.0, 20.0),
    "claude-opus-5": (5.0, 25.0),
    "claude-opus-4-8": (5.0, 25.0),
    "claude-opus-4-7": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-5-5": (2.0, 10.0),
    "claude-sonnet-5": (2.0, 10.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-5-5": (0.10, 0.50),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
}
_DATED = re.compile(r"-(\d{8}|latest)$")


def price_of(model: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for a Claude model id, dated or not."""
    return PRICES_PER_MTOK.get(_DATED.sub("", model))


class AnthropicBackend:
    """Claude through the Messages API with the official SDK (`pip install alloop[judge]`).

    The key comes from ANTHROPIC_API_KEY only (never an argument, never written anywhere); the
    base URL from ANTHROPIC_BASE_URL when set. The SDK's own retries are off: the engine retries
    every backend the same way, honouring the server's retry-after.
    """

    name: ClassVar[str] = "anthropic"
    max_concurrency: int | None = None
    decoding: str = ""

    def __init__(self, config: BackendConfig) -> None:
        key = os.environ.get(API_KEY_ENV, "").strip()
        if not key:
            raise InputError(
                f"judge backend 'anthropic' needs an API key in the environment variable {API_KEY_ENV}; "
                "set it, or use backend 'sampling' (under an MCP client that offers sampling) or "
                f"'local' (a model path, or '{SMOLLM2_ALIAS}')"
            )
        try:
            import anthropic
        except ImportError as exc:
            raise InputError("judge backend 'anthropic' needs the anthropic SDK: pip install 'alloop[judge]'") from exc
        self._anthropic = anthropic
        self.model = config.model or DEFAULT_ANTHROPIC_MODEL
        listed = price_of(self.model)
        if config.price_input_per_mtok is not None and config.price_output_per_mtok is not None:
            self.prices: tuple[float, float] | None = (config.price_input_per_mtok, config.price_output_per_mtok)
        else:
            self.prices = listed
        self._client = anthropic.Anthropic(api_key=key, base_url=os.environ.get(BASE_URL_ENV) or None, max_retries=0)

    def estimate_cost(self, prompt: Prompt) -> float | None:
        if self.prices is None:
            return None
        chars = len(prompt.system) + sum(len(m["content"]) for m in prompt.messages)
        # A token is rarely shorter than 2 characters of English prose; this errs high.
        return (chars / 2 * self.prices[0] + prompt.max_tokens * self.prices[1]) / 1e6

    def complete(self, prompt: Prompt, *, timeout_s: float, choices: AnswerSpace | None = None) -> Completion:
        anthropic = self._anthropic
        try:
            # No temperature: current SDKs and models take none. Reproducibility comes from the
            # cache and the log, which keep every answer.
            message = self._client.messages.create(
                model=self.model,
                max_tokens=prompt.max_tokens,
                system=prompt.system,
                messages=prompt.messages,  # type: ignore[arg-type]
                timeout=timeout_s,
            )
        except anthropic.APIStatusError as exc:
            status = exc.status_code
            detail = scrub(f"HTTP {status}: {_error_message(exc)}")
            if status in (401, 403):
                raise ServiceError(f"the Anthropic API refused the key ({detail}); check {API_KEY_ENV}") from None
            if status == 404:
                raise ServiceError(
                    f"the Anthropic API does not know model {self.model!r} ({detail}); pick another"
                ) from None
            if status in (408, 409, 429) or status >= 500:
                raise TransientBackendError(detail, _retry_after(exc.response.headers)) from None
            raise BackendError(detail) from None
        except anthropic.APIConnectionError as exc:
            raise TransientBackendError(scrub(f"{type(exc).__name__}: {exc}")) from None
        except (anthropic.APIError, ValueError) as exc:  # a body that is not JSON, or not the documented shape
            raise TransientBackendError(scrub(f"malformed API response: {type(exc).__name__}: {exc}"[:500])) from None
        if not hasattr(message, "content"):  # e.g. a 200 whose body was not a message object
            raise TransientBackendError(f"malformed API response: not a message ({type(message).__name__})")
        texts = [
            getattr(block, "text", "") for block in (message.content or []) if getattr(block, "type", "") == "text"
        ]
        usage = getattr(message, "usage", None)
        tokens_in = getattr(usage, "input_tokens", None)
        tokens_out = getattr(usage, "output_tokens", None)
        cost = None
        if self.prices is not None and tokens_in is not None and tokens_out is not None:
            cost = (tokens_in * self.prices[0] + tokens_out * self.prices[1]) / 1e6
        return Completion(
            text="".join(texts),
            model=getattr(message, "model", None) or self.model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=cost,
            info={"stop_reason": getattr(message, "stop_reason", None), "message_id": getattr(message, "id", None)},
        )


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return f"{error.get('type', 'error')}: {error['message']}"
    return str(getattr(exc, "message", "") or exc)[:300]


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from retry-after-ms or retry-after (seconds; an HTTP date is ignored)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None
