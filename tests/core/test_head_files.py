"""Head files: every head family comes back predicting exactly what it did, and no head file,
old or planted, ever runs code when alloop reads a run."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from alloop.tools.errors import InputError, StateError
from alloop.tools.glmm.head import GLMMHead
from alloop.tools.model.head_files import FORMAT_VERSION, head_bytes
from alloop.tools.model.heads import Design, load_head, save_head
from alloop.tools.model.logistic import LogisticHead
from alloop.tools.run.models import ModelDir
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.select_batch import SelectInput, select_batch
from alloop.tools.status import StatusInput, status
from alloop.tools.train_glmm import TrainInput, train_glmm
from alloop.tools.write_report import ReportInput, write_report


def _rows(n: int = 72, d: int = 6, seed: int = 0):
    """Features, four-class labels and a design (6 people, 24 items, one predictor)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.clip(np.round(X[:, 0] + 1.5 + 0.5 * rng.normal(size=n)), 0, 3).astype(int)
    design = Design(
        participants=np.array([f"p{i % 6}" for i in range(n)]),
        items=np.array([f"i{i % 24}" for i in range(n)]),
        predictors=rng.choice([-0.5, 0.5], size=(n, 1)),
        predictor_names=("condition",),
    )
    return X, y, design


def _fitted(family: str):
    X, y, design = _rows()
    no_predictors = Design(participants=design.participants, items=design.items)
    if family == "logistic":
        return LogisticHead(n_classes=4).fit(X, y), X, None
    if family == "logistic with predictors":
        return LogisticHead(n_classes=5).fit(X, y, design), X, design
    if family == "logistic anchored":
        first = LogisticHead(n_classes=4).fit(X[:48], y[:48])
        return LogisticHead(n_classes=4).fit(X[48:], y[48:], anchor=first, sequential=True), X, None
    if family == "glmm binary":
        return GLMMHead(n_classes=2).fit(X, (y > 1).astype(int), no_predictors), X, no_predictors
    if family == "glmm categorical":
        return GLMMHead(n_classes=4).fit(X, y, no_predictors), X, no_predictors
    if family == "glmm ordinal":
        return GLMMHead(n_classes=4, task_type="ordinal_scale").fit(X, y, no_predictors), X, no_predictors
    if family == "glmm slopes":
        return GLMMHead(n_classes=2, effects="random_slopes").fit(X, (y > 1).astype(int), design), X, design
    raise AssertionError(family)


FAMILIES = [
    "logistic",
    "logistic with predictors",
    "logistic anchored",
    "glmm binary",
    "glmm categorical",
    "glmm ordinal",
    "glmm slopes",
]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_reloaded_head_predicts_exactly_what_the_saved_one_did(family, tmp_path) -> None:
    head, X, design = _fitted(family)
    path = tmp_path / "head.npz"
    save_head(head, path)

    again = load_head(path)

    assert type(again) is type(head)
    assert np.array_equal(again.predict_proba(X, design), head.predict_proba(X, design))
    if isinstance(head, GLMMHead):  # the pool: no design, predicted at the population level
        assert np.array_equal(again.predict_proba(X), head.predict_proba(X))
    assert json.dumps(again.card(), sort_keys=True) == json.dumps(head.card(), sort_keys=True)  # NaN as NaN
    assert again.get_params() == head.get_params()


def test_a_head_file_holds_json_and_plain_arrays_only(tmp_path) -> None:
    head, _, _ = _fitted("glmm categorical")
    path = tmp_path / "head.npz"
    save_head(head, path)

    with zipfile.ZipFile(path) as archive:
        meta = json.loads(str(np.load(io.BytesIO(archive.read("meta.npy")), allow_pickle=False)[()]))
        for name in archive.namelist():
            np.load(io.BytesIO(archive.read(name)), allow_pickle=False)  # an object array would raise here

    assert meta["format"] == "alloop-head" and meta["version"] == FORMAT_VERSION and meta["head"] == "glmm"
    assert meta["object"]["object"] == "GLMMHead"


