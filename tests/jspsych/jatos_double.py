"""A DOUBLE of a JATOS server for alloop's tests. It is not JATOS.

No JATOS can run here, so this stands in for one at the HTTP boundary, written from JATOS's
documented behaviour (jatos-api.yaml for the REST API of 3.8 and 3.10, the jatos.js
reference and source for the participant side):

REST API under /jatos/api/v1, `Authorization: Bearer <token>` or 401 with an error envelope:
  POST /study (3.8/3.9, multipart field `study`) or POST /studies (3.10+): import a .jzip; a
  study with the same UUID is overwritten (same id), its assets replaced. In "3.8" mode the
  3.10 endpoints answer 404/405, in "3.10" mode both import endpoints work.
  GET /studies/properties, GET /studies/{id|uuid}/properties, DELETE /studies/{id|uuid};
  GET (3.8) or POST (3.10) /studies/{id|uuid}/studyCodes?type=&amount=&batchId=;
  POST /results/metadata → {"apiVersion", "data": [{studyId, studyUuid, studyTitle,
  studyResults: [{id, uuid, studyCode, studyState, workerId, workerType, batchId,
  urlQueryParameters, componentResults: [{id, componentId, componentUuid, componentState,
  data: {size}}]}]}]};
  POST /results/data → a zip of study_result_<id>/comp-result_<id>/data.txt.
Participant side: GET /publix/<code> starts a study run (a new worker per run for general
codes, one per code for personal ones) and redirects to
/publix/<studyResultUuid>/<componentUuid>/index.html, where the study's assets are served and
jatos.js is the double in jatos_double.js. Its init data, result data, end and batch
session calls come back here; the batch session is versioned: a patch with a stale version
is refused and answered with the current data and version.

Import checks use alloop.tools.jspsych.jzip.read_jzip, which encodes JATOS's import rules.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import mimetypes
import re
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from alloop.tools.jspsych.jzip import JzipError, read_jzip

API = "/jatos/api/v1"
JS_DOUBLE = Path(__file__).with_name("jatos_double.js")
TOKEN = "jap_double_token_for_tests"


@dataclass
class StudyRecord:
    id: int
    uuid: str
    properties: dict[str, Any]
    assets: dict[str, bytes]
    batch_id: int
    batch_session: dict[str, Any] = field(default_factory=lambda: {"version": 0, "data": {}})


@dataclass
class StudyRun:
    id: int
    uuid: str
    study_uuid: str
    code: str
    worker_id: int
    worker_type: str
    query: dict[str, str]
    component_result_id: int
    state: str = "PRE"
    component_state: str = "STARTED"
    data: str = ""
    message: str | None = None


def apply_patch(document: Any, patches: list[dict[str, Any]]) -> Any:
    """RFC 6902 add/replace/remove/test on a JSON document (enough for batch sessions)."""
    doc = json.loads(json.dumps(document))
    for patch in patches:
        op, path = patch["op"], patch.get("path", "")
        if path == "":
            if op in ("add", "replace"):
                doc = json.loads(json.dumps(patch["value"]))
                continue
            if op == "test":
                if doc != patch["value"]:
                    raise ValueError("test failed")
                continue
            raise ValueError(f"cannot {op} the root")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op == "add":
                parent.insert(index, patch["value"])
            elif op == "replace":
                parent[index] = patch["value"]
            elif op == "remove":
                del parent[index]
            elif op == "test" and parent[index] != patch["value"]:
                raise ValueError("test failed")
        else:
            if op in ("add", "replace"):
                if op == "replace" and last not in parent:
                    raise ValueError(f"replace of missing {path}")
                parent[last] = patch["value"]
            elif op == "remove":
                del parent[last]
            elif op == "test" and parent.get(last) != patch["value"]:
                raise ValueError("test failed")
    return doc


class JatosDouble:
    """Start with `with JatosDouble(version="3.10") as jatos:`; `jatos.url` is its base URL."""

    def __init__(self, version: str = "3.10", token: str = TOKEN) -> None:
        self.version = version
        self.token = token
        self.lock = threading.RLock()
        self.studies: dict[str, StudyRecord] = {}
        self.codes: dict[str, tuple[str, str, int | None]] = {}  # code -> (study uuid, type, personal worker)
        self.runs: dict[str, StudyRun] = {}  # study result uuid -> run
        self.next_id = {"study": 1, "batch": 1, "worker": 1, "study_result": 1, "component_result": 1}
        self.session_conflicts = 0
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.start_barrier: threading.Barrier | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> JatosDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _id(self, kind: str) -> int:
        value = self.next_id[kind]
        self.next_id[kind] += 1
        return value

    def study(self, key: str) -> StudyRecord | None:
        with self.lock:
            if key in self.studies:
                return self.studies[key]
            for record in self.studies.values():
                if str(record.id) == key:
                    return record
        return None

    # -- REST actions --------------------------------------------------------------------
    def import_jzip(self, data: bytes) -> tuple[int, dict[str, Any]]:
        try:
            archive = read_jzip(data)
        except JzipError as exc:
            return 400, {"apiVersion": "1.1.0", "error": {"code": "IMPORT_EXPORT_ERROR", "message": str(exc)}}
        assets: dict[str, bytes] = {}
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                parts = PurePosixPath(name).parts
                if len(parts) > 1 and not name.endswith("/"):
                    assets["/".join(parts[1:])] = zf.read(name)
        with self.lock:
            existing = self.studies.get(archive.uuid)
            if existing:
                existing.properties = archive.study
                existing.assets = assets
                record, status = existing, 200
            else:
                record = StudyRecord(self._id("study"), archive.uuid, archive.study, assets, self._id("batch"))
                self.studies[archive.uuid] = record
                status = 201
        if self.version == "3.8":
            return 200, {"studyExists": status == 200, "uuid": record.uuid, "uploadedStudyTitle": archive.title}
        return status, {"apiVersion": "1.1.0", "data": self.properties(record)}

    def properties(self, record: StudyRecord, full: bool = False) -> dict[str, Any]:
        p = record.properties
        batch = (p.get("batchList") or [{}])[0]
        return {
            "id": record.id,
            "uuid": record.uuid,
            "title": p["title"],
            "description": p.get("description"),
            "active": True,
            "locked": False,
            "groupStudy": p.get("groupStudy", False),
            "linearStudy": p.get("linearStudy", False),
            "dirName": p["dirName"],
            "comments": p.get("comments"),
            "studyInput": p.get("jsonData") or "",
            "endRedirectUrl": p.get("endRedirectUrl"),
            "components": [
                {"id": record.id * 100 + i, "uuid": c["uuid"], **({"title": c["title"]} if full else {})}
                for i, c in enumerate(p["componentList"])
            ],
            "batches": [
                {
                    "id": record.batch_id,
                    "uuid": batch.get("uuid", ""),
                    **({"title": batch.get("title"), "maxTotalWorkers": batch.get("maxTotalWorkers")} if full else {}),
                }
            ],
        }

    def make_codes(self, record: StudyRecord, code_type: str, amount: int) -> list[str]:
        kinds = {"ps": "PersonalSingle", "pm": "PersonalMultiple", "gs": "GeneralSingle", "gm": "GeneralMultiple"}
        code_type = kinds.get(code_type, code_type)
        if code_type not in kinds.values():
            raise ValueError(f"unknown type {code_type}")
        with self.lock:
            if code_type.startswith("General"):
                for code, (study_uuid, kind, _) in self.codes.items():
                    if study_uuid == record.uuid and kind == code_type:
                        return [code]
                amount = 1
            out = []
            for _ in range(amount):
                code = uuid.uuid4().hex[:11]
                worker = self._id("worker") if code_type.startswith("Personal") else None
                self.codes[code] = (record.uuid, code_type, worker)
                out.append(code)
            return out

    def metadata(self, record: StudyRecord) -> dict[str, Any]:
        component_uuid = record.properties["componentList"][0]["uuid"]
        results = []
        with self.lock:
            for run in self.runs.values():
                if run.study_uuid != record.uuid:
                    continue
                results.append({
                    "id": run.id, "uuid": run.uuid, "studyCode": run.code, "studyState": run.state,
                    "message": run.message, "urlQueryParameters": run.query, "workerId": run.worker_id,
                    "workerType": run.worker_type, "batchId": record.batch_id, "batchUuid": "", "batchTitle": "Default",
                    "isQuotaReached": False,
                    "componentResults": [{
                        "id": run.component_result_id, "componentId": record.id * 100,
                        "componentUuid": component_uuid, "componentState": run.component_state,
                        "data": {"size": len(run.data.encode()), "sizeHumanReadable": f"{len(run.data)} B"},
                        "isQuotaReached": False,
                    }],
                })
        return {"studyId": record.id, "studyUuid": record.uuid, "studyTitle": record.properties["title"],
                "studyResults": results}

    def data_zip(self, record: StudyRecord) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf, self.lock:
            for run in self.runs.values():
                if run.study_uuid == record.uuid:
                    zf.writestr(f"study_result_{run.id}/comp-result_{run.component_result_id}/data.txt", run.data)
        return buffer.getvalue()

    def start_run(self, code: str, query: dict[str, str]) -> StudyRun | None:
        with self.lock:
            if code not in self.codes:
                return None
            study_uuid, kind, worker = self.codes[code]
            run = StudyRun(
                id=self._id("study_result"),
                uuid=str(uuid.uuid4()),
                study_uuid=study_uuid,
                code=code,
                worker_id=worker if worker is not None else self._id("worker"),
                worker_type=kind,
                query=query,
                component_result_id=self._id("component_result"),
            )
            self.runs[run.uuid] = run
            return run

    def batch_patch(self, record: StudyRecord, message: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            session = record.batch_session
            if message.get("versioning", True) and message.get("version") != session["version"]:
                self.session_conflicts += 1
                return {"ok": False, "version": session["version"], "data": session["data"]}
            try:
                session["data"] = apply_patch(session["data"], message["patches"])
            except (KeyError, IndexError, ValueError):
                return {"ok": False, "version": session["version"], "data": session["data"]}
            session["version"] += 1
            return {"ok": True, "version": session["version"], "data": session["data"]}

    # -- HTTP ----------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, obj: Any) -> None:
                self._send(status, json.dumps(obj).encode(), "application/json")

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _error(self, status: int, code: str, message: str) -> None:
                self._json(status, {"apiVersion": "1.1.0", "error": {"code": code, "message": message}})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

            def do_DELETE(self) -> None:
                self._route("DELETE")

            def _route(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                path = parts.path
                double.requests.append((method, path, dict(self.headers)))
                if path.startswith(API + "/"):
                    if self.headers.get("Authorization") != f"Bearer {double.token}":
                        self._body()
                        return self._error(401, "AUTH_ERROR", "invalid or missing API token")
                    return self._api(method, path[len(API):], query)
                if path.startswith("/publix/"):
                    return self._publix(method, path, query)
                self._send(404, b"not found", "text/plain")

            # REST API
            def _api(self, method: str, path: str, query: dict[str, str]) -> None:
                body = self._body()
                if method == "POST" and path in ("/study", "/studies"):
                    if path == "/studies" and double.version == "3.8":
                        return self._error(404, "NOT_FOUND", "no such endpoint")
                    ctype = self.headers.get("Content-Type", "")
                    if not ctype.startswith("multipart/form-data"):
                        return self._error(400, "WRONG_CONTENT_TYPE", "multipart/form-data expected")
                    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                        f"Content-Type: {ctype}\r\n\r\n".encode() + body
                    )
                    upload = None
                    for part in message.iter_parts():
                        if part.get_param("name", header="content-disposition") == "study":
                            upload = part.get_payload(decode=True)
                    if upload is None:
                        return self._error(400, "MISSING_FILE", "multipart field 'study' missing")
                    status, answer = double.import_jzip(upload)
                    return self._json(status, answer)
                if method == "GET" and path == "/studies/properties":
                    with double.lock:
                        data = [double.properties(r) for r in double.studies.values()]
                    return self._json(200, {"apiVersion": "1.1.0", "data": data})
                match = re.match(r"^/studies/([A-Za-z0-9-]+)(/properties|/studyCodes)?$", path)
                if match:
                    record = double.study(match.group(1))
                    if record is None:
                        return self._error(404, "NOT_FOUND", f"study {match.group(1)} not found")
                    tail = match.group(2)
                    if tail == "/properties" and method == "GET":
                        return self._json(200, {"apiVersion": "1.1.0", "data": double.properties(record, True)})
                    if tail is None and method == "DELETE":
                        with double.lock:
                            del double.studies[record.uuid]
                        return self._json(200, {"apiVersion": "1.1.0", "message": "Study deleted"})
                    if tail == "/studyCodes":
                        if method == "POST" and double.version == "3.8":
                            return self._error(405, "INVALID_REQUEST", "method not allowed")
                        if method not in ("GET", "POST"):
                            return self._error(405, "INVALID_REQUEST", "method not allowed")
                        try:
                            codes = double.make_codes(record, query.get("type", ""), int(query.get("amount", 1)))
                        except ValueError as exc:
                            return self._error(400, "VALIDATION_ERROR", str(exc))
                        return self._json(200, {"apiVersion": "1.1.0", "data": codes})
                if method == "POST" and path in ("/results/metadata", "/results/data"):
                    selector = json.loads(body or b"{}")
                    keys = [str(k) for k in (selector.get("studyIds") or []) + (selector.get("studyUuids") or [])]
                    records = [r for r in (double.study(k) for k in keys) if r is not None]
                    if path == "/results/metadata":
                        return self._json(200, {"apiVersion": "1.1.0", "data": [double.metadata(r) for r in records]})
                    if not records:
                        return self._send(200, _empty_zip(), "application/zip")
                    return self._send(200, double.data_zip(records[0]), "application/zip")
                self._error(404, "NOT_FOUND", f"{method} {path} is not part of this double")

            # participant side
            def _publix(self, method: str, path: str, query: dict[str, str]) -> None:
                parts = path.split("/")[2:]
                if len(parts) == 1 and method == "GET":
                    run = double.start_run(parts[0], query)
                    if run is None:
                        return self._send(404, b"unknown study code", "text/plain")
                    record = double.studies[run.study_uuid]
                    component = record.properties["componentList"][0]
                    location = f"/publix/{run.uuid}/{component['uuid']}/{component['htmlFilePath']}"
                    if urlsplit(self.path).query:  # the link's query (e.g. Prolific's ids) goes along
                        location += "?" + urlsplit(self.path).query
                    return self._send(302, b"", "text/plain", {"Location": location})
                if len(parts) < 3:
                    return self._send(404, b"not found", "text/plain")
                run = double.runs.get(parts[0])
                if run is None:
                    return self._send(404, b"unknown study run", "text/plain")
                record = double.studies[run.study_uuid]
                rest = "/".join(parts[2:])
                body = self._body()
                if rest == "jatos.js":
                    return self._send(200, JS_DOUBLE.read_bytes(), "text/javascript")
                if rest == "initData":
                    if double.start_barrier is not None:
                        double.start_barrier.wait()
                    with double.lock:
                        run.state = "STARTED"
                        session = json.loads(json.dumps(record.batch_session))
                    props = record.properties
                    return self._json(200, {
                        "ids": {"workerId": run.worker_id, "studyResultId": run.id, "studyResultUuid": run.uuid,
                                "componentResultId": run.component_result_id, "studyId": record.id,
                                "batchId": record.batch_id, "componentId": record.id * 100, "componentPos": 1,
                                "workerType": run.worker_type, "studyCode": run.code},
                        "urlQueryParameters": run.query,
                        "studyProperties": {"title": props["title"], "uuid": record.uuid},
                        "componentProperties": {"title": props["componentList"][0]["title"], "reloadable": True},
                        "batchProperties": {"title": "Default"},
                        "studyInput": json.loads(props.get("jsonData") or "{}"),
                        "componentInput": json.loads(props["componentList"][0].get("jsonData") or "{}"),
                        "batchSession": session,
                        "jatosVersion": double.version,
                    })
                if rest == "batchSession" and method == "POST":
                    return self._json(200, double.batch_patch(record, json.loads(body)))
                if rest == "resultData" and method in ("PUT", "POST"):
                    with double.lock:
                        text = body.decode("utf-8")
                        run.data = run.data + text if method == "POST" else text
                        run.component_state = "RESULTDATA_POSTED"
                    return self._send(200, b"", "text/plain")
                if rest == "end":
                    with double.lock:
                        ok = query.get("successful", "true") == "true"
                        run.state = "FINISHED" if ok else "FAIL"
                        run.component_state = "FINISHED" if ok else "FAIL"
                        run.message = query.get("message")
                    page = b"<!DOCTYPE html><title>End</title><p id='jatos-end'>Study finished (JATOS double)</p>"
                    return self._send(200, page, "text/html")
                asset = record.assets.get(rest)
                if asset is None:
                    return self._send(404, b"not found", "text/plain")
                ctype = mimetypes.guess_type(rest)[0] or "application/octet-stream"
                self._send(200, asset, ctype)

        return Handler


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass
    return buffer.getvalue()
