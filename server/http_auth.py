"""Who may call the HTTP transport: holders of the server's bearer token, from this machine by default.

Without a token, any local process or user could drive every tool on the root over
`http://127.0.0.1:<port>/mcp` (loopback is shared by everyone on the machine). The token is the
user's to copy into the client's config: it comes from $ALLOOP_HTTP_TOKEN, or is made at start and
written once to stderr, never to a file or a log record (and `hold` keeps it out of any log line
that might quote it). The check itself is the MCP SDK's bearer middleware, which answers 401 with
`WWW-Authenticate: Bearer …`; alloop supplies the one-token verifier.

Binding an address other devices can reach is refused unless asked for explicitly.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
import sys
from typing import Any, TextIO

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl

from alloop.tools.errors import InputError
from alloop.tools.secrets import hold

TOKEN_ENV = "ALLOOP_HTTP_TOKEN"
MIN_TOKEN_LENGTH = 16
CLIENT_ID = "alloop-http-client"
log = logging.getLogger("alloop.http")


class FixedToken:
    """The SDK's TokenVerifier for one shared token, compared in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token.encode(), self._token):
            return None
        return AccessToken(token=token, client_id=CLIENT_ID, scopes=[])


def bearer_auth(token: str) -> dict[str, Any]:
    """MCPServer keyword arguments that make its HTTP app require `Authorization: Bearer <token>`.

    The SDK's AuthSettings are shaped for OAuth: `issuer_url` is required, but with no
    authorization-server provider and no `resource_server_url` it is never published or used.
    """
    settings = AuthSettings(issuer_url=AnyHttpUrl("http://127.0.0.1"), resource_server_url=None)
    return {"auth": settings, "token_verifier": FixedToken(token)}


def server_token(stderr: TextIO | None = None) -> str:
    """The token clients must send: $ALLOOP_HTTP_TOKEN, or a new one written once to stderr.

    Written directly, not logged: log records may be kept, and the secrets filter would blank it.
    """
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        if len(token) < MIN_TOKEN_LENGTH:
            raise InputError(
                f"${TOKEN_ENV} is {len(token)} characters; use at least {MIN_TOKEN_LENGTH} "
                "(or unset it and alloop makes one)"
            )
        hold(token)
        log.info("HTTP clients must send the bearer token from $%s", TOKEN_ENV)
        return token
    token = secrets.token_urlsafe(32)
    hold(token)
    stream = stderr or sys.stderr
    stream.write(
        f"alloop: HTTP clients must send 'Authorization: Bearer {token}' "
        f"(made for this server only; set ${TOKEN_ENV} to choose one)\n"
    )
    stream.flush()
    return token


def warn_no_auth() -> None:
    log.warning("--no-auth: the HTTP transport accepts any request; any process that reaches it can call every tool")


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name may resolve to anything


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback address unless `allow_remote`; with it, warn."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise InputError(
            f"--host {host} is not a loopback address: other machines could reach the server and call every tool "
            "(the token travels unencrypted over plain HTTP). Pass --allow-remote to bind it anyway, "
            "or use 127.0.0.1"
        )
    log.warning(
        "--allow-remote: serving on %s, reachable beyond this machine over plain HTTP (no TLS); "
        "the Host/Origin checks apply to loopback only",
        host,
    )
