"""The package's import graph: one direction, no cycle, no module importing another's private names."""

import ast
import os

import pytest

PKG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "symgrad")
MODULES = sorted(f[:-3] for f in os.listdir(PKG) if f.endswith(".py"))


def imports(module):
    """(imported symgrad module, names) for every import in ``module``, function-level ones included."""
    tree = ast.parse(open(os.path.join(PKG, module + ".py"), encoding="utf-8").read())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 or base.startswith("symgrad"):
                base = base.replace("symgrad.", "").replace("symgrad", "")
                if base:
                    out.append((base, [a.name for a in node.names]))
                else:  # from . import x
                    out += [(a.name, []) for a in node.names if a.name in MODULES]
    return out


def test_no_module_imports_private_names_of_another():
    bad = [(m, target, n) for m in MODULES for target, names in imports(m) for n in names
           if n.startswith("_") and n != "__version__"]
    assert not bad, bad


def test_import_graph_has_no_cycle():
    graph = {m: sorted({t for t, _ in imports(m) if t in MODULES and t != m}) for m in MODULES}
    graph["__init__"] = []  # the package's public surface imports everything; nothing imports it back
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        if state.get(m) == "active":
            pytest.fail("import cycle: " + " -> ".join(path + [m]))
        state[m] = "active"
        for t in graph.get(m, []):
            visit(t, path + [m])
        state[m] = "done"

    for m in MODULES:
        visit(m, [])
