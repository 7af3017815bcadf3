"""Rules about the shape of the code itself: which module may import which, and file sizes."""
import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cnncompile"
MAX_LINES = 450


def _module_names():
    """Dotted name -> file of every module in the package (a package is its __init__.py)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _resolve(module, path, node):
    """The absolute module an ImportFrom's ``from`` part names, for a file ``path`` of
    ``module``."""
    if not node.level:
        return node.module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def import_graph():
    """The package's static import graph: an edge a -> b for every import statement in a
    (at module level or inside a function) that names b."""
    modules = _module_names()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path, node)
                # `from pkg import x` imports submodule pkg.x if there is one, else reads
                # an attribute of pkg.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            else:
                continue
            graph.add_edges_from((module, t) for t in targets if t in modules and t != module)
    return graph


def test_no_import_cycles():
    """No module imports, even lazily inside a function, a module that imports it back: a
    cycle means neither module can be read, tested or changed without the other.

    An edge is an import statement. `from pkg import x` is an edge to submodule pkg.x when
    there is one, else to pkg's __init__ (so each op's `from . import register` is an edge
    to ops/__init__.py, which makes no cycle since nothing below is counted from there).
    A package's importlib/pkgutil discovery of its own submodules (the op registry) is not
    an import statement, so not an edge. `import a.b.c` and `from a.b.c import x` count
    a.b.c only, not the parent packages Python also runs first: counting those would put
    every submodule of a package whose __init__ imports it (cnncompile.nn) on a cycle.
    """
    graph = import_graph()
    cycles = []
    for cycle in nx.simple_cycles(graph):
        start = cycle.index(min(cycle))  # each cycle printed from its first module by name
        cycles.append(cycle[start:] + cycle[:start + 1])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in sorted(cycles))


def test_no_long_files():
    """Every module in cnncompile/ and every runtime header stays short enough to read
    whole: a longer file is a sign it holds more than one idea."""
    files = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "runtime").glob("*.h"))
    long = {str(f.relative_to(ROOT)): n for f in files
            if (n := len(f.read_text().splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"
