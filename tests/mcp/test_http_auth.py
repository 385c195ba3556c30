"""The HTTP transport answers only the holder of the server's token, on loopback, and drops calls whose client left.

Each test is named for what the reliability review (§7) found: any local process could call every
tool, `--host` bound any address without a warning, and a call whose client disconnected went on
holding the run.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from alloop import app
from alloop.http_auth import TOKEN_ENV, check_bind, is_loopback, server_token
from alloop.tools.errors import InputError

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}},
}
CALL_STATUS = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "status", "arguments": {}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def connect(url: str, token: str, mode: str = "auto") -> AsyncIterator[Client]:
    """The SDK's streamable HTTP client, sending the token as its client config would."""
    async with (
        httpx2.AsyncClient(headers=bearer(token), timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


@dataclass
class Served:
    url: str
    token: str
    log: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """`alloop serve --transport http` in a subprocess, logging at DEBUG; stdout and stderr kept as its log."""
    folder = tmp_path_factory.mktemp("http")
    port, log = free_port(), folder / "server.log"
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    env |= {"PYTHONUNBUFFERED": "1", "ALLOOP_LOG_LEVEL": "DEBUG"}
    command = [sys.executable, "-m", "alloop", "serve", "--transport", "http", "--port", str(port)]
    with log.open("w") as sink:
        process = subprocess.Popen([*command, "--root", str(folder / "runs")], stdout=sink, stderr=sink, env=env)
    try:
        deadline, token = time.monotonic() + 60, None
        while time.monotonic() < deadline and process.poll() is None:
            token = token or next(iter(re.findall(r"Bearer (\S+)'", log.read_text())), None)
            with socket.socket() as s:
                if token and s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        assert token, log.read_text()
        yield Served(f"http://127.0.0.1:{port}/mcp", token, log)
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_any_local_process_can_call_every_tool__not_without_the_token(served):
    wrong = [bearer("not-the-token-" + "x" * 30), bearer(served.token[:-1]), {"Authorization": served.token}]
    for headers in [{}, *wrong]:
        for message in (INITIALIZE, CALL_STATUS):
            response = httpx.post(served.url, json=message, headers=ACCEPT | headers, timeout=30)
            assert response.status_code == 401, (headers, message, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer ")


async def test_the_token_holder_lists_the_tools(served):
    async with connect(served.url, served.token) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert {"status", "interview_spec", "train_glmm", "select_batch"} <= names


async def test_the_token_never_reaches_the_server_log(served):
    httpx.post(served.url, json=INITIALIZE, headers=ACCEPT, timeout=30)
    httpx.post(served.url, json=INITIALIZE, headers=ACCEPT | bearer(served.token + "0"), timeout=30)
    async with connect(served.url, served.token, mode="legacy") as client:
        await client.list_tools()
    log = served.log.read_text()
    assert "401 Unauthorized" in log and "200 OK" in log  # the log did record the requests above
    printed = [line for line in log.splitlines() if served.token in line]
    assert len(printed) == 1 and printed[0].startswith("alloop: HTTP clients must send")


def test_the_token_is_made_at_start_and_printed_once(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    first, second = StringIO(), StringIO()
    token = server_token(first)
    assert len(token) >= 32 and token != server_token(second)
    assert first.getvalue().count(token) == 1 and first.getvalue().count("\n") == 1


def test_the_token_from_the_environment_is_used_and_not_printed(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "a-token-the-user-chose-42")
    stderr = StringIO()
    assert server_token(stderr) == "a-token-the-user-chose-42"
    assert stderr.getvalue() == ""
    monkeypatch.setenv(TOKEN_ENV, "short")
    with pytest.raises(InputError, match="at least 16"):
        server_token(stderr)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("10.0.0.5", False),
        ("myhost.example.com", False),
    ],
)
def test_binds_any_address_without_a_warning__only_loopback_by_default(host, loopback, caplog):
    assert is_loopback(host) is loopback
    if not loopback:
        with pytest.raises(InputError, match=r"not a loopback address.*--allow-remote"):
            check_bind(host, allow_remote=False)
        check_bind(host, allow_remote=True)
        assert "--allow-remote" in caplog.text and host in caplog.text


def test_binds_any_address_without_a_warning__the_command_refuses(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "alloop", "serve", "--transport", "http", "--host", "0.0.0.0", "--port", str(port)]
    done = subprocess.run([*command, "--root", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "not a loopback address" in done.stderr and "--allow-remote" in done.stderr
    assert "Bearer" not in done.stderr  # refused before a token was made


# A call whose client goes away: the same stand-in as tests/mcp/test_long_calls.py, served over HTTP.

TOKEN = "a-fixed-token-for-the-in-process-server"


@asynccontextmanager
async def serving(root: Path) -> AsyncIterator[str]:
    """The alloop server with the stand-in, behind its token, served by uvicorn on a free port; yields the URL."""
    server = app.create_server(root, http_token=TOKEN)
    port = free_port()
    config = uvicorn.Config(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(uv.serve)
        while not uv.started:
            await anyio.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
        uv.should_exit = True


async def test_a_call_whose_http_client_disconnects_releases_the_run(root, stand_in):
    async def client_that_leaves(url: str, task_status=anyio.TASK_STATUS_IGNORED):
        async with connect(url, TOKEN) as client, anyio.create_task_group() as calls:
            await stand_in.start_long_call(client, calls)
            task_status.started()
            await anyio.sleep_forever()

    with anyio.fail_after(60):
        async with serving(root.path) as url:
            async with anyio.create_task_group() as session:
                await session.start(client_that_leaves, url)
                session.cancel_scope.cancel()  # the client goes away mid-call: its connection closes

            async with connect(url, TOKEN) as client:
                assert (await stand_in.revise(client))["written"]
    assert stand_in.endings == ["stopped"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_call_the_http_client_cancels_releases_the_run(root, stand_in, mode):
    with anyio.fail_after(60):
        async with serving(root.path) as url, connect(url, TOKEN, mode=mode) as client:
            async with anyio.create_task_group() as calls:
                await stand_in.start_long_call(client, calls)
                calls.cancel_scope.cancel()

            assert (await stand_in.revise(client))["written"]
    assert stand_in.endings == ["stopped"]
