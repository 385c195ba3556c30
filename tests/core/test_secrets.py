"""Secrets never leave in an error, a log line or a tool result, even when a server echoes them.

Each service is met by a real server on 127.0.0.1 that answers every request with an error whose
body echoes the request's headers (as the review's echo_server.py did); the real client code
talks to it unchanged, only its URL points there.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alloop.tools.errors import AlloopError, ServiceError
from alloop.tools.secrets import SecretFilter, install_log_filter, scrub


class EchoServer(ThreadingHTTPServer):
    """Answers every request with `status` and a body listing the request's headers."""

    def __init__(self, status: int, envelope: Callable[[str], bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.status = status
        self.envelope = envelope
        self.sent: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Echo(BaseHTTPRequestHandler):
    server: EchoServer

    def _echo(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        echoed = "".join(f"{name}: {value}\n" for name, value in self.headers.items())
        self.server.sent.append(echoed)
        body = self.server.envelope(echoed)
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _echo

    def log_message(self, *args: object) -> None:  # quiet: the test reads what the client saw
        pass


def plain(echoed: str) -> bytes:
    return f"bad request; you sent:\n{echoed}".encode()


def anthropic_error(echoed: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": echoed}}).encode()


@pytest.fixture
def echo() -> Iterator[Callable[..., EchoServer]]:
    servers: list[EchoServer] = []

    def start(status: int = 500, envelope: Callable[[str], bytes] = plain) -> EchoServer:
        server = EchoServer(status, envelope)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def marker() -> str:
    return uuid.uuid4().hex


async def test_argilla_error_echoing_the_api_key_never_reaches_the_agent(bbc_run, root, echo, monkeypatch, caplog):
    from mcp import Client

    from alloop.app import create_server

    server = echo(status=500)
    key = f"argilla.{marker()}"
    monkeypatch.setenv("ARGILLA_API_URL", server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", key)
    caplog.set_level(logging.DEBUG)
    install_log_filter()  # what `alloop serve` does at start

    async with Client(create_server(root.path)) as client:
        result = await client.call_tool("pull_from_argilla", {"run": bbc_run})

    told = result.content[0].text
    assert key in server.sent[0]  # the server did echo the key back
    assert result.is_error and "X-Argilla-Api-Key: ***" in told  # the echo reached the agent, blanked
    assert key not in told
    assert "pull_from_argilla" in caplog.text and key not in caplog.text  # the server's log of the failure


def test_jatos_error_echoing_the_token_never_reaches_stderr(bbc_run, root, echo):
    """The review's one-line repro: `alloop pull-jatos` against a server that echoes headers."""
    server = echo(status=500)
    token = f"jap_{marker()}"
    env = {**os.environ, "JATOS_URL": server.url, "JATOS_TOKEN": token, "ALLOOP_LOG_LEVEL": "DEBUG"}
    command = ["pull-jatos", bbc_run, "--round", "1", "--study", "1", "--root", str(root.path)]

    done = subprocess.run(
        [sys.executable, "-m", "alloop", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )

    assert server.sent, done.stderr
    assert token in server.sent[0]
    assert done.returncode == 2 and "Authorization: Bearer ***" in done.stderr
    assert token not in done.stderr and token not in done.stdout


def test_a_jatos_token_given_as_an_argument_is_blanked_too(echo, caplog):
    from alloop.tools.jspsych.jatos import JatosClient

    server = echo(status=503)
    token = f"token-{marker()}"  # no secret's shape, not in the environment

    with JatosClient(server.url, token) as client, pytest.raises(ServiceError) as caught:
        client.list_studies()

    assert token in server.sent[0]
    assert "Authorization: Bearer ***" in str(caught.value) and token not in str(caught.value)


def test_anthropic_error_echoing_the_api_key_never_reaches_the_agent(echo, monkeypatch):
    pytest.importorskip("anthropic")
    from alloop.tools.judge.backends import AnthropicBackend, BackendConfig
    from alloop.tools.judge.rubrics import Prompt

    server = echo(status=400, envelope=anthropic_error)
    key = f"sk-ant-{marker()}"
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    backend = AnthropicBackend(BackendConfig(model="claude-haiku-4-5"))

    with pytest.raises(AlloopError) as caught:
        backend.complete(
            Prompt(system="rubric", messages=[{"role": "user", "content": "item"}], max_tokens=5), timeout_s=10
        )

    assert key in server.sent[0]
    assert "Authorization: Bearer ***" in str(caught.value) and key not in str(caught.value)


def test_a_log_line_or_traceback_holding_a_secret_is_scrubbed(monkeypatch, caplog):
    key = f"wandb-{marker()}"
    monkeypatch.setenv("WANDB_API_KEY", key)  # not alloop's: any *_KEY in the environment counts
    caplog.set_level(logging.INFO)
    install_log_filter()
    log = logging.getLogger("alloop.test")

    try:
        raise RuntimeError(f"the server said: {key}")
    except RuntimeError:
        log.exception("calling %s failed", key)

    assert "calling *** failed" in caplog.text
    assert "RuntimeError: the server said: ***" in caplog.text  # the traceback is kept, blanked
    assert key not in caplog.text


def test_the_cli_entry_point_installs_the_filter_for_every_command(monkeypatch, caplog):
    """httpx logs a request's URL, password and all, at INFO: the level the CLI prints."""
    from alloop import cli

    password = marker()
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(sys, "argv", ["alloop", "version"])
    with pytest.raises(SystemExit):
        cli.main()

    logging.getLogger("httpx").info('HTTP Request: GET http://alloop:%s@127.0.0.1:9/x "HTTP/1.1 200 OK"', password)

    assert "http://alloop:***@127.0.0.1:9/x" in caplog.text and password not in caplog.text
    assert any(isinstance(f, SecretFilter) for h in logging.getLogger().handlers for f in h.filters)
    assert any(isinstance(f, SecretFilter) for f in logging.getLogger("uvicorn.error").filters)  # `serve --http`


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("Authorization: Bearer jap_abc", "Authorization: Bearer ***"),
        ('{"X-Argilla-Api-Key": "owner.apikey"}', '{"X-Argilla-Api-Key": "***"}'),
        ("{'x-api-key': 'k-123456'}", "{'x-api-key': '***'}"),
        ("JATOS_TOKEN=abc123 was sent", "JATOS_TOKEN=*** was sent"),
        ("GET /x?token=abc&page=2", "GET /x?token=***&page=2"),
        ("https://alloop:hunter2@argilla.example.org/api", "https://alloop:***@argilla.example.org/api"),
        ("key sk-ant-api03-AbCdEfGh12 refused", "key *** refused"),
        ("the token jap_0123456789abcdef", "the token ***"),
        ("MODAL said modal-secret-value", "MODAL said ***"),
    ],
)
def test_scrub_blanks_secrets_by_value_header_and_shape(text, scrubbed, monkeypatch):
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "modal-secret-value")
    assert scrub(text) == scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "no JATOS API token: create one in JATOS (user menu → API tokens) and set JATOS_TOKEN",
        "Argilla at http://localhost:6900 refused the API key (401): check ARGILLA_API_KEY",
        "label 'short' is not one of the labels",
    ],
)
def test_scrub_leaves_ordinary_messages_alone(text, monkeypatch):
    monkeypatch.setenv("SOME_API_KEY", "short")  # too short to be told from a word: left alone
    assert scrub(text) == text


def test_the_filter_leaves_clean_records_as_they_were():
    record = logging.LogRecord("alloop", logging.INFO, __file__, 1, "trained round %d", (3,), None)
    assert SecretFilter().filter(record) and record.args == (3,) and record.getMessage() == "trained round 3"


def test_a_bug_whose_message_holds_a_key_is_reported_without_it(monkeypatch):
    """The adapters' last line of defence: an unexpected exception's text is scrubbed too."""
    from alloop.tools.errors import unexpected_failure

    monkeypatch.setenv("ARGILLA_API_KEY", "argilla.apikey.abcdef123456")
    report = unexpected_failure("push_to_argilla", RuntimeError("server said: key argilla.apikey.abcdef123456"))
    assert "abcdef123456" not in report and "***" in report


@pytest.mark.parametrize(
    "echo",
    [
        '{"api_key": "unknown-secret-123"}',
        "{'token': 'unknown-secret-123'}",
        "Client(api_key='unknown-secret-123')",
        "password=unknown-secret-123",
        "SOME_SERVICE_TOKEN: unknown-secret-123",
    ],
)
def test_a_secret_alloop_does_not_know_is_still_blanked_by_its_name(echo):
    assert "unknown-secret-123" not in scrub(echo)


@pytest.mark.parametrize("text", ["used 400 tokens: fine", "max_tokens=400", "the secret is out"])
def test_ordinary_words_near_a_secret_s_name_stay(text):
    assert scrub(text) == text
