"""Whether tracking is on for a run, whether it can run here, and turning it on or off in spec.json.

spec.json decides (`tracking.wandb`, off by default). W&B's own environment switches can only make
it more private: WANDB_MODE=disabled (or WANDB_DISABLED=true) turns it off, WANDB_MODE=offline keeps
it offline; WANDB_MODE=online cannot turn an offline spec online, so nothing leaves the machine
unless a person wrote `online` into the spec (`alloop track RUN --wandb online`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Mapping

from pydantic import ValidationError

from alloop.tools.errors import InputError, describe_validation
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import TaskSpec, TrackingMode, TrackingSpec

KEY_ENV = "WANDB_API_KEY"
INSTALL = "pip install 'alloop[wandb]'"


def effective_mode(tracking: TrackingSpec, environ: Mapping[str, str] | None = None) -> TrackingMode:
    """The spec's mode, made more private (never less) by W&B's own environment switches."""
    env = os.environ if environ is None else environ
    chosen = tracking.wandb
    wanted = env.get("WANDB_MODE", "").strip().lower()
    if chosen == "off" or wanted in ("disabled", "off") or env.get("WANDB_DISABLED", "").lower() in ("true", "1"):
        return "off"
    if wanted in ("offline", "dryrun"):
        return "offline"
    return chosen


def ready(spec: TaskSpec) -> TrackingMode:
    """The mode a sync would use; raises before anything is written when it is on but cannot run here."""
    mode = effective_mode(spec.tracking)
    if mode == "off":
        return mode
    if importlib.util.find_spec("wandb") is None:
        raise InputError(
            f"run {spec.run!r} has W&B tracking {mode} but wandb is not installed: {INSTALL}, "
            f"or turn it off with `alloop track {spec.run} --wandb off`"
        )
    if mode == "online" and not os.environ.get(KEY_ENV, "").strip():
        raise InputError(
            f"run {spec.run!r} has W&B tracking online, which needs the API key in ${KEY_ENV} "
            f"(alloop reads it from there only and never stores it); set it, or use `--wandb offline`"
        )
    return mode


def wandb_run_id(spec: TaskSpec) -> str:
    """A W&B run id that is the same on every sync of this run and differs for another run of that name."""
    digest = hashlib.sha256(f"{spec.run}\n{spec.created}".encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_-]', '-', spec.run)[:40]}-{digest}"


def configure(
    run: RunDir, wandb: TrackingMode | None = None, project: str | None = None, entity: str | None = None
) -> TaskSpec:
    """Change spec.json's tracking block (a new spec version, with the reason in notes.md); unchanged: no write.

    Turning tracking on is refused, and nothing is written, when wandb is missing or an online
    sync would have no key.
    """
    with run.lock():
        spec = run.spec()
        changes = {k: v for k, v in {"wandb": wandb, "project": project, "entity": entity}.items() if v is not None}
        try:
            tracking = TrackingSpec.model_validate({**spec.tracking.model_dump(), **changes})
        except ValidationError as exc:
            raise InputError(describe_validation(exc, "tracking", model=TrackingSpec)) from exc
        if tracking == spec.tracking:
            return spec
        changed = spec.model_copy(update={"tracking": tracking})
        ready(changed)
        where = f"project {tracking.project}" + (f", entity {tracking.entity}" if tracking.entity else "")
        return run.write_spec(changed, f"tracking: W&B {tracking.wandb} ({where})")
