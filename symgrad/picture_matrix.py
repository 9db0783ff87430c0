"""Pictures of a network's graph at matrix level: one box per matrix node with its shape, value and
adjoint (small matrices in full, large ones as norms), edges labelled with the operation.

>>> import numpy as np, sympy as sp
>>> W = sp.MatrixSymbol("W", 2, 2)
>>> pic = matrix_picture(sp.Trace(W.T*W), [W], {W: np.eye(2)}, "backward", 60)
>>> title, nodes, edges, notes = pic
>>> [info["name"] for _, _, info in nodes]
['W', 'ξ1']
>>> nodes[1][2]["value"]
['(): 2']
"""

from __future__ import annotations

import numpy as np

from .compiled import compile
from .ir import MatLeaf, user_text
from .mattables import cell, matrix_table
from .ops import is_matrix_op
from .printing import text
from .rules import local_partials

__all__ = ["matrix_picture"]


def _cell(v) -> str:
    return cell(v, digits=6, small=4, precision=4)


def _cut(s, n=44):
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[:n - 1] + "…"


def matrix_picture(expr, wrt, at, view, max_nodes):
    """``(title, nodes, edges, notes)`` of a matrix expression's picture (``symgrad.picture.graph``)."""
    t = matrix_table(expr, wrt, at)
    g = compile(expr, wrt=wrt).graph  # the same build, so the same ξ numbers as the table
    rows = {r.name: r for r in t.rows}
    keep = g.nodes[-max_nodes:]
    first = keep[0].index if keep else 1
    values = {(k.name if hasattr(k, "name") else str(k)): v for k, v in at.items()}
    defs = {m.symbol: m.expr for m in g.nodes}
    used = {a for n in keep for a in n.args if a not in defs and a in g.leaves}
    nodes, notes = [], []
    for leaf in g.leaves:
        if leaf not in used:
            continue
        shape = leaf.shape if isinstance(leaf, MatLeaf) else ()
        info = {"name": text(leaf), "title": leaf.name, "definition": ["shape %s" % (tuple(shape),)],
                "value": [_cut("= " + _cell(values.get(leaf.name)))],
                "backward": [_cut("dL/d%s = %s" % (text(leaf), _cell(t.gradient[leaf.name])))]
                if leaf.name in t.gradient else [],
                "forward": [_cut("v_%s = %s" % (text(leaf), _cell(t.direction[leaf.name])))]
                if t.direction and leaf.name in t.direction else []}
        nodes.append(("leaf:" + leaf.name, "wrt" if leaf.name in t.gradient else "leaf", info))
    if first > 1:
        nodes.append(("more", "more", {"name": "ξ1 … ξ%d" % (first - 1),
                                       "definition": ["%d nodes not drawn" % (first - 1)]}))
        notes.append("the graph has %d nodes; the %d nearest the output are drawn" % (len(g.nodes), len(keep)))
    for n in keep:
        r = rows[n.name]
        info = {"name": n.name, "title": "%s = %s" % (n.name, r.definition),
                "definition": [_cut("%s = %s" % (n.name, r.definition))],
                "value": [_cut("%s: %s" % (tuple(r.shape), _cell(r.value)))],
                "backward": [_cut("dL/d%s = %s" % (n.name, _cell(r.adjoint)))],
                "forward": [_cut("d%s/dv = %s" % (n.name, _cell(r.tangent)))]}
        nodes.append((n.name, "output" if n.symbol == g.output else "node", info))
        if r.kink:
            notes.append("%s: %s" % (n.name, r.kink))
    edges = []
    n_name = text
    for n in keep:
        partials = dict(local_partials(n, defs)) if not is_matrix_op(n.expr) else {}
        for a in n.args:
            if a not in defs and a not in g.leaves:
                continue  # a dimension (the batch size B), not an input
            src = "leaf:" + a.name if a not in defs else n_name(a) if g.node(a).index >= first else "more"
            label = "∂%s/∂%s" % (n.name, text(a))
            if a in partials:
                label += " = " + text(partials[a].xreplace({n.symbol: n.expr}))
            else:
                label += " (%s)" % type(n.expr).__name__
            edges.append((src, n.name, [_cut(label)]))
    grads = "; ".join("dL/d%s = %s" % (w, _cell(v)) for w, v in t.gradient.items())
    title = _cut("L = %s = %s; %s" % (_cut(user_text(expr), 60), _cell(t.value), grads), 160)
    notes.append("dξ/dv: tangents along %s" % t.direction_note)
    return title, tuple(nodes), tuple(edges), tuple(notes)
