"""Where the heavy steps run: in this process, or sharded over the pool on Modal's GPUs (spec.compute).

shards.py holds the work of one shard as plain functions; executors.py runs them (locally in
threads, the reference) and retries and merges; modal_app.py is the same functions as a Modal app;
backend.py cuts a step into shards and hands the merged result back for the caller to write.
"""

from alloop.tools.compute.backend import BACKEND_ENV, Backend, backend_for, settings_for
from alloop.tools.compute.executors import Executor, LocalExecutor, ShardError, ShardTimeout, run_shards

__all__ = [
    "BACKEND_ENV",
    "Backend",
    "Executor",
    "LocalExecutor",
    "ShardError",
    "ShardTimeout",
    "backend_for",
    "run_shards",
    "settings_for",
]
