"""The layout rule, kept by an import scan: files in tools/ are tools, folders are domains.

- a `.py` file directly in `tools/` is a tool (it defines `SPEC`), apart from the contract files;
- a domain package never imports a tool module;
- only the run package builds a path inside a run (`run.path / ...`);
- nothing in `tools/` imports the adapters or their libraries (mcp, typer, rich, alloop's server).
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools"
CONTRACT_FILES = {"__init__", "base", "errors", "registry"}
ADAPTER_LIBRARIES = {"mcp", "typer", "rich"}
SERVER = TOOLS.parent / "server"
SERVER_MODULES = {path.stem for path in SERVER.glob("*.py")} - {"__init__"}
"""Every module of the `alloop` package (app, boundary, cancellation, cli, resources, results, schemas, ...):
read from the folder, so a new adapter module is covered the day it is added."""
RUN_PATH = re.compile(
    r"\b(?:run|rundir|run_dir|target|self\.run)\.path\s*(?:/|\.joinpath\b)"  # a RunDir's folder joined by hand
    r"|\broot\.resolve\([^)]+\)\s*/"  # a run's folder from the root, joined by hand
)


def _imports(tree: ast.AST) -> list[str]:
    """Every module an AST imports, with `from alloop.tools import x` read as `alloop.tools.x`."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def layout_violations(tools: Path) -> list[str]:
    """What breaks the layout rule in a `tools/` tree, one line per finding."""
    found: list[str] = []
    tool_modules = {p.stem for p in tools.glob("*.py")} - CONTRACT_FILES
    for path in sorted(tools.rglob("*.py")):
        where = path.relative_to(tools).as_posix()
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        in_package = path.parent != tools
        if not in_package and path.stem not in CONTRACT_FILES:
            defines_spec = any(
                isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SPEC" for t in node.targets)
                for node in tree.body
            )
            if not defines_spec:
                found.append(f"{where}: a file directly in tools/ must be a tool ending with SPEC")
        for name in _imports(tree):
            parts = name.split(".")
            if parts[0] in ADAPTER_LIBRARIES:
                found.append(f"{where}: imports the adapter library {parts[0]}")
            if parts[0] == "alloop" and len(parts) > 1 and parts[1] in SERVER_MODULES:
                found.append(f"{where}: imports the server module alloop.{parts[1]}")
            if in_package and parts[:2] == ["alloop", "tools"] and len(parts) > 2 and parts[2] in tool_modules:
                found.append(f"{where}: a domain package imports the tool alloop.tools.{parts[2]}")
        if not where.startswith("run/") and RUN_PATH.search(source):
            found.append(f"{where}: builds a path inside a run; ask the run package for it")
    return sorted(set(found))


def test_the_tools_tree_keeps_the_layout_rule() -> None:
    assert layout_violations(TOOLS) == []


def test_the_adapters_build_no_path_inside_a_run() -> None:
    found = [p.name for p in sorted(SERVER.glob("*.py")) if RUN_PATH.search(p.read_text(encoding="utf-8"))]
    assert found == []


def test_the_scan_finds_each_planted_violation(tmp_path: Path) -> None:
    tree = tmp_path / "tools"
    shutil.copytree(TOOLS, tree, ignore=shutil.ignore_patterns("__pycache__", "assets", "templates"))
    (tree / "helpers.py").write_text("X = 1\n")
    (tree / "selection" / "leak.py").write_text("from alloop.tools.select_batch import SelectInput\n")
    (tree / "model" / "paths.py").write_text("def f(run):\n    return run.path / 'models'\n")
    (tree / "report" / "spec_of.py").write_text("def f(root, name):\n    return root.resolve(name) / 'spec.json'\n")
    (tree / "judge" / "talk.py").write_text("import mcp\nfrom alloop.cli import app\n")
    (tree / "people" / "answer.py").write_text("from alloop.results import tool_result\n")

    planted = set(layout_violations(tree)) - set(layout_violations(TOOLS))

    assert sorted(planted) == [
        "helpers.py: a file directly in tools/ must be a tool ending with SPEC",
        "judge/talk.py: imports the adapter library mcp",
        "judge/talk.py: imports the server module alloop.cli",
        "model/paths.py: builds a path inside a run; ask the run package for it",
        "people/answer.py: imports the server module alloop.results",
        "report/spec_of.py: builds a path inside a run; ask the run package for it",
        "selection/leak.py: a domain package imports the tool alloop.tools.select_batch",
    ]
