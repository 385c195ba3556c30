"""The JATOS client at the HTTP boundary: httpx MockTransport for the wire details, and the
JATOS double (tests/jspsych/jatos_double.py, written from JATOS's API docs) for whole flows."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from alloop.tools.base import ToolContext
from alloop.tools.build_jspsych import BuildJspsychInput, build_jspsych
from alloop.tools.errors import ServiceError
from alloop.tools.export_jzip import ExportJzipInput, export_jzip
from alloop.tools.jatos_import import JatosImportInput, jatos_import
from alloop.tools.jspsych.config import ExperimentConfig
from alloop.tools.jspsych.jatos import JatosClient, join_results, read_results_zip, results_to_events
from alloop.tools.pull_jatos import PullJatosInput, pull_jatos
from alloop.tools.run.schema import TaskSpec

from .helpers import jatos_context, make_run
from .jatos_double import TOKEN, JatosDouble

SECRET = "jap_secret_value_123"


def mock_client(handler, **kwargs) -> JatosClient:
    return JatosClient("https://jatos.example.org", SECRET, transport=httpx.MockTransport(handler), **kwargs)


def test_token_and_url_come_from_the_environment_and_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JATOS_TOKEN", raising=False)
    monkeypatch.setenv("JATOS_URL", "https://jatos.example.org")
    with pytest.raises(ServiceError, match="JATOS_TOKEN"):
        JatosClient()
    monkeypatch.setenv("JATOS_TOKEN", SECRET)
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"apiVersion": "1", "error": {"code": "AUTH_ERROR"}})

    client = JatosClient(transport=httpx.MockTransport(handler))
    assert SECRET not in repr(client)
    with pytest.raises(ServiceError) as caught:
        client.list_studies()
    assert SECRET not in str(caught.value) and "JATOS_TOKEN" in str(caught.value)
    assert seen[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert seen[0].url.path == "/jatos/api/v1/studies/properties"


def test_import_uses_studies_on_3_10_and_falls_back_to_study_on_3_8() -> None:
    calls = []

    def jatos_3_8(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path))
        if request.url.path.endswith("/studies"):
            return httpx.Response(404, json={"apiVersion": "1", "error": {"code": "NOT_FOUND"}})
        assert b'name="study"' in request.content and b"PK" in request.content
        return httpx.Response(200, json={"studyExists": False, "uuid": "u-1"})

    assert mock_client(jatos_3_8).import_study(b"PK\x03\x04zip") == {"studyExists": False, "uuid": "u-1"}
    assert calls == [("POST", "/jatos/api/v1/studies"), ("POST", "/jatos/api/v1/study")]
    calls.clear()
    assert mock_client(jatos_3_8, api="3.8").import_study(b"PKzip")["uuid"] == "u-1"
    assert calls == [("POST", "/jatos/api/v1/study")]


def test_study_codes_post_on_3_10_get_on_3_8() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, dict(request.url.params)))
        if request.method == "POST":
            return httpx.Response(405, json={"apiVersion": "1", "error": {"code": "INVALID_REQUEST"}})
        return httpx.Response(200, json={"apiVersion": "1", "data": ["abc", "def"]})

    links = mock_client(handler).participant_links("u-1", "ps", amount=2)
    assert links == ["https://jatos.example.org/publix/abc", "https://jatos.example.org/publix/def"]
    assert calls[0][0] == "POST" and calls[1] == ("GET", {"type": "PersonalSingle", "amount": "2"})


def test_unreachable_server_is_a_service_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ServiceError, match=r"could not be reached") as caught:
        mock_client(handler).get_study(3)
    assert SECRET not in str(caught.value)


def results_zip(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def trial(index: int, item: str | None, label, role: str = "item", **extra) -> dict:
    return {"trial_index": index, "alloop_role": role, "item_id": item, "label": label, "list": 0, "rt": 900, **extra}


def test_results_become_label_events_with_the_worker_as_annotator() -> None:
    spec = TaskSpec(run="r", task_type="binary", labels=["yes", "no"])
    data = read_results_zip(results_zip({
        "study_result_7/comp-result_11/data.txt": json.dumps([
            trial(0, None, None, role="instructions"),
            trial(1, "a", "yes"), trial(2, "b", "maybe"), trial(3, "att", "no", role="attention", passed=True),
            trial(4, "c", None),
        ]),
        "study_result_8/comp-result_12/data.txt": json.dumps([trial(0, "a", "no"),
                                                              trial(1, "att", "yes", role="attention", passed=False)]),
        "study_result_9/comp-result_13/data.txt": json.dumps([trial(0, "a", "no")]),
    }))
    metadata = [{"studyId": 1, "studyUuid": "u", "studyTitle": "t", "studyResults": [
        {"id": 7, "workerId": 70, "workerType": "GeneralSingle", "studyState": "FINISHED", "batchId": 1,
         "urlQueryParameters": {"PROLIFIC_PID": "p7"}, "componentResults": [{"id": 11, "componentState": "FINISHED"}]},
        {"id": 8, "workerId": 80, "workerType": "GeneralSingle", "studyState": "FINISHED", "batchId": 1,
         "componentResults": [{"id": 12, "componentState": "FINISHED"}]},
        {"id": 9, "workerId": 90, "workerType": "GeneralSingle", "studyState": "STARTED", "batchId": 1,
         "componentResults": [{"id": 13, "componentState": "STARTED"}]},
    ]}]
    results = list(join_results(metadata, data))
    events, notes = results_to_events(results, spec, round_=2, min_attention_pass=0.5)
    assert [(e.item_id, e.label, e.annotator, e.external_id) for e in events] == [("a", "yes", "jatos:70", "7:11:1")]
    assert events[0].source == "human" and events[0].destination == "jatos" and events[0].round == 2
    assert events[0].extra["prolific_pid"] == "p7" and events[0].extra["attention_pass_rate"] == 1.0
    assert any("'maybe' is not one of" in n for n in notes) and any("no response" in n for n in notes)
    assert any("attention checks passed 0%" in n for n in notes)
    assert any("state STARTED" in n for n in notes)


def study_run(double: JatosDouble, link: str, trials: list[dict]) -> None:
    """What jatos.js does for one participant, over plain HTTP (no browser needed)."""
    with httpx.Client(base_url=double.url) as http:
        start = http.get(urlsplit(link).path + "?PROLIFIC_PID=x1")
        base = start.headers["location"].rsplit("/", 1)[0]
        http.get(f"{base}/initData")
        http.put(f"{base}/resultData", content=json.dumps(trials))
        http.get(f"{base}/end", params={"successful": "true"})


@pytest.mark.parametrize("version", ["3.8", "3.10"])
def test_import_update_links_results_and_delete_against_the_double(tmp_path: Path, version: str) -> None:
    items = [{"id": "a", "text": "One."}, {"id": "b", "text": "Two."}]
    root, run = make_run(tmp_path, "flow", "binary", ["yes", "no"], items)
    ctx = ToolContext(root=root)
    build_jspsych(BuildJspsychInput(run="flow", round=1, config=ExperimentConfig(jspsych_source="cdn")), ctx)
    exported = export_jzip(ExportJzipInput(run="flow", round=1), ctx)
    with JatosDouble(version=version) as double, JatosClient(double.url, TOKEN) as client:
        ctx = jatos_context(root, double.url)
        first = jatos_import(JatosImportInput(run="flow", round=1, link_type="gs"), ctx)
        assert first.study_uuid == exported.study_uuid and first.links[0].startswith(double.url + "/publix/")
        # Exporting and importing again updates the same study (same UUID, same id).
        export_jzip(ExportJzipInput(run="flow", round=1, title="Renamed"), ctx)
        again = jatos_import(JatosImportInput(run="flow", round=1, link_type="ps", n_links=3), ctx)
        assert again.study_id == first.study_id and len(again.links) == 3
        studies = client.list_studies()
        assert len(studies) == 1 and studies[0]["title"] == "Renamed"
        assert client.get_study(first.study_uuid)["batches"][0]["id"] >= 1

        study_run(double, first.links[0], [trial(0, "a", "yes"), trial(1, "b", "no")])
        pulled = pull_jatos(PullJatosInput(run="flow", round=1), ctx)
        assert (pulled.n_events, pulled.n_new, pulled.n_participants) == (2, 2, 1)
        assert pull_jatos(PullJatosInput(run="flow", round=1), ctx).n_new == 0
        assert {(e.item_id, e.label) for e in run.labels()} == {("a", "yes"), ("b", "no")}
        assert {e.extra["prolific_pid"] for e in run.labels()} == {"x1"}

        client.delete_study(first.study_uuid)
        assert client.list_studies() == []
        with pytest.raises(ServiceError, match="404"):
            client.get_study(first.study_uuid)
    # The token went only into the Authorization header.
    assert SECRET not in (run.path / "notes.md").read_text()
    assert all(TOKEN not in p.read_text(errors="ignore") for p in run.path.rglob("*.jsonl"))
