"""Pictures of the ξ graph at a point: the lecture's derivative computation graph, as SVG or DOT.

Each node shows its name, definition, value and its adjoint dL/dξ (backward view) or its
tangent dξ/dw (forward view); each edge carries the local partial, symbolic and at the
point. In the backward view the arrows point from a node to its arguments, as the
lecture's derivative graph does ("each edge is assigned the derivative of its origin with
respect to its destination"); in the forward view they follow the data. SVG is drawn by
``symgrad.layout_svg`` (no Graphviz needed); ``to_dot()`` is there for those who have it.
Networks are drawn at matrix level: shapes, small values in full, large ones as norms.

>>> import sympy as sp, xml.etree.ElementTree as ET
>>> x, w = sp.symbols("x w")
>>> pic = graph(sp.exp(-w*x), wrt=w, at={x: 3, w: 1})
>>> root = ET.fromstring(pic.to_svg())
>>> "∂ξ2/∂ξ1 = exp(ξ1)" in [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
True
>>> print(pic.to_dot().splitlines()[0])
digraph symgrad {
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .atpoint import at_point
from .errors import InputError
from .layout_svg import Arrow, Box, draw
from .printing import text

__all__ = ["Picture", "graph", "MAX_NODES", "VIEWS"]

MAX_NODES = 60  # drawn in full up to this many nodes; larger graphs keep the part nearest the output
VIEWS = ("backward", "forward")
WIDE = 44  # characters of a definition or partial shown before it is cut with …


def _cut(s: str, n: int = WIDE) -> str:
    s = " ".join(str(s).split())  # a name with a newline stays on one line
    return s if len(s) <= n else s[:n - 1] + "…"


def _num(v) -> str:
    return "%.6g" % float(v)


@dataclass(frozen=True)
class Picture:
    """A drawable graph: ``nodes`` (id, kind, lines) and ``edges`` (arg id, node id, lines),
    both views' lines included; ``to_svg(view)``, ``to_dot(view)``, ``_repr_svg_()``."""

    title: str
    nodes: tuple  # (id, kind, {"name", "definition", "value", "backward", "forward"})
    edges: tuple  # (src id, dst id, [label lines])
    notes: tuple = ()
    view: str = "backward"

    def _check(self, view):
        view = view or self.view
        if view not in VIEWS:
            raise InputError("view must be one of %s, got %r" % (", ".join(VIEWS), view))
        return view

    def to_svg(self, view: str | None = None) -> str:
        """The picture as standalone SVG text (``view`` "backward": adjoints, "forward": tangents)."""
        view = self._check(view)
        fills = {"wrt": "#fff4c2", "leaf": "#f2f2f2", "node": "#ffffff", "output": "#e8f1ff", "more": "#eeeeee"}
        boxes = []
        for nid, kind, info in self.nodes:
            lines = [(info["name"], "name")] + [(t, "") for t in info.get("definition", [])]
            lines += [(t, "value") for t in info.get("value", [])]
            lines += [(t, "adjoint" if view == "backward" else "tangent") for t in info.get(view, [])]
            boxes.append(Box(nid, lines, fills.get(kind, "#ffffff"), double=kind == "output",
                             title=info.get("title", "")))
        color = "#b3261e" if view == "backward" else "#1a5fb4"
        arrows = [Arrow(s, d, list(lines), color, backward=view == "backward") for s, d, lines in self.edges]
        heading = "%s — %s view" % (self.title, "backward (adjoints dL/dξ; arrows from a node to its arguments)"
                                    if view == "backward" else "forward (tangents; arrows follow the data)")
        return draw(boxes, arrows, heading, self.notes)

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def to_dot(self, view: str | None = None) -> str:
        """Graphviz DOT text (``dot -Tsvg``), labels escaped."""
        view = self._check(view)
        out = ["digraph symgrad {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", '
               'fontname="DejaVu Sans Mono", fillcolor=white];', "  label=%s; labelloc=t;" % _dot(self.title)]
        for nid, kind, info in self.nodes:
            lines = [info["name"], *info.get("definition", []), *info.get("value", []), *info.get(view, [])]
            extra = ', fillcolor="#fff4c2"' if kind == "wrt" else ", peripheries=2" if kind == "output" else ""
            out.append("  %s [label=%s%s];" % (_dot(nid), _dot("\n".join(lines)), extra))
        for s, d, lines in self.edges:
            out.append("  %s -> %s [label=%s%s];" % (_dot(s), _dot(d), _dot("\n".join(lines)),
                                                    ", dir=back" if view == "backward" else ""))
        return "\n".join(out + ["}"])


