"""A third-party MCP client: the MCP Inspector CLI from npm (installed by scripts/setup.d)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSPECTOR = REPO / ".cache/npm-inspector/node_modules/.bin/mcp-inspector"

pytestmark = pytest.mark.skipif(
    not INSPECTOR.exists() and not os.environ.get("CI"),
    reason="run scripts/setup.sh --all to install the MCP Inspector",
)


def inspect(root: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HOME": str(home),
        "MCP_STORAGE_DIR": str(home),
        "MCP_INSPECTOR_OAUTH_STATE_PATH": str(home / "oauth.json"),
    }
    command = [str(INSPECTOR), "--cli", sys.executable, "-m", "alloop", "serve", "--root", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=180, cwd=home)


def test_inspector_lists_the_tools_and_calls_one(tmp_path, looped_run):
    root = tmp_path / "runs"
    shutil.copytree(looped_run, root / "looped")
    listed = inspect(root, tmp_path, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    names = {tool["name"] for tool in json.loads(listed.stdout)["tools"]}
    assert {"status", "train_glmm", "select_batch", "interview_spec"} <= names
    called = inspect(
        root,
        tmp_path,
        "--method",
        "tools/call",
        "--tool-name",
        "status",
        "--tool-args-json",
        json.dumps({"run": "looped"}),
        "--format",
        "json",
    )
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)["result"]
    assert result["structuredContent"]["model_rounds"] == [1, 2, 3]


def test_inspector_sees_a_tool_error(tmp_path):
    (tmp_path / "runs").mkdir()
    called = inspect(
        tmp_path / "runs",
        tmp_path,
        "--method",
        "tools/call",
        "--tool-name",
        "status",
        "--tool-args-json",
        json.dumps({"run": "nope"}),
        "--format",
        "json",
    )
    assert called.returncode == 5  # the Inspector's exit code for isError
    assert "no run 'nope'" in called.stdout + called.stderr
