"""The package's shape: no huge modules, no huge functions, no import cycles.

A newcomer should be able to read any module in one sitting and any function on one screen,
and follow imports without going round in circles.  The limits are checked on the source
(``ast``), so they hold whatever is installed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "stablestyle"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: Known exceptions, to shrink as they are split; paths relative to ``stablestyle/``.
#: Empty: every module is split; keep the mechanism for the next one that grows.
NOT_YET_SPLIT: set[str] = set()
KNOWN_EXCEPTIONS = NOT_YET_SPLIT


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _module_name(path: Path) -> str:
    parts = ("stablestyle", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _checked() -> list[Path]:
    return [p for p in _modules() if _name(p) not in KNOWN_EXCEPTIONS]


@pytest.mark.parametrize("path", _checked(), ids=_name)
def test_module_is_at_most_400_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines; split it by concept"


@pytest.mark.parametrize("path", _checked(), ids=_name)
def test_functions_are_at_most_60_lines(path):
    tree = ast.parse(path.read_text())
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{_name(path)}: {', '.join(long)}"


def test_known_exceptions_still_exist():
    """An allow-list entry for a module that is gone (or fixed) must go too."""
    names = {_name(p) for p in _modules()}
    assert KNOWN_EXCEPTIONS <= names, sorted(KNOWN_EXCEPTIONS - names)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules that ``path`` imports (at any depth of its code, lazy imports included).

    Imports under ``if TYPE_CHECKING:`` are left out: they are for annotations and never run.
    """
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text())
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                 for n in ast.walk(block)}  # imports for annotations only never run: no cycle at import time
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import name``: the submodule pkg.name when there is one, else pkg itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # ``import a.b.c`` where c is a name: the module a.b
                target = target.rpartition(".")[0]
            if target and target != here:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_no_import_cycles():
    paths = {_module_name(p): p for p in _modules()}
    graph = {name: _imports(path, set(paths)) for name, path in paths.items()}
    assert not _cycles(graph), _cycles(graph)


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_says_what_it_owns():
    missing = [_name(p) for p in _modules() if p.stat().st_size and not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, f"modules without a docstring: {missing}"
