"""No import cycle inside llmemf_lite/: a module lower in the stack never imports one above it.

The scan reads every module's source (nothing is imported) and takes every `import` / `from ... import` statement,
wherever it stands: at the top, inside a function, or under `if TYPE_CHECKING:` (a cycle postponed into a function
is still a cycle). A package's `__init__` re-exports its modules; being inside a package does not count as importing
its `__init__`.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llmemf_lite"


def module_names(package: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's __init__) of every module under `package`."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_init else parts)] = (path, is_init)
    return out


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (function-level imports included)."""
    modules = module_names(package)
    top = package.name
    graph = {}
    for name, (path, is_init) in modules.items():
        here = name.split(".") if is_init else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:  # `from . import x` imports the module x when there is one
                    sub = f"{source}.{alias.name}"
                    targets.add(sub if sub in modules else source)
        graph[name] = {t for t in targets if t.split(".")[0] == top and t in modules and t != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (each holds at least one cycle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan; the package is small, recursion depth is no concern
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "llmemf_lite.data.download" in graph and "llmemf_lite.enrich.backend" in graph  # the scan saw them
    cycles = import_cycles(graph)
    assert cycles == [], "import cycles (each list imports itself round): " + "; ".join(map(str, cycles))


def test_the_scan_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "llmemf_lite"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .low import f\n")
    (pkg / "sub" / "low.py").write_text("def f():\n    from .high import g\n    return g\n")
    (pkg / "sub" / "high.py").write_text("from . import low\nfrom ..top import h\n")
    (pkg / "top.py").write_text("import llmemf_lite.sub.low\n")
    graph = import_graph(pkg)
    assert graph["llmemf_lite.sub.low"] == {"llmemf_lite.sub.high"}
    assert graph["llmemf_lite.sub.high"] == {"llmemf_lite.sub.low", "llmemf_lite.top"}
    assert import_cycles(graph) == [["llmemf_lite.sub.high", "llmemf_lite.sub.low", "llmemf_lite.top"]]
