"""Secrets out of every text alloop shows: errors, log lines and tool results.

alloop reads its secrets from the environment only (ARGILLA_API_KEY, JATOS_TOKEN,
ANTHROPIC_API_KEY). A server that echoes a request's headers in its error body would hand them
on to stderr, the server log and, through a tool result, the LLM client. `scrub` blanks with
`***`, in any text:

- the value of each secret environment variable: those alloop reads, and any other whose name
  ends in _KEY, _TOKEN, _SECRET or _PASSWORD (WANDB_API_KEY, MODAL_TOKEN_SECRET, ...);
- values a client was handed as arguments and registered with `hold`;
- credential headers and assignments, however an echo quotes them (`Authorization: Bearer …`,
  `X-Argilla-Api-Key: …`, `"x-api-key": "…"`, `JATOS_TOKEN=…`, `?token=…`);
- token shapes that are secret wherever they appear (Anthropic `sk-ant-…`, JATOS `jap_…`) and
  the password of a URL (`https://user:pass@host`).

The service clients build every ServiceError message through `scrub`; `install_log_filter`
puts `SecretFilter` on the log handlers, so log lines and tracebacks are scrubbed too.
"""

from __future__ import annotations

import logging
import os
import re

MASK = "***"
SECRET_ENV = ("ARGILLA_API_KEY", "JATOS_TOKEN", "ANTHROPIC_API_KEY")
"""The secrets alloop itself reads; any other variable with a secret's name is blanked too."""
MIN_SECRET_LENGTH = 8
"""Shorter values are left alone: blanking every `test` or `1234` would garble ordinary text,
and a credential header still loses its value by its name."""

_SECRET_NAME = re.compile(r"(?:^|_)(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD)$")
_HEADER = re.compile(
    r"""(?ix)
    (\b(?:proxy-)?authorization|\bx-[a-z0-9-]*(?:api-?key|token|secret|auth)[a-z0-9-]*)  # the header's name
    (["']?\s*[:=]\s*["']?)                                                                 # `: `, `": "`, `=`
    ((?:bearer|basic|token|digest)\s+)?                                                    # the scheme stays
    [^\s"',;}\]]+
    """
)
_ASSIGNMENT = re.compile(
    r"""(?x)
    (\b[A-Z][A-Z0-9_]*(?:_KEY|_TOKEN|_SECRET|_PASSWORD)["']?\s*[:=]\s*["']?            # JATOS_TOKEN=..., KEY: ...
    |[?&](?i:api[-_]?key|access[-_]?token|token|secret|password)=)                      # ?token=...
    [^\s"'&,;]+
    """
)
_QUOTED_KEY = re.compile(
    r"""(?ix)
    ((?:["'](?:api[-_]?key|access[-_]?token|token|secret|password)["']\s*[:=]           # {"api_key": ...
    |\b(?:api[-_]?key|access[-_]?token|token|secret|password)\s*=)\s*["']?)            # api_key='...'
    [^\s"',;&}\])]+
    """
)
_SHAPES = re.compile(r"\bsk-ant-[A-Za-z0-9_-]{8,}|\bjap_[A-Za-z0-9_]{8,}")
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]+@")

_held: set[str] = set()


def hold(value: str | None) -> None:
    """Scrub this value from now on (a token given as an argument rather than the environment)."""
    if value and len(value.strip()) >= MIN_SECRET_LENGTH:
        _held.add(value.strip())


def secret_values() -> list[str]:
    """The secrets in the environment now and those held, longest first (so none is left half shown)."""
    found = set(_held)
    for name, value in os.environ.items():
        if (name in SECRET_ENV or _SECRET_NAME.search(name.upper())) and len(value.strip()) >= MIN_SECRET_LENGTH:
            found.add(value.strip())
    return sorted(found, key=len, reverse=True)


def scrub(text: str) -> str:
    """The text with every secret value, credential header and token shape replaced by `***`."""
    for value in secret_values():
        text = text.replace(value, MASK)
    text = _HEADER.sub(lambda m: f"{m[1]}{m[2]}{m[3] or ''}{MASK}", text)
    text = _ASSIGNMENT.sub(lambda m: f"{m[1]}{MASK}", text)
    text = _QUOTED_KEY.sub(lambda m: f"{m[1]}{MASK}", text)
    text = _SHAPES.sub(MASK, text)
    return _URL_PASSWORD.sub(rf"\1:{MASK}@", text)


class SecretFilter(logging.Filter):
    """Scrubs a log record in place, its message, traceback and stack alike; drops nothing.

    A traceback that held a secret is kept as scrubbed text (`exc_text`) and its `exc_info`
    cleared, so no handler can render the original from the exception again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: logging reports it; there is no text to scrub
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            clean = scrub(record.exc_text)
            if clean != record.exc_text:
                record.exc_text, record.exc_info = clean, None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


_FILTER = SecretFilter()


_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
"""Loggers that the HTTP transport's server gives handlers of their own, set up after start-up
and not propagating to the root: their records are scrubbed on the logger itself."""


def install_log_filter() -> None:
    """Scrub every log record alloop's processes emit; calling it again adds nothing.

    The filter goes on the root logger's handlers, where the alloop loggers, the MCP server's
    and httpx's records end: a logger's own filters see only the records logged on it, never
    those of its children. The HTTP server's loggers, which keep to their own handlers, get it
    on the logger.
    """
    targets = [*logging.getLogger().handlers, *(logging.getLogger(name) for name in _OWN_HANDLERS)]
    for target in targets:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
