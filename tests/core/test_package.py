"""One distribution, one import name: a built wheel carries every package and template."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_built_wheel_imports_and_runs(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("alloop-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for expected in [
        "alloop/__main__.py",
        "alloop/app.py",
        "alloop/cli.py",
        "alloop/tools/run/rundir.py",
        "alloop/tools/selection/coreset.py",
        "alloop/tools/glmm/laplace.py",
        "alloop/tools/judge/engine.py",
        "alloop/tools/argilla/__init__.py",
        "alloop/prompts/judge_categorical.md.j2",
        "alloop/prompts/review_judge_disagreements.md",
        "alloop/tools/jspsych/templates/index.html.j2",
        "alloop/tools/jspsych/assets/alloop-experiment.js",
        "alloop/prompts/__init__.py",
    ]:
        assert expected in names, expected
    assert not any(n.startswith(("server/", "tools/")) for n in names)  # no plain `server`/`tools` package
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    code = f"""
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]  # hide the editable install
sys.path.insert(0, {str(unpacked)!r})
import alloop, alloop.app, alloop.tools.registry as registry
assert alloop.__file__.startswith({str(unpacked)!r}), alloop.__file__
print(len(registry.TOOLS))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from alloop.tools.registry import TOOLS

    assert int(done.stdout) == len(TOOLS)  # every tool in the registry


def test_skill_md_follows_the_agent_skills_format():
    text = (REPO / "SKILL.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    fields = dict(line.split(": ", 1) for line in front.splitlines() if ": " in line and not line.startswith(" "))
    import re

    assert re.fullmatch(r"[a-z0-9-]{1,64}", fields["name"])
    assert 0 < len(fields["description"]) <= 1024
    assert len(body.splitlines()) < 500
    from alloop.tools.registry import TOOLS

    named = {spec.name for spec in TOOLS if f"`{spec.name}`" in body}
    assert {"status", "interview_spec", "seed_set", "train_glmm", "score_pool", "select_batch",
            "check_convergence", "llm_judge", "push_to_argilla", "build_jspsych"} <= named
