"""A client of JATOS's REST API (3.8 and later), and its results turned into label events.

The API lives under `/jatos/api/v1` and takes a personal access token as
`Authorization: Bearer jap_...`. The token and the server's URL come from the environment
(JATOS_TOKEN, JATOS_URL) or the caller; the token is never written to a file, a log or an
error message: every ServiceError passes alloop.tools.secrets.scrub, since a server's error body
can echo the request's `Authorization` header.

Endpoints used (JATOS's jatos-api.yaml): import `POST /study` (3.8/3.9, multipart field
`study`) or `POST /studies` (3.10+), `GET /studies/properties`, `GET /studies/{id}/properties`,
`DELETE /studies/{id}`, study codes `GET` (3.8/3.9) or `POST` (3.10+)
`/studies/{id}/studyCodes?type=&batchId=&amount=`, `POST /results/metadata` and
`POST /results/data` (a zip with `study_result_<id>/comp-result_<id>/data.txt`). A study can be
named by its id or its UUID everywhere; alloop uses the UUID it derived at export.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from alloop.tools.errors import InputError, ServiceError
from alloop.tools.jspsych.results import Conversion, parse_result_data, trials_to_events
from alloop.tools.run.schema import LabelEvent, TaskSpec
from alloop.tools.secrets import hold, scrub

URL_ENV = "JATOS_URL"
TOKEN_ENV = "JATOS_TOKEN"
API_PREFIX = "/jatos/api/v1"
ApiVersion = Literal["auto", "3.8", "3.10"]
CODE_TYPES = {
    "ps": "PersonalSingle",
    "pm": "PersonalMultiple",
    "gs": "GeneralSingle",
    "gm": "GeneralMultiple",
    "mt": "MTurk",
}
DATA_ENTRY = re.compile(r"^/?study_result_(\d+)/comp-result_(\d+)/data\.txt$")


@dataclass
class ComponentResult:
    """One component run of a participant: its metadata and its data text."""

    study_result_id: int
    component_result_id: int
    worker_id: str
    worker_type: str
    study_state: str
    component_state: str
    batch_id: int | None
    url_query_parameters: dict[str, str] = field(default_factory=dict)
    data: str = ""


class JatosClient:
    """JATOS's REST API over httpx. `api="auto"` tries the 3.10 endpoints first and falls back
    to the 3.8/3.9 ones where the server does not know them (404/405)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        api: ApiVersion = "auto",
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        url = url or os.environ.get(URL_ENV)
        token = token or os.environ.get(TOKEN_ENV)
        if not url:
            raise ServiceError(f"no JATOS server: set {URL_ENV} (e.g. https://jatos.example.org) or pass url")
        if not token:
            raise ServiceError(f"no JATOS API token: create one in JATOS (user menu → API tokens) and set {TOKEN_ENV}")
        if not re.match(r"^https?://", url):
            raise InputError(scrub(f"{URL_ENV} must start with http:// or https://, got {url!r}"))
        self.url = url.rstrip("/")
        self.api = api
        hold(token)
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"JatosClient(url={self.url!r}, api={self.api!r}, token=<hidden>)"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JatosClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(
                scrub(f"JATOS at {self.url} could not be reached ({type(exc).__name__}: {exc})")
            ) from exc
        if response.status_code in (401, 403):
            raise ServiceError(
                scrub(
                    f"JATOS refused {method} {path} (HTTP {response.status_code}): check that {TOKEN_ENV} is a "
                    "valid, active token of a user who is a member of the study"
                )
            )
        return response

    @staticmethod
    def _error(method: str, path: str, response: httpx.Response) -> ServiceError:
        detail = response.text[:300]
        try:
            body = response.json()
            detail = (body.get("error") or {}).get("message") or body.get("message") or detail
        except (ValueError, AttributeError):
            pass
        return ServiceError(scrub(f"JATOS answered {method} {path} with HTTP {response.status_code}: {detail}"))

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code >= 400:
            raise self._error(method, path, response)
        try:
            body = response.json()
        except ValueError as exc:
            raise ServiceError(scrub(f"JATOS answered {method} {path} with something that is not JSON")) from exc
        return body.get("data", body) if isinstance(body, dict) else body

    def _versions(self) -> tuple[str, ...]:
        return ("3.10", "3.8") if self.api == "auto" else (self.api,)

    # -- studies -------------------------------------------------------------------------
    def import_study(
        self,
        jzip: bytes,
        *,
        filename: str = "study.jzip",
        keep_properties: bool = False,
        keep_assets: bool = False,
        keep_current_assets_name: bool = False,
        rename_assets: bool = True,
    ) -> dict[str, Any]:
        """Upload a .jzip; a study with the same UUID is overwritten. Returns what JATOS said
        (3.10: the study's properties with its id; 3.8/3.9: uuid and whether it existed)."""
        params = {
            "keepProperties": _flag(keep_properties),
            "keepAssets": _flag(keep_assets),
            "keepCurrentAssetsName": _flag(keep_current_assets_name),
            "renameAssets": _flag(rename_assets),
        }
        last: httpx.Response | None = None
        for version in self._versions():
            path = "/studies" if version == "3.10" else "/study"
            files = {"study": (filename, jzip, "application/zip")}
            response = self._request("POST", path, params=params, files=files)
            if response.status_code in (404, 405) and self.api == "auto":
                last = response
                continue
            if response.status_code >= 400:
                raise self._error("POST", path, response)
            body = response.json()
            return body.get("data", body) if isinstance(body, dict) else {"response": body}
        assert last is not None
        raise self._error("POST", "/studies", last)

    def list_studies(self) -> list[dict[str, Any]]:
        """Properties of every study the token's user may see."""
        data = self._json("GET", "/studies/properties")
        return list(data or [])

    def get_study(self, study: str | int) -> dict[str, Any]:
        """A study's properties, with its components and batches."""
        return self._json(
            "GET",
            f"/studies/{_segment(study)}/properties",
            params={"withComponentProperties": "true", "withBatchProperties": "true"},
        )

    def delete_study(self, study: str | int) -> None:
        """Delete a study with its results (JATOS cannot undo this)."""
        self._json("DELETE", f"/studies/{_segment(study)}")

    # -- running it ----------------------------------------------------------------------
    def study_codes(
        self,
        study: str | int,
        type: str = "gs",
        *,
        amount: int = 1,
        batch_id: int | None = None,
        comment: str | None = None,
    ) -> list[str]:
        """Study codes of a type: ps/pm (personal: `amount` codes) or gs/gm/mt (one general code)."""
        code_type = type if type in CODE_TYPES.values() else CODE_TYPES.get(type)
        if code_type is None:
            raise InputError(f"study code type {type!r} is not one of {', '.join(CODE_TYPES)}")
        params: dict[str, Any] = {"type": code_type}
        if code_type.startswith("Personal"):
            params["amount"] = amount
            if comment:
                params["comment"] = comment
        if batch_id is not None:
            params["batchId"] = batch_id
        path = f"/studies/{_segment(study)}/studyCodes"
        last: httpx.Response | None = None
        for version in self._versions():
            method = "POST" if version == "3.10" else "GET"
            response = self._request(method, path, params=params)
            if response.status_code in (404, 405) and self.api == "auto":
                last = response
                continue
            if response.status_code >= 400:
                raise self._error(method, path, response)
            data = response.json()
            data = data.get("data", data) if isinstance(data, dict) else data
            return [str(code) for code in (data if isinstance(data, list) else [data])]
        assert last is not None
        raise self._error("POST", path, last)

    def participant_links(self, study: str | int, type: str = "gs", **kwargs: Any) -> list[str]:
        """Links to hand to participants (`<JATOS>/publix/<code>`); for Prolific, add
        `?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}`."""
        return [f"{self.url}/publix/{code}" for code in self.study_codes(study, type, **kwargs)]

    # -- results -------------------------------------------------------------------------
    def results_metadata(self, study: str | int) -> list[dict[str, Any]]:
        """The study results' metadata (workers, states, component results)."""
        data = self._json("POST", "/results/metadata", json=_study_selector(study))
        return list(data or [])

    def results_data(self, study: str | int) -> dict[int, str]:
        """Component result id → its data text, from the results data zip."""
        path = "/results/data"
        response = self._request("POST", path, json=_study_selector(study))
        if response.status_code >= 400:
            raise self._error("POST", path, response)
        return read_results_zip(response.content)

    def component_results(self, study: str | int) -> list[ComponentResult]:
        """Every component result of a study: metadata joined with its data."""
        data = self.results_data(study)
        return list(join_results(self.results_metadata(study), data))


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _segment(study: str | int) -> str:
    text = str(study)
    if not re.match(r"^[A-Za-z0-9-]{1,64}$", text):
        raise InputError(f"study {study!r} is neither a JATOS study id nor a UUID")
    return text


