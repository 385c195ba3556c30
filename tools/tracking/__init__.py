"""Experiment tracking: a run's rounds mirrored to Weights & Biases, from the run's files alone.

Off unless a person turns it on (spec.json `tracking.wandb`: off, offline, online). Offline, every
file W&B writes stays under `<run>/wandb/` and nothing leaves the machine; online, the key comes from
$WANDB_API_KEY and is never written anywhere by alloop. Each round is logged once, with `step` =
the round: its results.tsv row (gold_*, judge_*, cv_* and agreement figures in separate namespaces),
its selected batch as a table, and the report's figures with the newest round. `wandb` is imported
only when tracking is on, so the command line and the server start without it.

- `plan`: which rounds are settled and what each one logs (no W&B involved);
- `mode`: whether tracking is on and may run, and turning it on or off in spec.json;
- `ledger`: the record of rounds logged, so a second sync adds nothing;
- `wandb_sync`: the W&B session itself.
"""

from alloop.tools.tracking.mode import configure, ready
from alloop.tools.tracking.wandb_sync import SyncResult, sync

__all__ = ["SyncResult", "configure", "ready", "sync"]
