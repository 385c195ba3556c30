"""Start a real Argilla 2.8 server stack on free loopback ports, and stop it again.

The stack is what scripts/setup.d/40-argilla.sh installs: redis-server from Debian, the
noida-db binary (an Elasticsearch 8 API emulator, pinned by hash) as the search engine, and
argilla-server 2.8.0 from its own virtual environment, with SQLite in a temporary folder. An
owner and two annotators are created with known API keys. Used by tests/argilla/conftest.py
and benchmarks/argilla_push_pull.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
SERVER_VENV = Path(os.environ.get("ALLOOP_ARGILLA_VENV", REPO / ".venvs" / "argilla-server"))

OWNER_KEY = "owner.apikey.for.tests"
ANNOTATORS = {"ann1": "ann1.apikey.for.tests", "ann2": "ann2.apikey.for.tests"}
PASSWORD = "12345678"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_python() -> Path:
    return SERVER_VENV / "bin" / "python"


def noida_binary() -> Path:
    found = sorted((SERVER_VENV / "lib").glob("python3*/site-packages/noida_db/noida-db"))
    if not found:
        raise FileNotFoundError(f"noida-db binary not found under {SERVER_VENV}")
    return found[0]


def missing_reason() -> str | None:
    """Why the stack cannot start here, or None when it can."""
    if not server_python().is_file():
        return f"no Argilla server venv at {SERVER_VENV}: run scripts/setup.d/40-argilla.sh"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed: run scripts/setup.d/40-argilla.sh"
    try:
        noida_binary()
    except FileNotFoundError as exc:
        return str(exc)
    return None


@dataclass
class ArgillaStack:
    """A running stack: `url`, the owner's key and the annotators' keys by username."""

    workdir: Path
    url: str = ""
    owner_key: str = OWNER_KEY
    annotator_keys: dict[str, str] = field(default_factory=lambda: dict(ANNOTATORS))
    procs: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.workdir / f"{name}.log"
        self.logs.append(log)
        handle = log.open("wb")
        proc = subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=self.workdir, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def _run(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        done = subprocess.run(argv, env=env, cwd=self.workdir, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def start(self, timeout: float = 180.0) -> ArgillaStack:
        redis_port, es_port, port = free_port(), free_port(), free_port()
        home = self.workdir / "argilla-home"
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ARGILLA_", "VIRTUAL_ENV", "PYTHON"))}
        env.update(
            ARGILLA_HOME_PATH=str(home),
            ARGILLA_SEARCH_ENGINE="elasticsearch",
            ARGILLA_ELASTICSEARCH=f"http://127.0.0.1:{es_port}",
            ARGILLA_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            ARGILLA_ENABLE_TELEMETRY="0",
            HF_HUB_OFFLINE="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            PATH=f"{SERVER_VENV / 'bin'}:{env.get('PATH', '')}",
        )
        py = str(server_python())
        self._spawn(
            "redis",
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            env,
        )
        self._spawn(
            "noida",
            [
                str(noida_binary()),
                "start",
                "--data-dir",
                str(self.workdir / "noida"),
                "--only",
                "elasticsearch",
                "--elasticsearch-port",
                str(es_port),
            ],
            env,
        )
        self._wait_port(es_port, "noida-db (search engine)", timeout)
        self._wait_port(redis_port, "redis", timeout)
        self._run("migrate", [py, "-m", "argilla_server", "database", "migrate"], env)
        users = [("owner", "owner", self.owner_key)] + [
            (name, "annotator", key) for name, key in self.annotator_keys.items()
        ]
        for username, role, key in users:
            self._run(
                f"create user {username}",
                [
                    py,
                    "-m",
                    "argilla_server",
                    "database",
                    "users",
                    "create",
                    "--first-name",
                    username.title(),
                    "--username",
                    username,
                    "--password",
                    PASSWORD,
                    "--role",
                    role,
                    "--api-key",
                    key,
                ],
                env,
            )
        self._spawn(
            "argilla",
            [py, "-m", "argilla_server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            env,
        )
        self.url = f"http://127.0.0.1:{port}"
        self._wait_ready(timeout)
        return self

    def _wait_port(self, port: int, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} did not open port {port} in {timeout:.0f}s; logs: {self.logs}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(httpx.HTTPError):
                reply = httpx.get(f"{self.url}/api/v1/me", headers={"X-Argilla-Api-Key": self.owner_key}, timeout=2)
                if reply.status_code == 200:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"Argilla at {self.url} not ready in {timeout:.0f}s; logs: {self.logs}")

    def _check_alive(self) -> None:
        for proc, log in zip(self.procs, self.logs, strict=False):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs.clear()


@contextlib.contextmanager
def running_stack(keep: bool = False):
    """A started stack in a temporary folder, stopped and removed on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="alloop-argilla-"))
    stack = ArgillaStack(workdir)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":  # python tests/argilla/argilla_stack.py: start one by hand, Ctrl-C stops it
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with running_stack() as running:
        print(f"ARGILLA_API_URL={running.url} ARGILLA_API_KEY={running.owner_key}", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
