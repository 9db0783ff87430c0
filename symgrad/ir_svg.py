"""How a ξ graph draws itself: ``decompose(expr)`` shows as a picture in Jupyter (``_repr_svg_``).

Leaves and nodes are boxes (name, definition, the readable form for a scalar node, the shape
for a matrix one), arguments are arrows into the node that reads them, laid out by
``symgrad.layout_svg`` as ``symgrad.graph`` draws its pictures (which add the values and
derivatives at a point). Graphs larger than ``MAX_NODES`` keep the nodes nearest the output.

>>> import sympy as sp, xml.etree.ElementTree as ET
>>> from symgrad.frontend import decompose
>>> x, w = sp.symbols("x w")
>>> svg = decompose(sp.exp(-w*x))._repr_svg_()
>>> [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")][1:]
['w', 'x', 'ξ1', 'ξ1 = -w*x', 'ξ2', 'ξ2 = exp(ξ1)', '= exp(-w*x)']
"""

from __future__ import annotations

import sympy as sp

from .layout_svg import Arrow, Box, draw
from .publish import visible

__all__ = ["GraphPicture", "graph_svg", "MAX_NODES"]

MAX_NODES = 60
WIDE = 44  # characters of a definition shown before it is cut with …


def _cut(s: str, n: int = WIDE) -> str:
    s = visible(" ".join(str(s).split()))
    return s if len(s) <= n else s[:n - 1] + "…"


def _shape(shape) -> list:
    return [("shape (%s)" % ", ".join(sp.sstr(d) for d in shape), "value")] if shape else []


def graph_svg(graph, max_nodes: int = MAX_NODES) -> str:
    """SVG text of a ``symgrad.ir.Graph``: its structure, without values."""
    nodes = graph.nodes[-max_nodes:] if len(graph.nodes) > max_nodes else graph.nodes
    mine = {n.symbol for n in graph.nodes}
    kept = {n.symbol for n in nodes}
    small = {} if graph.is_matrix else graph.small_sources()
    used = {a for n in nodes for a in n.args}
    boxes, ids, notes = [], {}, []
    for k, s in enumerate(graph.leaves):
        if s in used:
            ids[s] = "leaf:%d" % k
            boxes.append(Box(ids[s], [(_cut(s), "name")] + _shape(graph.shape(s)), "#f2f2f2", title=_cut(s, 400)))
    if len(nodes) < len(graph.nodes):
        first = len(graph.nodes) - len(nodes)
        boxes.append(Box("more", [("ξ1 … ξ%d" % first, "name"), ("%d nodes not drawn" % first, "")], "#eeeeee"))
        notes.append("the graph has %d nodes; the %d nearest the output are drawn" % (len(graph.nodes), len(nodes)))
    for n in nodes:
        ids[n.symbol] = n.name
        lines = [(n.name, "name"), (_cut(repr(n)), "")]
        if not graph.is_matrix:
            shown = graph.readable(n, small)
            if shown != n.expr:
                lines.append((_cut("= " + sp.sstr(shown, order="none")), ""))
        lines += _shape(graph.shape(n.symbol))
        boxes.append(Box(n.name, lines, "#e8f1ff" if n.symbol == graph.output else "#ffffff",
                         double=n.symbol == graph.output, title=_cut(repr(n), 400)))
    arrows = [Arrow(ids[a] if a in ids else "more", n.name) for n in nodes for a in n.args
              if a in ids or a in mine and a not in kept]
    what = graph.note(graph.nodes[-1], small) if graph.is_matrix and graph.nodes else sp.sstr(graph.expr)
    title = "ξ graph of %s: %d node%s" % (_cut(what, 100), len(graph.nodes),
                                          "" if len(graph.nodes) == 1 else "s")
    return draw(boxes, arrows, title, notes)


class GraphPicture:
    """Mixin of ``symgrad.ir.Graph``: ``to_svg()`` and Jupyter's ``_repr_svg_``."""

    __slots__ = ()

    def to_svg(self, max_nodes: int = MAX_NODES) -> str:
        """The graph's structure as standalone SVG text (values and derivatives: ``symgrad.graph``)."""
        return graph_svg(self, max_nodes)

    def _repr_svg_(self) -> str:
        return graph_svg(self)
