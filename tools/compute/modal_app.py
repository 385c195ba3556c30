"""Modal: the shard functions as a Modal app, mapped over the shards in Modal's cloud.

`build_app` registers the functions of shards.TASKS unchanged (`serialized=True`: they travel by
reference, so the container imports alloop's own code, added to the image from this checkout) on
an image with alloop's dependencies, with the GPU type and the per-shard timeout of
spec.compute. `ModalExecutor.map` runs a task's shards with `Function.starmap` inside an
ephemeral app (`App.run`), failures coming back as exceptions (`return_exceptions`) for
executors.run_shards to retry; retries are run_shards', so Modal's own are off.

Credentials come from the environment only: MODAL_TOKEN_ID and MODAL_TOKEN_SECRET, which the
modal client reads itself. alloop never writes or logs them (tools/secrets scrubs any *_SECRET).

`local=True` is Modal's own local mode: each shard is a `Function.local()` call in this process,
through the same Function objects the cloud would run. The tests use it, since Modal's cloud
cannot be reached from them.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from alloop.tools.compute.shards import TASKS
from alloop.tools.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import modal

    from alloop.tools.run.schema import ComputeSpec

APP_NAME = "alloop-compute"
CREDENTIALS = ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET")
INSTALL = "install it with `pip install 'alloop[modal]'`"


def _modal() -> Any:
    try:
        import modal
    except ImportError as exc:
        raise InputError(f"compute.backend is 'modal' but the modal package is not installed: {INSTALL}") from exc
    return modal


def require_credentials() -> None:
    """Refuse to start without both tokens in the environment (never from a file alloop writes)."""
    missing = [name for name in CREDENTIALS if not os.environ.get(name, "").strip()]
    if missing:
        raise InputError(
            f"compute.backend is 'modal' but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not "
            "set: export MODAL_TOKEN_ID and "
            "MODAL_TOKEN_SECRET (from `modal token new` or Modal's dashboard) in the environment alloop runs in, "
            "or set compute.backend to 'local'"
        )


def runtime_requirements() -> list[str]:
    """alloop's own dependencies as installed here (no extras): what the container needs to import the shards."""
    requirements = importlib.metadata.requires("alloop") or []
    return [requirement for requirement in requirements if "extra ==" not in requirement]


def image() -> modal.Image:
    """Debian with this Python, alloop's dependencies (torch's CUDA build, from PyPI) and alloop's source."""
    modal = _modal()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"  # serialized functions need the same Python
    return (
        modal.Image.debian_slim(python_version=python)
        .pip_install(*runtime_requirements())
        .add_local_python_source("alloop", "alloop.tools")
    )


def build_app(settings: ComputeSpec) -> tuple[modal.App, dict[str, modal.Function]]:
    """The app and one Modal Function per task, each the plain shard function with the spec's GPU and timeout."""
    modal = _modal()
    app = modal.App(APP_NAME)
    functions = {
        task: app.function(
            image=image(),
            gpu=settings.gpu,
            timeout=settings.timeout_s,
            serialized=True,
            name=f"alloop-{task}",
        )(function)
        for task, function in TASKS.items()
    }
    return app, functions


class ModalExecutor:
    """Shards as Modal function calls: `starmap` in the cloud, or Modal's local mode (`local=True`) here."""

    name = "modal"
    packs_models = True

    def __init__(self, settings: ComputeSpec, local: bool = False) -> None:
        if not local:
            require_credentials()  # before any work, not after the pool is packed
        self.settings = settings
        self.local = local
        self.app, self.functions = build_app(settings)

    def map(self, task: str, inputs: Sequence[tuple[Any, ...]]) -> Iterator[Any]:
        function = self.functions[task]
        if self.local:
            for args in inputs:
                try:
                    yield function.local(*args)
                except Exception as exc:  # an outcome to retry, as the cloud's return_exceptions gives it
                    yield exc
            return
        require_credentials()
        with self.app.run():
            yield from function.starmap(list(inputs), order_outputs=True, return_exceptions=True)
