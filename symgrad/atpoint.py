"""A scalar ξ graph evaluated at a point: node values, edge partials, tangents and adjoints.

One evaluator serves the pictures (``symgrad.picture``), the chain-rule paths
(``symgrad.explain``) and the table checker (``symgrad.check_table``). Every edge
``node ← arg`` carries the registry's local partial ∂node/∂arg (``rules.local_partials``,
the rule the generated code uses), written over the node's arguments, and its value at the
point. Values are built node by node (30 significant digits, or exact SymPy numbers with
``exact=True``), so the work is linear in the number of nodes; tangents and adjoints
follow from the edges by the chain rule in one forward and one backward walk.

>>> import sympy as sp
>>> x, y, w = sp.symbols("x y w")
>>> p = at_point(-y*sp.log(1/(1 + sp.exp(-w*x))), wrt=[w], at={x: 3, y: 1, w: 3})
>>> [e.label for e in p.edges_into(p.graph.nodes[3].symbol)]
['∂ξ4/∂ξ3']
>>> round(float(p.gradient["w"]), 15)
-0.000370183727959
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .errors import InputError
from .graph import decompose
from .inputs import as_symbols
from .printing import text
from .rules import kink_note, local_partials

__all__ = ["Edge", "PointGraph", "at_point", "point_values", "DIGITS"]

DIGITS = 30  # significant digits of the numeric evaluation


@dataclass(frozen=True, slots=True)
class Edge:
    """``node ← arg`` with the local partial ∂node/∂arg (over the arguments) and its value."""

    node: sp.Symbol
    arg: sp.Symbol
    partial: sp.Expr
    value: sp.Expr

    @property
    def label(self) -> str:
        return "∂%s/∂%s" % (text(self.node), text(self.arg))


@dataclass(frozen=True)
class PointGraph:
    """The graph of ``expr`` at ``point``; ``values``, ``tangents[w]`` and ``adjoints`` map every
    leaf and node symbol to a SymPy number; ``edges`` are in node order, arguments in order."""

    graph: object
    wrt: tuple
    point: dict
    values: dict
    edges: tuple
    tangents: dict
    adjoints: dict
    notes: dict

    @property
    def gradient(self) -> dict:
        return {w.name: self.adjoints.get(w, sp.S.Zero) for w in self.wrt}

    @property
    def output(self):
        return self.graph.output

    def edges_into(self, node) -> list:
        """The edges whose node is ``node`` (one per argument it reads)."""
        return [e for e in self.edges if e.node == node]

    def consumers(self) -> dict:
        """{symbol: the edges that read it}."""
        out: dict = {}
        for e in self.edges:
            out.setdefault(e.arg, []).append(e)
        return out


def point_values(graph, at, exact: bool = False, digits: int = DIGITS) -> dict:
    """{leaf: SymPy number} from ``at`` ({symbol or name: number}); raises InputError naming a
    missing or non-numeric value. Values for symbols the graph does not use are ignored.
    The one reader of a point for tables, pictures, explain and check_table."""
    if not isinstance(at, dict):
        raise InputError("at must be a dict {symbol: value}, got %s" % type(at).__name__)
    by_name = {s.name: s for s in graph.leaves}
    point = {}
    for k, v in at.items():
        name = k.name if isinstance(k, sp.Symbol) else str(k)
        if name not in by_name:
            continue  # a value for a symbol the expression does not use is harmless
        try:
            num = sp.sympify(v, strict=True) if not isinstance(v, str) else None
        except (sp.SympifyError, TypeError):
            num = None
        if num is None or not num.is_number or num.free_symbols:
            raise InputError("value of %r is %r, which is not a number" % (name, v))
        if not num.is_real or not num.is_finite:
            raise InputError("value of %r is %s; the tables need finite real numbers" % (name, num))
        point[by_name[name]] = num if exact else sp.N(num, digits)
    missing = [s.name for s in graph.leaves if s not in point]
    if missing:
        raise InputError("no value for %s in at; add %s" % (
            ", ".join(repr(m) for m in missing), ", ".join("%s=..." % m for m in missing)))
    return point


def _num(e, exact):
    return e if exact else sp.N(e, DIGITS)


def at_point(expr, wrt, at, exact: bool = False, graph=None) -> PointGraph:
    """Evaluate the ξ graph of the scalar ``expr`` at ``at`` for the parameters ``wrt``.

    Raises InputError for a missing value or a wrt symbol that is not in the expression.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> p = at_point(sp.sin(x)**2, wrt=[x], at={x: 0}, exact=True)
    >>> [(e.label, e.partial, e.value) for e in p.edges]
    [('∂ξ1/∂x', cos(x), 1), ('∂ξ2/∂ξ1', 2*ξ1, 0)]
    """
    graph = decompose(expr) if graph is None else graph
    if graph.is_matrix:
        raise InputError("at_point evaluates scalar expressions; a network is evaluated by symgrad.table")
    wrt = tuple(as_symbols(wrt, "wrt", graph.leaves))
    missing = [w.name for w in wrt if w not in graph.leaves]
    if missing:
        raise InputError("wrt names %s, which %s not in the expression; its symbols are %s" % (
            ", ".join(map(repr, missing)), "is" if len(missing) == 1 else "are",
            ", ".join(s.name for s in graph.leaves) or "none"))
    values = dict(point_values(graph, at, exact))
    point = dict(values)
    defs = {n.symbol: n.expr for n in graph.nodes}
    edges = []
    for n in graph.nodes:
        values[n.symbol] = _num(n.expr.xreplace(values), exact)
        own = {n.symbol: values[n.symbol]}
        for a, p in local_partials(n, defs):
            over_args = p.xreplace({n.symbol: n.expr})
            edges.append(Edge(n.symbol, a, over_args, _num(p.xreplace(own).xreplace(values), exact)))
    into: dict = {}
    for e in edges:
        into.setdefault(e.node, []).append(e)
    tangents = {}
    for w in wrt:
        t = {s: sp.S.One if s == w else sp.S.Zero for s in graph.leaves}
        for n in graph.nodes:
            t[n.symbol] = _num(sp.Add(*[e.value * t[e.arg] for e in into.get(n.symbol, ())]), exact)
        tangents[w] = t
    adjoints = {s: sp.S.Zero for s in (*graph.leaves, *defs)}
    if graph.nodes:
        adjoints[graph.output] = sp.S.One
    for n in reversed(graph.nodes):
        bar = adjoints[n.symbol]
        for e in into.get(n.symbol, ()):
            adjoints[e.arg] = _num(adjoints[e.arg] + bar * e.value, exact)
    notes = {n.symbol: kink_note(n.expr) for n in graph.nodes if kink_note(n.expr)}
    return PointGraph(graph, wrt, point, values, tuple(edges), tangents, adjoints, notes)
