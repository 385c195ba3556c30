"""W&B tracking: a real three-round loop synced offline, checked in the files W&B itself wrote.

W&B 0.31 reads its transaction log (`run-<id>.wandb`) in Go only; `transaction_log` below reads it
as wandb's former Python reader (wandb.sdk.internal.datastore) did: a 7-byte `:W&B` header, then
LevelDB-log blocks of 32 KiB whose chunks carry a CRC-32 of type byte and data, each record one
`wandb_internal_pb2.Record` in wandb's own protobuf schema. Every CRC is checked, so a misread fails.
HOME and the XDG folders point at an empty folder where no W&B file may appear: W&B writes only into the run.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.errors import InputError
from alloop.tools.run.schema import ResultRow, TrackingSpec
from alloop.tools.tracking import configure, sync
from alloop.tools.tracking.mode import effective_mode
from alloop.tools.tracking.plan import round_metrics
from alloop.tools.write_report import ReportInput, write_report

pytest.importorskip("wandb")

FAKE_KEY = "alloopfake" + "0123456789abcdef" * 2 + "zz"
"""A 44-character stand-in for a W&B API key, unlike any other text in a run."""
HEADER = b":W&B" + (0xBEE1).to_bytes(2, "little") + b"\x00"
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def transaction_log(path: Path) -> list[Any]:
    """Every record of a .wandb file, as wandb's protobuf Records, each chunk's CRC-32 checked."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[: len(HEADER)] == HEADER, "not a W&B transaction log"
    records, pending, pos = [], b"", len(HEADER)
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a chunk header is padding
            pos += BLOCK - pos % BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        assert crc == zlib.crc32(bytes([kind]) + chunk), f"bad checksum at byte {pos} of {path}"
        pos += 7 + length
        pending += chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    assert pos == len(data) and not pending, "the log ends inside a record"
    return records


def _items(items: Any) -> dict[str, Any]:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def history(folder: Path) -> dict[int, dict[str, Any]]:
    """step → the values logged at it, from an offline run folder's transaction log."""
    (log,) = folder.glob("run-*.wandb")
    rows = [r.history for r in transaction_log(log) if r.WhichOneof("record_type") == "history"]
    return {row.step.num: _items(row.item) for row in rows}


def summary(folder: Path) -> dict[str, Any]:
    """The run summary W&B computed (the last value of each key)."""
    (log,) = folder.glob("run-*.wandb")
    found: dict[str, Any] = {}
    for record in transaction_log(log):
        if record.WhichOneof("record_type") == "summary":
            found.update(_items(record.summary.update))
    return found


def offline_folders(run_path: Path) -> list[Path]:
    return sorted((run_path / "wandb").glob("offline-run-*"))


def tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """W&B's environment for a test: a fresh, empty home, no key, W&B quiet and not forced into a mode."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name in ("WANDB_MODE", "WANDB_DISABLED", "WANDB_API_KEY", "WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    return folder


@pytest.fixture
def tracked(looped_copy, root, home):
    """The looped run with W&B offline, a judge figure on round 2 and round 3 still open (no stop yet)."""
    run = root.run(looped_copy)
    configure(run, "offline")
    with run.lock():
        run.update_result(2, judge_n=10, judge_accuracy=0.9)
        run.update_result(3, stop_decision="go")
    return run


@pytest.mark.slow
def test_an_offline_sync_logs_each_settled_round_s_metrics_and_batch_and_a_second_adds_nothing(tracked, root, home):
    run = tracked
    first = sync(run)
    assert (first.mode, first.logged, first.pending) == ("offline", [0, 1, 2], [3])
    (folder,) = offline_folders(run.path)
    assert first.folder == folder.relative_to(run.path).as_posix()
    logged = history(folder)
    assert sorted(logged) == [0, 1, 2]
    rows = {row.round: row for row in run.results()}
    for step in (1, 2):
        row, values = rows[step], logged[step]
        assert values["gold/macro_f1"] == pytest.approx(row.gold_macro_f1)
        assert values["gold/accuracy"] == pytest.approx(row.gold_accuracy)
        assert values["loop/n_labeled"] == row.n_labeled
        by_class = json.loads(row.gold_f1_by_class)
        assert {k: values[f"gold/f1_by_class/{k}"] for k in by_class} == pytest.approx(by_class)
    assert logged[2]["judge/accuracy"] == 0.9 and logged[2]["judge/n"] == 10
    assert not any(k.startswith("judge/") for k in logged[1])  # no judge figure invented where none was
    for step in (0, 1, 2):  # each round's batch, as a table file W&B wrote, in rank order with the pool's text
        table = json.loads((folder / "files" / logged[step]["selection/batch/path"]).read_text())
        chosen = run.selection(step)
        assert [r[table["columns"].index("item_id")] for r in table["data"]] == [c.item_id for c in chosen]
        pool = run.pool()
        assert [r[table["columns"].index("text")] for r in table["data"]] == [
            pool.row(c.item_id)["text"] for c in chosen
        ]
        assert [r[table["columns"].index("reason")] for r in table["data"]] == [c.reason for c in chosen]
    assert {"report/learning-curve", "report/confusion"} <= {k.rsplit("/", 1)[0] for k in logged[2]}
    assert summary(folder)["gold/macro_f1"] == pytest.approx(rows[2].gold_macro_f1)  # W&B's own last value

    before = tree(run.path / "wandb")
    again = sync(run)
    assert (again.logged, again.done, again.pending) == ([], [0, 1, 2], [3])
    assert tree(run.path / "wandb") == before  # nothing written, not even a new empty W&B folder

    with run.lock():
        run.update_result(3, stop_decision="stop")  # the loop ends: round 3 is settled, and logged alone
    last = sync(run)
    assert last.logged == [3]
    new = [f for f in offline_folders(run.path) if f != folder]
    assert len(new) == 1 and sorted(history(new[0])) == [3]
    assert history(new[0])[3]["loop/stop_decision"] == "stop"
    assert history(folder) == logged  # the first folder is as it was
    assert sync(run).logged == []
    assert list(home.rglob("*wandb*")) == []  # nothing of W&B went to ~
    assert not [p for p in (run.path / "wandb").rglob("*") if p.is_symlink()]


@pytest.mark.slow
def test_write_report_syncs_when_the_spec_says_so_and_no_file_holds_the_key(tracked, root, home, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    with tracked.lock():
        tracked.update_result(3, stop_decision="stop")
    out = write_report(ReportInput(run=tracked.name), ToolContext(root=root))
    assert out.tracking is not None and "logged round(s) 0–3" in out.tracking
    assert FAKE_KEY not in out.model_dump_json()
    files = [p for p in tracked.path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files) and any(p.name == "debug.log" for p in files)
    assert [p for p in files if FAKE_KEY.encode() in p.read_bytes()] == []
    assert list(home.rglob("*wandb*")) == []


@pytest.mark.slow
def test_a_sync_that_fails_midway_leaves_no_folder_and_no_record_and_its_error_hides_the_key(
    tracked, home, monkeypatch
):
    from alloop.tools.errors import ServiceError
    from alloop.tools.tracking import wandb_sync

    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    real = wandb_sync._payload

    def fail_on_round_2(wandb, content):
        if content.step == 2:
            raise RuntimeError(f"the disk is full (request had key={FAKE_KEY})")
        return real(wandb, content)

    monkeypatch.setattr(wandb_sync, "_payload", fail_on_round_2)
    with pytest.raises(ServiceError) as failed:
        sync(tracked)
    assert "the disk is full" in str(failed.value) and FAKE_KEY not in str(failed.value)
    assert offline_folders(tracked.path) == [] and not (tracked.path / "wandb" / "alloop-sync.json").exists()
    monkeypatch.setattr(wandb_sync, "_payload", real)
    assert sync(tracked).logged == [0, 1, 2]  # the next sync logs the rounds the failed one began, once
    (folder,) = offline_folders(tracked.path)
    assert sorted(history(folder)) == [0, 1, 2]


@pytest.mark.slow
def test_the_track_command_turns_tracking_on_and_syncs(looped_copy, root, home):
    env = {**os.environ, "WANDB_API_KEY": FAKE_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "alloop", "track", looped_copy, "--root", str(root.path), "--wandb", "offline"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "W&B offline (project alloop): logged round(s) 0–3" in done.stdout
    run = root.run(looped_copy)
    assert run.spec().tracking == TrackingSpec(wandb="offline") and run.spec().spec_version == 2
    assert FAKE_KEY not in done.stdout + done.stderr
    assert [p for p in run.path.rglob("*") if p.is_file() and FAKE_KEY.encode() in p.read_bytes()] == []


@pytest.mark.slow
def test_tracking_off_imports_nothing_and_writes_nothing(looped_copy, root, home):
    code = f"""
