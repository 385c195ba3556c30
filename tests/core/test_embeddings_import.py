"""Embeddings made elsewhere: `interview_spec(embeddings=...)` (`alloop init --embeddings`) fills a new
run's cache from a Parquet file, so the loop never embeds; a file that does not fit is refused whole."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alloop.tools.errors import InputError
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.model.encoders import EmbeddingCache, HFEncoder
from alloop.tools.report.datasets import BBC_LABELS
from alloop.tools.run.rundir import RunDir
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.seed_set import SeedInput, seed_set
from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
from alloop.tools.train_glmm import TrainInput, train_glmm


def cached_vectors(run: RunDir) -> dict[str, np.ndarray]:
    spec = run.spec()
    ids, vectors = EmbeddingCache(run, HFEncoder(spec.model.encoder, spec.model.max_length).key).load()
    return dict(zip(ids, np.asarray(vectors), strict=True))


def write_parquet(path, ids, vectors) -> str:
    pq.write_table(pa.table({"id": ids, "embedding": [list(map(float, v)) for v in vectors]}), path)
    return str(path)


@pytest.fixture(scope="module")
def made_elsewhere(looped_run):
    """The looped run's own MiniLM vectors for every pool and held-out item, as another machine would ship them."""
    vectors = cached_vectors(RunDir(looped_run))
    ids = sorted(vectors, reverse=True)  # any order
    return ids, np.stack([vectors[i] * 3.0 for i in ids])  # any length: the import scales to unit length


def create(ctx, bbc_slice, embeddings: str, name: str = "imported"):
    return interview_spec(
        InterviewInput(
            run=name,
            pool=str(bbc_slice["pool"]),
            heldout=str(bbc_slice["heldout"]),
            task_type="categorical",
            labels=BBC_LABELS,
            batch_size=10,
            embeddings=embeddings,
        ),
        ctx,
    )


def test_a_run_created_with_embeddings_never_embeds(ctx, bbc_slice, made_elsewhere, tmp_path, monkeypatch):
    ids, vectors = made_elsewhere
    created = create(ctx, bbc_slice, write_parquet(tmp_path / "emb.parquet", ids, vectors))
    run = ctx.root.run("imported")
    imported = cached_vectors(run)
    assert created.created and set(imported) == set(ids)
    for item_id, vector in zip(ids, vectors, strict=True):
        np.testing.assert_allclose(imported[item_id], vector / np.linalg.norm(vector), rtol=1e-6)

    def no_encoding(*_args, **_kwargs):
        raise AssertionError("the encoder ran although every item came with its vector")

    monkeypatch.setattr(HFEncoder, "encode", no_encoding)
    seed_set(SeedInput(run="imported", size=10), ctx)
    simulate_annotator(SimulateAnnotatorInput(run="imported", gold=str(bbc_slice["gold"])), ctx)
    train_glmm(TrainInput(run="imported"), ctx)
    scored = score_pool(ScoreInput(run="imported"), ctx)
    assert scored.round == 1 and run.results()[-1].gold_macro_f1 is not None


def bad_files(ids: list[str], vectors: np.ndarray):
    """Each way a file can fail to fit the run, with the words its error must say."""
    v = vectors.copy()
    nan, zero = v.copy(), v.copy()
    nan[3, 7] = np.nan
    zero[4] = 0.0
    yield "missing item", ids[1:], v[1:], f"no embedding for 1 of the {len(ids)} pool and held-out items"
    yield "unknown id", [*ids[:-1], "not-an-item"], v, "'not-an-item', which is in neither the pool nor"
    yield "repeated id", [*ids, ids[0]], np.vstack([v, v[:1]]), f"id {ids[0]!r} has a second embedding"
    yield "wrong length", ids, np.hstack([v, v]), "vectors have length 768, but encoder 'all-MiniLM-L6-v2' makes 384"
    yield "NaN", ids, nan, f"row 3 ({ids[3]!r}) has a NaN or infinite value"
    yield "zero vector", ids, zero, f"row 4 ({ids[4]!r}) has a zero vector"


@pytest.mark.parametrize("case", range(6))
def test_a_file_that_does_not_fit_is_refused_and_nothing_is_made(ctx, bbc_slice, made_elsewhere, tmp_path, case):
    name, ids, vectors, message = list(bad_files(*made_elsewhere))[case]
    path = write_parquet(tmp_path / f"{case}.parquet", ids, vectors)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create(ctx, bbc_slice, path)
    assert not ctx.root.exists("imported"), name
    assert not [p for p in ctx.root.path.iterdir() if ".creating-" in p.name]  # no staging folder left


def test_a_ragged_file_or_one_without_the_columns_is_refused(ctx, bbc_slice, made_elsewhere, tmp_path):
    ids, vectors = made_elsewhere
    ragged = [list(map(float, v)) for v in vectors]
    ragged[2] = ragged[2][:100]
    pq.write_table(pa.table({"id": ids, "embedding": ragged}), tmp_path / "ragged.parquet")
    with pytest.raises(InputError, match="row 2 has an embedding of length 100, the others 384"):
        create(ctx, bbc_slice, str(tmp_path / "ragged.parquet"))
    pq.write_table(pa.table({"item": ids}), tmp_path / "columns.parquet")
    with pytest.raises(InputError, match=r"needs columns 'id' and 'embedding' \(a list of floats\); it has \['item'\]"):
        create(ctx, bbc_slice, str(tmp_path / "columns.parquet"))
    assert not ctx.root.exists("imported")


def test_embeddings_come_with_the_run_not_after_it(ctx, bbc_slice, made_elsewhere, tmp_path):
    ids, vectors = made_elsewhere
    path = write_parquet(tmp_path / "emb.parquet", ids, vectors)
    create(ctx, bbc_slice, path)
    assert not create(ctx, bbc_slice, path).written  # the same create again changes nothing
    other = write_parquet(tmp_path / "other.parquet", ids, vectors)
    with pytest.raises(InputError, match="embeddings are imported when a run is created"):
        interview_spec(InterviewInput(run="imported", embeddings=other), ctx)


def test_ids_are_read_as_the_pools_are(ctx, bbc_slice, made_elsewhere, tmp_path):
    ids, vectors = made_elsewhere
    spaced = [f"  {item_id} " for item_id in ids]  # surrounding spaces are dropped, as from the pool file
    assert create(ctx, bbc_slice, write_parquet(tmp_path / "spaced.parquet", spaced, vectors)).created
    assert set(cached_vectors(ctx.root.run("imported"))) == set(ids)


def test_a_runs_vectors_exported_start_another_run_unchanged(ctx, bbc_slice, looped_run, tmp_path):
    from alloop.tools.model.imported_embeddings import export_embeddings

    source = RunDir(looped_run)
    spec = source.spec()
    path = tmp_path / "shared.parquet"
    count = export_embeddings(source, HFEncoder(spec.model.encoder, spec.model.max_length), path)
    create(ctx, bbc_slice, str(path), name="again")
    theirs, ours = cached_vectors(source), cached_vectors(ctx.root.run("again"))
    assert count == len(theirs) and set(ours) == set(theirs)
    assert max(float(np.abs(ours[i] - theirs[i]).max()) for i in ours) < 1e-6
