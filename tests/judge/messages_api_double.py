"""A test double of Anthropic's Messages API, served on 127.0.0.1.

Written from Anthropic's documented API (https://docs.anthropic.com/en/api/messages and
https://docs.anthropic.com/en/api/errors), not from the SDK's code:

- `POST /v1/messages` with the key in `x-api-key` (or, as current SDKs send it, in
  `Authorization: Bearer …`), an `anthropic-version` header and a JSON body with
  `model`, `max_tokens`, `messages` and optionally `system`, `temperature`.
- A success is HTTP 200 with `{"id": "msg_…", "type": "message", "role": "assistant", "model",
  "content": [{"type": "text", "text": …}], "stop_reason": "end_turn", "stop_sequence": null,
  "usage": {"input_tokens", "output_tokens"}}` and a `request-id` header.
- An error is `{"type": "error", "error": {"type": …, "message": …}}` with the documented
  status: 400 invalid_request_error, 401 authentication_error, 403 permission_error,
  404 not_found_error, 429 rate_limit_error (with `retry-after` in seconds), 500 api_error,
  529 overloaded_error.

It answers from a script (a queue of canned replies, consumed first) and then from a responder
function given the parsed request. It records every request and the most requests it saw in
flight at once. Only the narrow slice alloop uses is modelled; nothing else is reachable.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
DATA_BLOCK = re.compile(r"<(data-[0-9a-f]{16})>\n(?P<body>.*)\n</\1>", re.DOTALL)


@dataclass
class Reply:
    """A canned reply: a text answer (status 200), an API error, or a raw body."""

    text: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None
    delay_s: float = 0.0


def error(status: int, message: str = "", **headers: str) -> Reply:
    return Reply(
        status=status,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
        raw_body=json.dumps(
            {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message or "error"}}
        ).encode(),
    )


def data_of(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON payload of alloop's data block in the last user message."""
    content = request["messages"][-1]["content"]
    if isinstance(content, list):
        content = "".join(block.get("text", "") for block in content)
    match = DATA_BLOCK.search(content)
    if match is None:
        raise AssertionError("no data block in the user message")
    return json.loads(match.group("body"))


class MessagesAPIDouble:
    """Start with `with MessagesAPIDouble(responder) as api:`; `api.base_url` is the URL."""

    def __init__(self, responder: Callable[[dict[str, Any]], Reply | str] | None = None, api_key: str | None = None):
        self.responder = responder or (lambda request: '{"label": "negative"}')
        self.api_key = api_key
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> MessagesAPIDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                double._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- serving ---------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            length = int(handler.headers.get("content-length", "0"))
            body = handler.rfile.read(length)
            headers = {k.lower(): v for k, v in handler.headers.items()}
            if handler.path.split("?")[0] != "/v1/messages":
                return self._send(handler, error(404, f"no route {handler.path}"))
            bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if self.api_key is not None and self.api_key not in (headers.get("x-api-key"), bearer):
                return self._send(handler, error(401, "invalid x-api-key"))
            if "anthropic-version" not in headers:
                return self._send(handler, error(400, "anthropic-version header is required"))
            try:
                request = json.loads(body)
            except json.JSONDecodeError:
                return self._send(handler, error(400, "body is not JSON"))
            for key in ("model", "max_tokens", "messages"):
                if key not in request:
                    return self._send(handler, error(400, f"{key}: Field required"))
            with self._lock:
                self.requests.append(request)
                self.headers.append(headers)
                reply = self.script.pop(0) if self.script else None
            if reply is None:
                answer = self.responder(request)
                reply = Reply(text=answer) if isinstance(answer, str) else answer
            if reply.delay_s:
                time.sleep(reply.delay_s)
            self._send(handler, reply, request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _send(self, handler: BaseHTTPRequestHandler, reply: Reply, request: dict[str, Any] | None = None) -> None:
        if reply.raw_body is not None:
            payload = reply.raw_body
        else:
            assert request is not None
            prompt_chars = len(json.dumps(request.get("system", ""))) + len(json.dumps(request["messages"]))
            payload = json.dumps(
                {
                    "id": f"msg_{uuid.uuid4().hex[:24]}",
                    "type": "message",
                    "role": "assistant",
                    "model": request["model"],
                    "content": [{"type": "text", "text": reply.text or ""}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": prompt_chars // 4, "output_tokens": max(1, len(reply.text or "") // 4)},
                }
            ).encode()
        handler.send_response(reply.status)
        handler.send_header("content-type", "application/json")
        handler.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