def test_a_head_file_from_a_newer_format_says_to_retrain(tmp_path) -> None:
    head, _, _ = _fitted("logistic")
    arrays = dict(np.load(io.BytesIO(head_bytes(head)), allow_pickle=False))
    meta = json.loads(str(arrays.pop("meta")[()])) | {"version": FORMAT_VERSION + 1}
    path = tmp_path / "head.npz"
    np.savez(path, meta=np.asarray(json.dumps(meta)), **arrays)

    with pytest.raises(StateError, match=f"format version {FORMAT_VERSION + 1}.*retrain"):
        load_head(path)


def test_a_head_file_naming_a_class_outside_the_heads_is_refused(tmp_path) -> None:
    head, _, _ = _fitted("logistic")
    arrays = dict(np.load(io.BytesIO(head_bytes(head)), allow_pickle=False))
    meta = json.loads(str(arrays.pop("meta")[()]))
    meta["object"]["learned"]["model_"]["object"] = "Popen"
    path = tmp_path / "head.npz"
    np.savez(path, meta=np.asarray(json.dumps(meta)), **arrays)

    with pytest.raises(InputError, match="'Popen' is not a class a head file may hold"):
        load_head(path)


class _Planted:
    """What an attacker puts in head.pkl: unpickling it creates `marker` (it could run anything)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _planted_pickle(marker: Path) -> bytes:
    data = pickle.dumps(_Planted(marker))
    control = marker.with_name("control")
    pickle.loads(pickle.dumps(_Planted(control)))  # the payload works: unpickling runs it
    assert control.exists()
    control.unlink()
    return data


def _every_reader(run: str, ctx) -> list[str]:
    """score_pool, select_batch, status and write_report on the run: what each said."""
    said = []
    for call in (
        lambda: score_pool(ScoreInput(run=run), ctx),
        lambda: select_batch(SelectInput(run=run), ctx),
        lambda: status(StatusInput(run=run), ctx),
        lambda: write_report(ReportInput(run=run), ctx),
    ):
        try:
            call()
            said.append("ok")
        except (InputError, StateError) as exc:
            said.append(str(exc))
    return said


def test_a_planted_head_pickle_never_runs(looped_copy, ctx, tmp_path) -> None:
    """A round of an older alloop (head.pkl, no head.npz) whose pickle was replaced by an attack:
    nothing unpickles it, score_pool says how to retrain, and the retrained round scores again."""
    model = ModelDir(ctx.root.run(looped_copy), 3)
    assert model.head_path.name == "head.npz" and model.head_path.is_file()  # train_glmm wrote the safe format
    marker = tmp_path / "pickle_ran"
    model.head_path.unlink()
    model.head_path.with_suffix(".pkl").write_bytes(_planted_pickle(marker))

    said = _every_reader(looped_copy, ctx)

    assert not marker.exists()
    assert "older alloop as a Python pickle" in said[0]
    assert f"`alloop train-glmm {looped_copy} --round 3`" in said[0]
    train_glmm(TrainInput(run=looped_copy, round=3), ctx)
    assert _every_reader(looped_copy, ctx)[0] == "ok"
    assert not marker.exists()


def test_a_pickle_planted_beside_a_head_file_is_ignored(looped_copy, ctx, tmp_path) -> None:
    model = ModelDir(ctx.root.run(looped_copy), 3)
    marker = tmp_path / "pickle_ran"
    model.head_path.with_suffix(".pkl").write_bytes(_planted_pickle(marker))

    said = _every_reader(looped_copy, ctx)

    assert said[0] == "ok" and not marker.exists()


@pytest.mark.parametrize("disguise", ["a pickle named head.npz", "an object array inside the archive"])
def test_a_pickle_disguised_as_the_head_file_is_refused_unopened(disguise, looped_copy, ctx, tmp_path) -> None:
    model = ModelDir(ctx.root.run(looped_copy), 3)
    marker = tmp_path / "pickle_ran"
    planted = _planted_pickle(marker)
    if disguise == "a pickle named head.npz":
        model.head_path.write_bytes(planted)
    else:
        arrays = dict(np.load(model.head_path, allow_pickle=False))
        with model.head_path.open("wb") as handle:
            np.savez(handle, **{**arrays, "a0": np.array([_Planted(marker)], dtype=object)})

    said = _every_reader(looped_copy, ctx)

    assert "is not an alloop head file" in said[0] and "retrain" in said[0]
    assert not marker.exists()
