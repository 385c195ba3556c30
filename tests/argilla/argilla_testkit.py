"""Helpers for the Argilla tests: runs with a selection, and annotators using Argilla's REST API.

Annotators answer as the web UI does: they list their queue with
POST /api/v1/me/datasets/{id}/records/search and answer with POST /api/v1/records/{id}/responses
(or PUT /api/v1/responses/{id} to change an answer).
"""

from __future__ import annotations

from typing import Any

import httpx

from alloop.tools.run.items import ItemTable
from alloop.tools.run.rundir import RunDir, RunRoot
from alloop.tools.run.schema import SelectionRow, TaskSpec


def pool_rows(n: int, prefix: str = "item") -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}-{i:03d}", "text": f"Sentence number {i} about {'cats' if i % 2 else 'dogs'}.",
         "source": f"doc{i % 3}"}
        for i in range(n)
    ]


def make_run(
    root: RunRoot,
    name: str,
    task_type: str = "binary",
    labels: list[str] | None = None,
    n_items: int = 12,
    annotators_per_item: int = 2,
    text_fields: list[str] | None = None,
    guidelines: str = "Say whether the sentence is about cats.",
    suggestions: bool = False,
) -> RunDir:
    spec = TaskSpec(
        run=name,
        task_type=task_type,
        labels=labels if labels is not None else ["no", "yes"],
        text_fields=text_fields or ["text"],
        annotators_per_item=annotators_per_item,
        guidelines=guidelines,
        destination="argilla",
        argilla_suggestions=suggestions,
    )
    return root.create(spec, ItemTable.from_rows(pool_rows(n_items)), None)


def select(
    run: RunDir,
    round_: int,
    item_ids: list[str],
    predictions: list[Any] | None = None,
    strategy: str = "entropy",
    score_names: tuple[str, ...] = ("entropy", "margin"),
) -> list[SelectionRow]:
    rows = [
        SelectionRow(
            round=round_,
            rank=rank,
            item_id=item_id,
            strategy=strategy,
            reason=f"{strategy} rank {rank} among uncertain items",
            scores={name: 0.1 * rank + k for k, name in enumerate(score_names)},
            prediction=None if predictions is None else predictions[rank - 1],
            confidence=0.5 + 0.05 * rank,
            model_version=f"round{round_ - 1:02d}-logistic",
            seed=7,
        )
        for rank, item_id in enumerate(item_ids, start=1)
    ]
    run.write_selection(round_, rows)
    return rows


class Annotator:
    """One person in Argilla's web UI, reduced to the REST calls the UI makes."""

    def __init__(self, url: str, username: str, key: str) -> None:
        self.username = username
        self.http = httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": key}, timeout=30)

    def dataset_id(self, name: str, workspace: str = "alloop") -> str:
        for ws in self.http.get("/api/v1/me/workspaces").raise_for_status().json()["items"]:
            if ws["name"] == workspace:
                found = self.http.get("/api/v1/me/datasets", params={"workspace_id": ws["id"]}).raise_for_status()
                for item in found.json()["items"]:
                    if item["name"] == name:
                        return item["id"]
        raise AssertionError(f"{self.username} cannot see dataset {name!r} in {workspace!r}")

    def queue(self, dataset_id: str, status: str = "pending") -> list[dict[str, Any]]:
        """The records the UI shows in the annotator's queue with this response status."""
        body = {
            "filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"},
                                 "values": [status]}]},
        }
        reply = self.http.post(
            f"/api/v1/me/datasets/{dataset_id}/records/search",
            params={"include": ["responses", "suggestions"], "offset": 0, "limit": 100},
            json=body,
        ).raise_for_status()
        return [item["record"] for item in reply.json()["items"]]

    def answer(self, record_id: str, value: Any, status: str = "submitted") -> dict[str, Any]:
        body: dict[str, Any] = {"status": status, "values": {} if value is None else {"label": {"value": value}}}
        return self.http.post(f"/api/v1/records/{record_id}/responses", json=body).raise_for_status().json()

    def change(self, response_id: str, value: Any, status: str = "submitted") -> dict[str, Any]:
        body = {"status": status, "values": {"label": {"value": value}}}
        return self.http.put(f"/api/v1/responses/{response_id}", json=body).raise_for_status().json()

    def answer_queue(self, dataset_id: str, choose) -> dict[str, dict[str, Any]]:
        """Answer every record in the pending queue with choose(record) → (value, status) or None."""
        given = {}
        for record in self.queue(dataset_id):
            decision = choose(record)
            if decision is None:
                continue
            value, status = decision
            given[record["external_id"]] = self.answer(record["id"], value, status)
        return given
