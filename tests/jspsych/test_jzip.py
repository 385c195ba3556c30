"""The .jzip reader accepts what JATOS exports and refuses what JATOS (or a careful unzip) would."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.build_jspsych import BuildJspsychInput, build_jspsych
from alloop.tools.export_jzip import ExportJzipInput, export_jzip
from alloop.tools.jspsych.config import ExperimentConfig
from alloop.tools.jspsych.jzip import JzipError, jas_document, pack_jzip, read_jzip, study_uuids

from .helpers import make_run

FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "potato_compass.jzip"


def zip_of(entries: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def good_document() -> dict:
    return jas_document(uuids=study_uuids("run", "round_01"), title="A study", dir_name="a_study")


def test_accepts_the_archive_jatos_itself_exported() -> None:
    if not FIXTURE.is_file():
        pytest.skip("shared/fixtures/potato_compass.jzip is not beside this checkout")
    archive = read_jzip(FIXTURE)
    assert archive.title == "Potato Compass"
    assert archive.asset_dir == "potatoCompass"
    assert archive.study["componentList"][0]["htmlFilePath"] == "demographics.html"
    assert "DragAndDrop_potatoes_JSON.html" in archive.files


@pytest.mark.parametrize("name", ["../evil.txt", "study/../../evil.txt", "/etc/passwd", "C:/evil.txt", "a\\..\\b.txt"])
def test_zip_slip_entry_names_are_refused(name: str) -> None:
    data = zip_of({"s.jas": json.dumps(good_document()), "a_study/index.html": "<p>", name: "x"})
    with pytest.raises(JzipError, match="illegal entry name"):
        read_jzip(data)


def test_two_jas_files_are_refused() -> None:
    doc = json.dumps(good_document())
    with pytest.raises(JzipError, match=r"exactly one \.jas"):
        read_jzip(zip_of({"a.jas": doc, "b.jas": doc, "a_study/index.html": "<p>"}))
    with pytest.raises(JzipError, match=r"exactly one \.jas"):
        read_jzip(zip_of({"a_study/index.html": "<p>"}))


def test_two_asset_folders_and_non_zips_are_refused() -> None:
    doc = json.dumps(good_document())
    with pytest.raises(JzipError, match="more than one folder"):
        read_jzip(zip_of({"a.jas": doc, "one/index.html": "x", "two/index.html": "y"}))
    with pytest.raises(JzipError, match="not a zip"):
        read_jzip(b"PK but not really")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(title=""), "title is missing"),
        (lambda d: d.update(title="<b>bold</b> study"), "title contains HTML"),
        (lambda d: d.update(title="x" * 256), "longer than 255"),
        (lambda d: d.update(dirName="study assets"), "dirName"),
        (lambda d: d.update(dirName="publix"), "reserved"),
        (lambda d: d.update(dirName="../up"), "dirName"),
        (lambda d: d["componentList"][0].update(htmlFilePath="../index.html"), "htmlFilePath"),
        (lambda d: d["componentList"][0].update(htmlFilePath="index"), "htmlFilePath"),
        (lambda d: d["batchList"][0].update(maxTotalWorkers=0), "at least 1"),
        (lambda d: d["batchList"][0].update(allowedWorkerTypes=["Anybody"]), "unknown worker type"),
        (lambda d: d.update(jsonData="{not json"), "not valid JSON"),
    ],
)
def test_properties_jatos_would_refuse(change, message: str) -> None:
    document = copy.deepcopy(good_document())
    change(document["data"])
    data = zip_of({"s.jas": json.dumps(document), "a_study/index.html": "<p>"})
    with pytest.raises(JzipError, match=message):
        read_jzip(data)


def test_version_other_than_3_is_refused() -> None:
    document = good_document()
    document["version"] = "2"
    with pytest.raises(JzipError, match="version"):
        read_jzip(zip_of({"s.jas": json.dumps(document), "a_study/index.html": "<p>"}))


def test_pack_refuses_before_writing_and_needs_the_component_file(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>hi</p>")
    document = good_document()
    document["data"]["dirName"] = "jatos"
    with pytest.raises(JzipError, match="reserved"):
        pack_jzip(tmp_path, document)
    document = good_document()
    document["data"]["componentList"][0]["htmlFilePath"] = "start.html"
    with pytest.raises(JzipError, match=r"no start\.html"):
        pack_jzip(tmp_path, document)


def test_export_is_deterministic_and_uuids_follow_run_and_round(tmp_path: Path) -> None:
    items = [{"id": "a", "text": "One."}, {"id": "b", "text": "Two."}]
    root, run = make_run(tmp_path, "det", "binary", ["yes", "no"], items)
    run.write_selection(2, run.selection(1))
    ctx = ToolContext(root=root)
    config = ExperimentConfig(jspsych_source="cdn", title="Stable study")
    build_jspsych(BuildJspsychInput(run="det", round=1, config=config), ctx)
    first = export_jzip(ExportJzipInput(run="det", round=1), ctx)
    first_bytes = Path(first.path).read_bytes()
    again = export_jzip(ExportJzipInput(run="det", round=1), ctx)
    assert again.study_uuid == first.study_uuid
    assert Path(again.path).read_bytes() == first_bytes  # same build, same archive
    build_jspsych(BuildJspsychInput(run="det", round=2, config=config), ctx)
    other = export_jzip(ExportJzipInput(run="det", round=2), ctx)
    assert other.study_uuid != first.study_uuid
    archive = read_jzip(first_bytes)
    assert archive.asset_dir == first.dir_name == archive.study["dirName"]
    assert archive.study["componentList"][0]["htmlFilePath"] == "index.html"
    assert "index.html" in archive.files and "data/items.json" in archive.files
    assert next(iter(json.loads(zipfile.ZipFile(io.BytesIO(first_bytes)).read(archive.jas_name)))) == "version"


def test_symbolic_links_in_the_archive_are_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("s.jas", json.dumps(good_document()))
        archive.writestr("a_study/index.html", "<p>")
        link = zipfile.ZipInfo("a_study/escape")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(JzipError, match="symbolic link"):
        read_jzip(buffer.getvalue())
