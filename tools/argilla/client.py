"""The connection to an Argilla 2.x server: where records live, the environment, errors, HTTP.

The server and key come only from ARGILLA_API_URL and ARGILLA_API_KEY in the environment;
neither is written to the run directory nor logged. REST calls go through `Argilla.request`,
which turns every transport or HTTP failure into a ServiceError or InputError naming the URL
(never the key). Every such message passes alloop.tools.secrets.scrub: a server's error body can
echo the request's headers, the key among them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alloop.tools.base import ProgressFn, no_progress
from alloop.tools.errors import AlloopError, InputError, ServiceError
from alloop.tools.secrets import hold, scrub

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from alloop.tools.run.rundir import RunDir

ENV_URL = "ARGILLA_API_URL"
ENV_KEY = "ARGILLA_API_KEY"
DESTINATION = "argilla"
DEFAULT_WORKSPACE = "alloop"
LIST_PAGE = 1000  # the server's largest page for GET /datasets/{id}/records

_WORKSPACE_OK = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Target:
    """Where a run's records live in Argilla."""

    dataset: str
    workspace: str

    def __post_init__(self) -> None:
        if not self.dataset or len(self.dataset) > 200:
            raise InputError(f"Argilla dataset name {self.dataset!r} must have 1 to 200 characters")
        if not _WORKSPACE_OK.match(self.workspace):
            raise InputError(f"Argilla workspace name {self.workspace!r} may hold only letters, digits, '_' and '-'")


def target_for(run: RunDir, dataset: str | None = None, workspace: str | None = None) -> Target:
    """The dataset and workspace: the arguments, else what the run used before, else defaults."""
    before = run.destinations().get(DESTINATION) or {}
    return Target(
        dataset=dataset or before.get("dataset") or run.name,
        workspace=workspace or before.get("workspace") or DEFAULT_WORKSPACE,
    )