def _dot(s: str) -> str:
    """A DOT string literal: quotes and backslashes escaped, line breaks as \\n."""
    body = str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return '"%s"' % body


def graph(expr, wrt, at, view: str = "backward", max_nodes: int = MAX_NODES) -> Picture:
    """The derivative computation graph of ``expr`` at ``at`` for the parameters ``wrt``.

    Raises InputError for a missing value or an unknown view; ``max_nodes`` bounds what is
    drawn (a larger graph keeps the nodes nearest the output and says how many it left out).

    >>> import sympy as sp
    >>> x, y, w = sp.symbols("x y w")
    >>> pic = graph(-y*sp.log(1/(1 + sp.exp(-w*x))), wrt=w, at={x: 3, y: 1, w: 3})
    >>> [info["name"] for _, _, info in pic.nodes][:4]
    ['y', 'w', 'x', 'ξ1']
    >>> pic.edges[1]
    ('leaf:x', 'ξ1', ['∂ξ1/∂x = -w', '= -3'])
    """
    if view not in VIEWS:
        raise InputError("view must be one of %s, got %r" % (", ".join(VIEWS), view))
    from .matrix import is_matrix_expr

    if isinstance(expr, sp.Basic) and is_matrix_expr(expr):
        from .picture_matrix import matrix_picture

        return Picture(*matrix_picture(expr, wrt, at, view, max_nodes), view)
    p = at_point(expr, wrt, at)
    g = p.graph
    small = g.small_sources()
    keep = g.nodes[-max_nodes:] if len(g.nodes) > max_nodes else g.nodes
    first = keep[0].index if keep else 1
    wrt_names = [w.name for w in p.wrt]
    nodes, ids, notes = [], {}, []
    used = {e.arg for e in p.edges if e.node.index >= first}
    for s in g.leaves:
        if s not in used:
            continue
        ids[s] = "leaf:" + s.name
        info = {"name": text(s), "value": ["= %s" % _num(p.values[s])], "title": s.name,
                "backward": ["dL/d%s = %s" % (text(s), _num(p.adjoints[s]))] if s in p.wrt else [],
                "forward": ["d%s/d%s = %s" % (text(s), w, _num(p.tangents[w][s])) for w in p.wrt]
                if s in p.wrt else []}
        nodes.append((ids[s], "wrt" if s in p.wrt else "leaf", info))
    if first > 1:
        ids["more"] = "more"
        nodes.append(("more", "more", {"name": "ξ1 … ξ%d" % (first - 1),
                                       "definition": ["%d nodes not drawn" % (first - 1)]}))
        notes.append("the graph has %d nodes; the %d nearest the output are drawn (max_nodes=%d)"
                     % (len(g.nodes), len(keep), max_nodes))
    for n in keep:
        ids[n.symbol] = n.name
        definition = [_cut("%s = %s" % (n.name, text(n.expr)))]
        shown = g.readable(n, small)
        if shown != n.expr:
            definition.append(_cut("  = " + text(shown)))
        info = {"name": n.name, "definition": definition, "value": ["value = %s" % _num(p.values[n.symbol])],
                "title": "%s = %s" % (n.name, text(n.expr)),
                "backward": ["dL/d%s = %s" % (n.name, _num(p.adjoints[n.symbol]))],
                "forward": ["d%s/d%s = %s" % (n.name, w, _num(p.tangents[w2][n.symbol]))
                            for w, w2 in zip(wrt_names, p.wrt)]}
        nodes.append((n.name, "output" if n.symbol == g.output else "node", info))
    edges = []
    for e in p.edges:
        if e.node.index < first:
            continue
        src = ids.get(e.arg, "more")
        edges.append((src, ids[e.node], [_cut("%s = %s" % (e.label, text(e.partial))), "= " + _num(e.value)]))
    notes += ["%s: %s" % (text(s), note) for s, note in p.notes.items()]
    grads = "; ".join("dL/d%s = %s" % (w.name, _num(p.adjoints[w])) for w in p.wrt)
    title = _cut("L = %s at %s: L = %s; %s" % (
        text(g.expr), ", ".join("%s = %s" % (s.name, _num(v)) for s, v in p.point.items()),
        _num(p.values[g.output]), grads), 160)
    return Picture(title, tuple(nodes), tuple(edges), tuple(notes), view)
