"""The report package's structure: no import cycles, no private imports, one extension point.

The first checks read the source with `ast` instead of importing it, so they see every import,
including those inside functions, and a cycle that Python happens to tolerate today (because
one side imports lazily) still fails here.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import sslscope.report
from sslscope.report import SECTIONS, build_report
from sslscope.report.html import SECTION_MODULES, sections_from

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "sslscope"
REPORT = PACKAGE / "report"
# The only places allowed to import the report: it sits on top of the core, never inside it.
REPORT_USERS = (REPORT, PACKAGE / "cli.py", PACKAGE / "studies")
MODULE_STRING = re.compile(r"^sslscope(\.[A-Za-z_][A-Za-z0-9_]*)+$")


@dataclass(frozen=True)
class Import:
    """One import statement (or a module named in a string, as importlib gets it)."""

    module: str  # absolute module name
    names: tuple[str, ...]  # ``from module import names``; () for ``import module``
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[Import]:
    """Every import in `path`, relative ones resolved, plus strings that name a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, (), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            found.append(Import(module, tuple(a.name for a in node.names), node.lineno))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and MODULE_STRING.match(node.value)):
            # importlib.import_module("sslscope.report.sections_run") is an import too
            found.append(Import(node.value, (), node.lineno))
    return found


def _is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _report_graph() -> dict[str, set[str]]:
    """``{module: report modules it imports}`` over sslscope/report/*.py."""
    modules = {_module_name(p): p for p in sorted(REPORT.glob("*.py"))}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for imp in _imports(path):
            if imp.module not in modules:
                continue
            # ``from sslscope.report import html`` imports the submodule, not only __init__
            subs = {f"{imp.module}.{n}" for n in imp.names} & modules.keys()
            if subs:
                graph[module] |= subs
            if not imp.names or len(subs) < len(imp.names):
                graph[module].add(imp.module)
        graph[module].discard(module)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as ``[a, b, …, a]``, or None if it is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: fully explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_cycles():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_report_modules_import_each_other_without_a_cycle():
    graph = _report_graph()
    # The parser sees static and importlib imports alike, or this test would pass vacuously.
    assert "sslscope.report.page" in graph["sslscope.report.html"]
    assert "sslscope.report.sections_run" in graph["sslscope.report.html"]
    assert "sslscope.report.page" in graph["sslscope.report.sections_embeddings"]
    assert _find_cycle(graph) is None, f"import cycle: {' -> '.join(_find_cycle(graph))}"


def _module_aliases(tree: ast.AST) -> set[str]:
    """Names bound to sslscope modules: ``import sslscope.x as m``, ``from sslscope import x``."""
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            aliases |= {a.asname or a.name for a in node.names
                        if _is_module(f"{node.module}.{a.name}")}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname or a.name.split(".")[0] for a in node.names
                        if a.name.split(".")[0] == "sslscope"}
    return aliases


def test_report_modules_use_only_public_names_of_other_modules():
    bad = []
    for path in sorted(REPORT.glob("*.py")):
        for imp in _imports(path):
            if imp.module.split(".")[0] != "sslscope":
                continue
            private = [n for n in (*imp.module.split("."), *imp.names) if n.startswith("_")]
            if private:
                bad.append(f"{path.name}:{imp.line} {imp.module}: {', '.join(private)}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = _module_aliases(tree)
        for node in ast.walk(tree):  # report_html._CSS is a private import by another route
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                bad.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    assert not bad, "private names used across modules:\n" + "\n".join(bad)


def test_the_core_never_imports_the_report():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if any(path == user or user in path.parents for user in REPORT_USERS):
            continue
        for imp in _imports(path):
            target = {imp.module} | {f"{imp.module}.{n}" for n in imp.names}
            if any(t == "sslscope.report" or t.startswith("sslscope.report.") for t in target):
                bad.append(f"{path.relative_to(REPO)}:{imp.line} imports {imp.module}")
    assert not bad, "only the CLI and studies may import sslscope.report:\n" + "\n".join(bad)


def test_sections_are_the_registered_modules_in_page_order():
    assert SECTIONS == sections_from(SECTION_MODULES)
    assert [fn.__name__ for fn in SECTIONS] == [
        "summary_section", "loss_section", "probe_section", "spectrum_over_training_section",
        "geometry_section", "capacity_section", "clustering_section", "spectrum_section",
        "embedding_map_section", "neighbours_section", "config_section",
    ]
    assert sslscope.report.SECTIONS is SECTIONS
    with pytest.raises(AttributeError):
        sections_from(["sslscope.report.page"])  # a module without SECTIONS


def test_a_new_section_module_is_one_registry_line(tmp_path, monkeypatch):
    name = "sslscope_test_extra_sections"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent('''
        from sslscope.report.page import Section

        def extra_section(record):
            return Section("Extra section title", f"<p>{len(record.train_rows)} rows</p>", "extra")

        SECTIONS = [extra_section]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"method": "simclr", "dataset": "digits"}))
    (run_dir / "metrics.jsonl").write_text('{"step": 0, "train/loss": 1.0}\n')
    try:
        page = build_report(run_dir, sections=sections_from([*SECTION_MODULES, name]))
        text = page.read_text(encoding="utf-8")
    finally:
        sys.modules.pop(name, None)
    assert '<a href="#extra">Extra section title</a>' in text and "<p>1 rows</p>" in text
    assert text.index('id="config"') < text.index('id="extra"')  # after the registered ones
    assert "Extra section title" not in build_report(run_dir).read_text(encoding="utf-8")