class _HideServer(logging.Filter):
    """Drops httpx/httpcore log records about requests to the Argilla server: they carry its URL,
    which alloop never logs (the key is never in them: headers are not logged)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.url = url
        self.host = f"host='{parts.hostname}'"
        self.port = f"port={parts.port or (443 if parts.scheme == 'https' else 80)}"

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to judge
            return True
        return not (self.url in message or (self.host in message and self.port in message))


_TRANSPORT_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy")


class Argilla:
    """A connection to an Argilla server from ARGILLA_API_URL / ARGILLA_API_KEY.

    REST calls go through `request`, which turns every transport or HTTP failure into a
    ServiceError or InputError naming the URL (never the key). `sdk` is the argilla SDK client,
    made on first use, for what the SDK does soundly here: making a dataset from its settings.
    """

    def __init__(self, url: str, key: str, timeout: float = 60.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._key = key
        hold(key)
        self.http: httpx.Client = httpx.Client(
            base_url=self.url, headers={"X-Argilla-Api-Key": key}, timeout=httpx.Timeout(timeout, connect=10.0)
        )
        self._sdk: Any = None
        self.me: dict[str, Any] = {}
        self._hide = _HideServer(self.url)
        for name in _TRANSPORT_LOGGERS:
            logging.getLogger(name).addFilter(self._hide)

    def __repr__(self) -> str:
        return f"Argilla({self.url!r})"

    @classmethod
    def from_env(cls, timeout: float = 60.0) -> Argilla:
        url = os.environ.get(ENV_URL, "").strip()
        key = os.environ.get(ENV_KEY, "").strip()
        missing = [name for name, value in ((ENV_URL, url), (ENV_KEY, key)) if not value]
        if missing:
            raise ServiceError(
                scrub(
                    f"{' and '.join(missing)} not set: export the Argilla server's URL as {ENV_URL} and an "
                    f"owner's or admin's API key as {ENV_KEY} in the environment of alloop (never as arguments)"
                )
            )
        if not url.startswith(("http://", "https://")):
            raise ServiceError(
                scrub(
                    f"{ENV_URL}={url!r} is not an http(s) URL; set it to the Argilla server, e.g. http://localhost:6900"
                )
            )
        client = cls(url, key, timeout)
        try:
            client.check()
        except BaseException:
            client.close()
            raise
        return client

    def close(self) -> None:
        self.http.close()
        if self._sdk is not None:
            with contextlib.suppress(Exception):
                self._sdk.http_client.close()
        for name in _TRANSPORT_LOGGERS:
            logging.getLogger(name).removeFilter(self._hide)

    def __enter__(self) -> Argilla:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- REST ------------------------------------------------------------------------------
    def request(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        import httpx

        try:
            reply = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ServiceError(
                scrub(
                    f"Argilla at {self.url} did not answer in time while trying to {what} "
                    f"({type(exc).__name__}); is it overloaded or down?"
                )
            ) from exc
        except httpx.HTTPError as exc:
            raise ServiceError(
                scrub(
                    f"cannot reach Argilla at {self.url} to {what} ({exc.__class__.__name__}: {exc}); "
                    f"is the server running and is {ENV_URL} right?"
                )
            ) from exc
        return self._json(reply, what)

    def _json(self, reply: httpx.Response, what: str) -> Any:
        status = reply.status_code
        detail = _detail(reply)
        if status == 401:
            raise ServiceError(
                scrub(f"Argilla at {self.url} refused the API key (401) while trying to {what}: check {ENV_KEY}")
            )
        if status == 403:
            who = self.me.get("username", "this key's user")
            raise ServiceError(
                scrub(
                    f"Argilla at {self.url}: {who} (role {self.me.get('role', '?')}) may not {what} (403); "
                    "use an owner's or admin's API key"
                )
            )
        if status == 422:
            raise InputError(scrub(f"Argilla at {self.url} rejected the request to {what} (422): {detail}"))
        if status >= 400:
            raise ServiceError(scrub(f"Argilla at {self.url} failed to {what} ({status}): {detail}"))
        if status == 204 or not reply.content:
            return None
        try:
            return reply.json()
        except ValueError as exc:
            raise ServiceError(
                scrub(
                    f"{self.url} answered {what} with something that is not JSON: is {ENV_URL} the Argilla "
                    "server's URL (e.g. http://localhost:6900, without /api)?"
                )
            ) from exc

    def check(self) -> dict[str, Any]:
        """Who the key belongs to; says clearly if the URL is not an Argilla server."""
        import httpx

        try:
            reply = self.http.get("/api/v1/me")
        except httpx.HTTPError as exc:
            raise ServiceError(
                scrub(
                    f"cannot reach Argilla at {self.url} ({exc.__class__.__name__}: {exc}); "
                    f"is the server running and is {ENV_URL} right?"
                )
            ) from exc
        if reply.status_code == 404:
            raise ServiceError(scrub(f"{self.url} has no /api/v1/me: it is not an Argilla 2.x server; check {ENV_URL}"))
        me = self._json(reply, "identify the API key's user")
        if not isinstance(me, dict) or "username" not in me:
            raise ServiceError(scrub(f"{self.url} did not answer /api/v1/me like an Argilla server; check {ENV_URL}"))
        self.me = me
        return me

    def paged(self, path: str, what: str, params: dict[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        offset = 0
        while True:
            page = self.request("GET", path, what, params={**(params or {}), "offset": offset, "limit": LIST_PAGE})
            items = page.get("items") or []
            yield items
            offset += len(items)
            if not items or offset >= page.get("total", 0):
                return

    # -- SDK -------------------------------------------------------------------------------
    @property
    def sdk(self) -> Any:
        if self._sdk is None:
            with self.sdk_errors("connect the argilla SDK"):
                import argilla as rg

                self._sdk = rg.Argilla(api_url=self.url, api_key=self._key, timeout=60, retries=2)
        return self._sdk

    @contextlib.contextmanager
    def sdk_errors(self, what: str) -> Iterator[None]:
        """Translate the SDK's exceptions into alloop's."""
        import httpx

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except AlloopError:
            raise
        except httpx.HTTPError as exc:
            raise ServiceError(
                scrub(f"cannot reach Argilla at {self.url} to {what} ({exc.__class__.__name__}: {exc})")
            ) from exc
        except Exception as exc:
            from argilla._exceptions import ArgillaError

            if not isinstance(exc, ArgillaError):
                raise
            status = getattr(exc, "status_code", None)
            if status == 422 or exc.__class__.__name__ in ("UnprocessableEntityError", "BadRequestError"):
                raise InputError(scrub(f"Argilla at {self.url} rejected the request to {what}: {exc}")) from exc
            if exc.__class__.__name__ == "ArgillaCredentialsError" or status == 401:
                raise ServiceError(
                    scrub(f"Argilla at {self.url} refused the API key while trying to {what}: check {ENV_KEY}")
                ) from exc
            raise ServiceError(scrub(f"Argilla at {self.url} failed to {what}: {exc}")) from exc

    # -- lookups ---------------------------------------------------------------------------
    def workspace(self, name: str, create: bool = False) -> dict[str, Any] | None:
        for item in self.request("GET", "/api/v1/me/workspaces", "list workspaces").get("items", []):
            if item["name"] == name:
                return item
        if not create:
            return None
        return self.request("POST", "/api/v1/workspaces", f"create workspace {name!r}", json={"name": name})

    def dataset(self, target: Target) -> dict[str, Any] | None:
        ws = self.workspace(target.workspace)
        if ws is None:
            return None
        found = self.request(
            "GET", "/api/v1/me/datasets", "list datasets", params={"workspace_id": ws["id"], "name": target.dataset}
        )
        for item in found.get("items", []):
            if item["name"] == target.dataset and str(item["workspace_id"]) == str(ws["id"]):
                return item
        return None

    def usernames(self, workspace_id: str, user_ids: set[str]) -> tuple[dict[str, str], list[str]]:
        """(user id → username, the workspace's annotators), from the workspace's members and,
        for answers by users no longer in it, the users list (owners only)."""
        names: dict[str, str] = {}
        annotators: list[str] = []
        with contextlib.suppress(ServiceError):
            for user in self.request("GET", f"/api/v1/workspaces/{workspace_id}/users", "list workspace users")[
                "items"
            ]:
                names[str(user["id"])] = user["username"]
                if user.get("role") == "annotator":
                    annotators.append(user["username"])
        if user_ids - set(names):
            with contextlib.suppress(ServiceError):
                for user in self.request("GET", "/api/v1/users", "list users")["items"]:
                    names[str(user["id"])] = user["username"]
        return names, sorted(annotators)

    def list_records(self, dataset_id: str, progress: ProgressFn = no_progress) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for page in self.paged(
            f"/api/v1/datasets/{dataset_id}/records", "list the dataset's records", {"include": ["responses"]}
        ):
            records.extend(page)
            progress(len(records), None, f"read {len(records)} records from Argilla")
        return records


def _detail(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:300]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        detail = detail.get("params", {}).get("message") or detail.get("message") or json.dumps(detail)[:300]
    return str(detail)[:500]