def _study_selector(study: str | int) -> dict[str, Any]:
    text = str(study)
    if text.isdigit():
        return {"studyIds": [int(text)]}
    return {"studyUuids": [_segment(text)]}


def read_results_zip(content: bytes) -> dict[int, str]:
    """`study_result_<id>/comp-result_<id>/data.txt` entries → {component result id: text}."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile as exc:
        raise ServiceError("JATOS's results data is not a zip archive") from exc
    out: dict[int, str] = {}
    with archive:
        for name in archive.namelist():
            match = DATA_ENTRY.match(name)
            if match:
                out[int(match.group(2))] = archive.read(name).decode("utf-8", errors="replace")
    return out


def join_results(metadata: list[dict[str, Any]], data: dict[int, str]) -> Iterator[ComponentResult]:
    for study in metadata:
        for result in study.get("studyResults") or []:
            for component in result.get("componentResults") or []:
                crid = int(component["id"])
                yield ComponentResult(
                    study_result_id=int(result["id"]),
                    component_result_id=crid,
                    worker_id=str(result.get("workerId")),
                    worker_type=str(result.get("workerType", "")),
                    study_state=str(result.get("studyState", "")),
                    component_state=str(component.get("componentState", "")),
                    batch_id=result.get("batchId"),
                    url_query_parameters=dict(result.get("urlQueryParameters") or {}),
                    data=data.get(crid, ""),
                )


def results_to_events(
    results: list[ComponentResult],
    spec: TaskSpec,
    *,
    round_: int,
    only_finished: bool = True,
    min_attention_pass: float | None = None,
) -> tuple[list[LabelEvent], list[str]]:
    """Label events from JATOS results: the worker is the annotator (`jatos:<workerId>`),
    the source is human, the destination jatos, and external_id is
    `<studyResultId>:<componentResultId>:<trial_index>`, so a second pull adds nothing."""
    events: list[LabelEvent] = []
    notes: list[str] = []
    for result in results:
        where = f"study result {result.study_result_id}"
        if only_finished and result.study_state != "FINISHED":
            notes.append(f"{where}: state {result.study_state}, left out (only finished runs)")
            continue
        trials = parse_result_data(result.data, where)
        conversion: Conversion = trials_to_events(
            trials,
            spec,
            round_=round_,
            annotator=f"jatos:{result.worker_id}",
            external_prefix=f"{result.study_result_id}:{result.component_result_id}",
            extra={
                "jatos_study_result_id": result.study_result_id,
                "jatos_component_result_id": result.component_result_id,
                "jatos_worker_type": result.worker_type,
                "jatos_batch_id": result.batch_id,
                "prolific_pid": result.url_query_parameters.get("PROLIFIC_PID"),
            },
        )
        rate = conversion.attention_pass_rate
        if min_attention_pass is not None and rate is not None and rate < min_attention_pass:
            notes.append(f"{where}: attention checks passed {rate:.0%} < {min_attention_pass:.0%}, left out")
            continue
        notes.extend(conversion.skipped)
        events.extend(conversion.events)
    return events, notes