import sys
from alloop.tools.base import ToolContext
from alloop.tools.run.rundir import RunRoot
from alloop.tools.write_report import ReportInput, write_report
out = write_report(ReportInput(run={looped_copy!r}), ToolContext(root=RunRoot({str(root.path)!r})))
print(out.tracking, "wandb" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "False"]
    assert not (root.path / looped_copy / "wandb").exists()
    assert list(home.rglob("*wandb*")) == []


def test_online_without_a_key_is_refused_and_the_spec_is_left_as_it_was(looped_copy, root, home):
    run = root.run(looped_copy)
    with pytest.raises(InputError, match=r"WANDB_API_KEY"):
        configure(run, "online", project="my-project")
    assert run.spec().tracking == TrackingSpec() and run.spec().spec_version == 1
    with pytest.raises(InputError, match="not a W&B name"):
        configure(run, "offline", project="team/project")
    assert run.spec().spec_version == 1 and not (run.path / "wandb").exists()


@pytest.mark.parametrize(
    ("spec", "env", "mode"),
    [
        ("offline", {}, "offline"),
        ("offline", {"WANDB_MODE": "online"}, "offline"),  # the environment never makes it less private
        ("online", {"WANDB_MODE": "offline"}, "offline"),
        ("online", {"WANDB_MODE": "disabled"}, "off"),
        ("online", {"WANDB_DISABLED": "true"}, "off"),
        ("off", {"WANDB_MODE": "online"}, "off"),
        ("online", {}, "online"),
    ],
)
def test_w_and_b_s_environment_can_only_make_tracking_more_private(spec, env, mode):
    assert effective_mode(TrackingSpec(wandb=spec), env) == mode


def test_gold_judge_cv_and_agreement_figures_stay_in_their_own_namespaces():
    row = ResultRow(
        round=4,
        model_version="r04",
        n_labeled=40,
        gold_accuracy=0.7,
        gold_f1_by_class='{"a": 0.5, "b": 0.75}',
        cv_accuracy=0.8,
        judge_accuracy=0.9,
        judge_agreement_with_gold=0.6,
        agreement_human_ceiling=0.85,
    )
    metrics = round_metrics(row)
    assert metrics["gold/accuracy"] == 0.7 and metrics["cv/accuracy"] == 0.8 and metrics["judge/accuracy"] == 0.9
    assert metrics["judge/agreement_with_gold"] == 0.6 and metrics["agreement/human_ceiling"] == 0.85
    assert metrics["gold/f1_by_class/a"] == 0.5 and metrics["gold/f1_by_class/b"] == 0.75
    assert metrics["loop/n_labeled"] == 40 and "gold/macro_f1" not in metrics  # an empty cell is left out
    assert {k.split("/")[0] for k in metrics} == {"gold", "cv", "judge", "agreement", "loop"}
    with pytest.raises(InputError, match="gold_f1_by_class"):
        round_metrics(row.model_copy(update={"gold_f1_by_class": "not json"}))
