"""The judge cache: one answer per item, rubric version, judge model, output kind and prompt.

Kept in the run's cache/judge_cache.jsonl (append-only; the last line for a key wins). What is
cached is the backend's raw completion, not the parse, so a stricter parser re-reads old answers
honestly. A cached answer costs nothing the second time and is logged with `cached: true`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alloop.tools.judge.backends import Completion
from alloop.tools.judge.rubrics import sha256
from alloop.tools.run.schema import utc_now


def cache_key(
    item_ids: Sequence[str],
    rubric_name: str,
    rubric_version: str,
    backend: str,
    model: str,
    kind: str,
    prompt_hash: str,
    decoding: str = "",
) -> str:
    """The key: items, rubric (name and version), judge (backend, model, decoding), kind, exact prompt.

    `decoding` (how a backend turns the prompt into an answer, e.g. the local model's constrained
    choice) joins the key only when set, so the keys of backends without one stay as they were.
    """
    parts = [list(item_ids), rubric_name, rubric_version, backend, model, kind, prompt_hash]
    return sha256(json.dumps([*parts, decoding] if decoding else parts))


class JudgeCache:
    """Completions by key, read once, appended as they arrive (thread-safe)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        if enabled and path.is_file():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a crash: that answer is simply asked again
                    if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                        self._entries[entry["key"]] = entry

    def get(self, key: str) -> Completion | None:
        if not self.enabled:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        return Completion(
            text=entry["text"],
            model=entry["model"],
            input_tokens=entry.get("input_tokens"),
            output_tokens=entry.get("output_tokens"),
            cost_usd=0.0,
            info={
                **entry.get("info", {}),
                "cached_from": entry.get("time"),
                "original_cost_usd": entry.get("cost_usd"),
            },
        )

    def put(self, key: str, completion: Completion) -> None:
        if not self.enabled:
            return
        entry = {
            "key": key,
            "text": completion.text,
            "model": completion.model,
            "input_tokens": completion.input_tokens,
            "output_tokens": completion.output_tokens,
            "cost_usd": completion.cost_usd,
            "info": completion.info,
            "time": utc_now(),
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self._entries[key] = entry
