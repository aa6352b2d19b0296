"""The module import graph of fieldbench: every module imports, no import circles, layers point one way.

Edges come from the source (``ast``), not from ``sys.modules``: an import inside a function (a
"late" import, the usual way to hide a circle) counts as an edge too, for the layers that must be
free of them.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fieldbench"
#: Layers whose every import, late ones included, must form no circle.
ACYCLIC_WITH_LATE_IMPORTS = ("fieldbench.pipeline", "fieldbench.datasets")
#: The data flows sources -> physics -> pipeline -> datasets -> ...: nothing imports back up the line.
LAYERS = ("fieldbench.sources", "fieldbench.physics", "fieldbench.pipeline", "fieldbench.datasets")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` inside ``module``."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(module: str, *, late: bool) -> set[str]:
    """fieldbench modules that ``module`` imports (at module level; also inside functions if ``late``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    nodes = ast.walk(tree) if late else _top_level(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = (_resolve(module, path.name == "__init__.py", node.level, node.module) if node.level
                      else node.module or "")
            # ``from pkg import name`` imports the submodule pkg.name when there is one.
            names = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in MODULES else origin
                     for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in MODULES and name != module)
    return found


def _top_level(tree: ast.Module):
    """Import statements run at import time: the module body, including ``if``/``try`` blocks, but
    neither functions nor ``if TYPE_CHECKING:``."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [n for h in node.handlers for n in h.body]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                return path[path.index(successor):] + [successor]
            if successor not in state:
                found = visit(successor)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    assert "fieldbench.pipeline._card" in _imports("fieldbench.pipeline", late=False)
    assert "fieldbench._io" in _imports("fieldbench.datasets._registry", late=False)


@pytest.mark.parametrize("module", sorted(name for name in MODULES if name.startswith(ACYCLIC_WITH_LATE_IMPORTS)))
def test_every_datasets_and_pipeline_module_imports(module):
    importlib.import_module(module)


def test_no_import_circle_in_fieldbench():
    """Module-level imports of the whole package form no circle (a circle works only by the order
    in which modules happen to be imported first)."""
    graph = {module: _imports(module, late=False) for module in MODULES}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_no_import_circle_in_pipeline_and_datasets_even_through_late_imports():
    """Reading the registry (_registry), checking (_verify), fetching (_fetch), writing the registry
    (_register) and mirrors (_publish) import one way, without imports hidden in functions to
    break a circle."""
    graph = {module: {target for target in _imports(module, late=True) if target.startswith(ACYCLIC_WITH_LATE_IMPORTS)}
             for module in MODULES if module.startswith(ACYCLIC_WITH_LATE_IMPORTS)}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


@pytest.mark.parametrize("lower", range(len(LAYERS)))
def test_layers_do_not_import_back_up_the_line(lower):
    upper = LAYERS[lower + 1:]
    offenders = {module: sorted(t for t in _imports(module, late=True) if t.startswith(upper))
                 for module in MODULES if module.startswith(LAYERS[lower])}
    assert not {m: t for m, t in offenders.items() if t}, offenders
