"""Bad input for the Argilla tools: each is a clear AlloopError, and nothing is lost or half-written."""

from __future__ import annotations

import argilla as rg
import pytest
from argilla_stack import free_port
from argilla_testkit import Annotator, make_run, select

from alloop.tools.base import ToolContext
from alloop.tools.errors import InputError, ServiceError, StateError
from alloop.tools.pull_from_argilla import PullFromArgillaInput, pull_from_argilla
from alloop.tools.push_to_argilla import PushToArgillaInput, push_to_argilla

pytestmark = pytest.mark.integration


def snapshot(run) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file() and p.name != ".lock"}


def test_server_down_names_the_url(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(ctx.root, "down")
    select(run, 1, ["item-000"])
    before = snapshot(run)
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ARGILLA_API_URL", url)
    monkeypatch.setenv("ARGILLA_API_KEY", "some.key.value")
    with pytest.raises(ServiceError, match=f"cannot reach Argilla at {url}.*ARGILLA_API_URL"):
        push_to_argilla(PushToArgillaInput(run="down", round=1), ctx)
    with pytest.raises(ServiceError, match=r"cannot reach Argilla"):
        pull_from_argilla(PullFromArgillaInput(run="down"), ctx)
    assert snapshot(run) == before


def test_wrong_url_is_not_an_argilla_server(argilla_server, ctx: ToolContext, monkeypatch) -> None:
    run = make_run(ctx.root, "wrongurl")
    select(run, 1, ["item-000"])
    monkeypatch.setenv("ARGILLA_API_URL", argilla_server.url + "/not-argilla")
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server.owner_key)
    with pytest.raises(ServiceError, match=r"not-argilla.*ARGILLA_API_URL"):
        push_to_argilla(PushToArgillaInput(run="wrongurl", round=1), ctx)


def test_missing_environment(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(ctx.root, "noenv")
    select(run, 1, ["item-000"])
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    with pytest.raises(ServiceError, match=r"ARGILLA_API_URL and ARGILLA_API_KEY not set"):
        push_to_argilla(PushToArgillaInput(run="noenv", round=1), ctx)


def test_wrong_key_never_echoes_it(argilla_server, ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(ctx.root, "badkey")
    select(run, 1, ["item-000"])
    before = snapshot(run)
    monkeypatch.setenv("ARGILLA_API_URL", argilla_server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", "secret.wrong.key")
    with pytest.raises(ServiceError, match=r"refused the API key.*ARGILLA_API_KEY") as caught:
        push_to_argilla(PushToArgillaInput(run="badkey", round=1), ctx)
    assert "secret.wrong.key" not in str(caught.value)
    assert snapshot(run) == before


def test_annotator_key_cannot_push(argilla_server, ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(ctx.root, "annkey")
    select(run, 1, ["item-000"])
    monkeypatch.setenv("ARGILLA_API_URL", argilla_server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server.annotator_keys["ann1"])
    with pytest.raises(ServiceError, match=r"ann1 .role annotator. may not.*owner's or admin's"):
        push_to_argilla(PushToArgillaInput(run="annkey", round=1), ctx)


def test_changed_questions_stop_push_and_pull(
    argilla_env, ctx: ToolContext, annotators: dict[str, Annotator]
) -> None:
    run = make_run(ctx.root, "drift", labels=["no", "yes"], annotators_per_item=1)
    select(run, 1, ["item-000", "item-001"], predictions=["yes", "no"])
    push_to_argilla(PushToArgillaInput(run="drift", round=1, annotators=["ann1"]), ctx)
    ann1 = annotators["ann1"]
    ann1.answer_queue(ann1.dataset_id("drift"), lambda r: ("yes", "submitted"))

    spec = run.spec()
    run.write_spec(spec.model_copy(update={"task_type": "categorical", "labels": ["no", "yes", "unsure"]}),
                   reason="added a label")
    before = snapshot(run)
    with pytest.raises(StateError, match=r"no longer matches spec.json.*offers \['no', 'yes'\].*'unsure'"):
        push_to_argilla(PushToArgillaInput(run="drift", round=1), ctx)
    with pytest.raises(StateError, match=r"no longer matches spec.json v2.*nothing was pulled"):
        pull_from_argilla(PullFromArgillaInput(run="drift"), ctx)
    assert snapshot(run) == before

    # Pushing to a new dataset made for the new spec works.
    fresh = push_to_argilla(PushToArgillaInput(run="drift", round=1, dataset="drift-v2"), ctx)
    assert fresh.created_dataset and fresh.created == 2


def test_answer_for_unknown_item(argilla_env, ctx: ToolContext, annotators: dict[str, Annotator]) -> None:
    run = make_run(ctx.root, "ghosts", annotators_per_item=1)
    select(run, 1, ["item-000"], predictions=["yes"])
    pushed = push_to_argilla(PushToArgillaInput(run="ghosts", round=1, annotators=["ann1"]), ctx)
    # Someone adds a record by hand, for an item the run has never had.
    client = rg.Argilla(api_url=argilla_env.url, api_key=argilla_env.owner_key)
    dataset = client.datasets(name="ghosts", workspace="alloop")
    dataset.records.log([rg.Record(id="ghost-1", fields={"text": "Who am I?"}, metadata={"round": 1})])
    ann1 = annotators["ann1"]
    answered = ann1.answer_queue(ann1.dataset_id("ghosts"), lambda r: ("yes", "submitted"))
    assert set(answered) == {"item-000", "ghost-1"}

    before = snapshot(run)
    unknown = r"1 record\(s\) whose item run 'ghosts' does not know: 'ghost-1'.*skip_unknown"
    with pytest.raises(InputError, match=unknown):
        pull_from_argilla(PullFromArgillaInput(run="ghosts"), ctx)
    assert snapshot(run) == before

    pulled = pull_from_argilla(PullFromArgillaInput(run="ghosts", skip_unknown=True), ctx)
    assert pulled.new_events == 1 and [u["item_id"] for u in pulled.skipped_unknown] == ["ghost-1"]
    assert [e.item_id for e in run.labels()] == ["item-000"]
    assert pushed.dataset_id


def test_pull_before_push_says_what_to_do(argilla_env, ctx: ToolContext) -> None:
    make_run(ctx.root, "early")
    with pytest.raises(StateError, match=r"no Argilla dataset 'early'.*push a round first"):
        pull_from_argilla(PullFromArgillaInput(run="early"), ctx)


def test_selection_with_item_not_in_pool(argilla_env, ctx: ToolContext) -> None:
    run = make_run(ctx.root, "strays")
    select(run, 1, ["item-000", "not-an-item"])
    with pytest.raises(InputError, match=r"\['not-an-item'\] are not in the pool"):
        push_to_argilla(PushToArgillaInput(run="strays", round=1), ctx)


def test_unfinished_dataset_of_a_crashed_push_is_made_anew(argilla_env, ctx: ToolContext) -> None:
    run = make_run(ctx.root, "crashed")
    select(run, 1, ["item-000"], predictions=["yes"])
    client = rg.Argilla(api_url=argilla_env.url, api_key=argilla_env.owner_key)
    workspace = client.workspaces("alloop") or rg.Workspace(name="alloop", client=client).create()
    # What a push that died after POST /datasets leaves behind: a draft with no question yet.
    draft = client.api.http_client.post("/api/v1/datasets", json={"name": "crashed", "workspace_id": str(workspace.id)})
    assert draft.json()["status"] == "draft"
    pushed = push_to_argilla(PushToArgillaInput(run="crashed", round=1), ctx)
    assert pushed.created_dataset and pushed.created == 1
    assert "unfinished draft" in pushed.warnings[0]
