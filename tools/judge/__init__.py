"""alloop.tools.judge: an LLM judge that helps and never passes for a human.

- `backends`: the backend family (anthropic, sampling, local), one interface, a registry.
- `rubrics`: versioned Jinja2 rubrics (prompts/judge_<task_type>.md.j2 or a file in the run) and
  the prompt around them, with item text passed as data.
- `parsing`: strict parsing of answers into the label schema.
- `answers`: every answer the schema allows, for backends that choose instead of writing.
- `items`: which items a call judges, and what the judge sees of each.
- `plan`: from the tool's arguments to a ready job, and the sampling requests it would send.
- `engine`: cache, budget, bounded concurrency, retries and timeouts, one record per item.
- `ledger`: the label events a call's judgments add, and what the judge has spent.
- `figures`: the judge_* columns of results.tsv, computed apart from gold.
- `disagreements`: where the judge differs from gold or the human answers, for review.
The tool itself is alloop.tools.llm_judge.
"""

from __future__ import annotations

REVIEW_PROMPT = "review_judge_disagreements.md"


def review_disagreements_prompt(run: str, round: int | None = None) -> str:
    """The MCP prompt that walks an agent through a round's judge disagreements, rendered."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    from alloop.prompts import read_template

    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    return env.from_string(read_template(REVIEW_PROMPT)).render(run=run, round=round if round is not None else "")
