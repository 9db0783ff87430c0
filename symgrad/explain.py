"""The chain rule as paths: dL/dw is the sum over every path from L to w of the product of its edges.

This is the derivative computation graph of the lecture: each edge carries the derivative of
its origin with respect to its destination. ``explain`` lists every path with its factors
(symbolic and numeric) and product, their sum (the gradient), and then how reverse mode
groups the same products: each edge's value once, the sums over shared prefixes first
(dL/dξ for every node, from the output down), "reusing previous computations". Where the
paths are too many to list, it says how many there are and shows the grouped form only.

>>> import sympy as sp
>>> x, y = sp.symbols("x y")
>>> e = explain(sp.sin(x*y) + x*y, wrt=x, at={x: 1, y: 2})
>>> len(e.paths), e.count, round(float(e.gradient), 12)
(2, 2, 1.167706326906)
>>> [p.nodes for p in e.paths]
[('ξ3', 'ξ1', 'x'), ('ξ3', 'ξ2', 'ξ1', 'x')]
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sympy as sp

from .atpoint import at_point
from .errors import InputError
from .printing import text

__all__ = ["Path", "Explanation", "explain", "MAX_PATHS"]

MAX_PATHS = 64  # more paths than this are counted, not listed


def _f(v) -> str:
    return "%.10g" % float(v)


@dataclass(frozen=True)
class Path:
    """One path from the output to ``wrt``: its node names, edges (``atpoint.Edge``) and product."""

    nodes: tuple
    edges: tuple
    value: sp.Expr

    def to_dict(self) -> dict:
        return {"nodes": list(self.nodes),
                "factors": [{"edge": e.label, "expr": text(e.partial), "value": float(e.value)} for e in self.edges],
                "value": float(self.value)}


@dataclass(frozen=True)
class Explanation:
    """``paths`` (empty when there are more than ``MAX_PATHS``), their ``count``, the
    ``gradient`` and ``grouped``: reverse mode's lines (name, [(consumer, edge)], value)."""

    expression: str
    wrt: str
    output: str
    paths: tuple
    count: int
    gradient: sp.Expr
    grouped: tuple

    def __str__(self) -> str:
        out = ["dL/d%s by the chain rule: the sum over every path from L = %s to %s of the product of the "
               "edge values (an edge carries the derivative of its origin w.r.t. its destination)"
               % (self.wrt, self.output, self.wrt), ""]
        if not self.paths and self.count:
            out.append("%d paths lead from %s to %s: too many to list (more than %d); reverse mode below "
                       "needs one product per edge instead" % (self.count, self.output, self.wrt, MAX_PATHS))
        for k, p in enumerate(self.paths, 1):
            out.append("path %d: %s" % (k, " → ".join(p.nodes)))
            out.append("    " + " · ".join(e.label for e in p.edges))
            out.append("    = " + " · ".join("(%s)" % text(e.partial) for e in p.edges))
            out.append("    = " + " · ".join("(%s)" % _f(e.value) for e in p.edges) + " = " + _f(p.value))
        if self.paths:
            out.append("sum of the %d path%s: %s = %s = dL/d%s" % (
                len(self.paths), "" if len(self.paths) == 1 else "s",
                " + ".join("(%s)" % _f(p.value) for p in self.paths), _f(self.gradient), self.wrt))
        if self.count == 0:
            out.append("no path leads from %s to %s: dL/d%s = 0" % (self.output, self.wrt, self.wrt))
        out += ["", "reverse mode groups the paths: dL/dξ for each node, from the output down, each edge's "
                "value computed once and multiplied once (the sums over shared prefixes first)"]
        for name, terms, value in self.grouped:
            if not terms:
                out.append("dL/d%s = 1" % name)
                continue
            symbolic = " + ".join("dL/d%s · %s" % (c, e.label) for c, e in terms)
            numeric = " + ".join("(%s)(%s)" % (_f(cv), _f(e.value)) for (c, e), cv in
                                 zip(terms, [self._adjoint(c) for c, _ in terms]))
            out.append("dL/d%s = %s = %s = %s" % (name, symbolic, numeric, _f(value)))
        return "\n".join(out)

    def _adjoint(self, name):
        return next(v for n, _, v in self.grouped if n == name)

    def to_dict(self) -> dict:
        """``{"paths": [{"nodes", "factors", "value"}], "count", "gradient", "grouped"}``."""
        return {"expression": self.expression, "wrt": self.wrt, "output": self.output,
                "paths": [p.to_dict() for p in self.paths], "count": self.count,
                "listed": bool(self.paths) or self.count == 0, "gradient": float(self.gradient),
                "grouped": [{"node": n, "terms": [{"from": c, "edge": e.label, "value": float(e.value)}
                                                  for c, e in terms], "value": float(v)}
                            for n, terms, v in self.grouped]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _name(s) -> str:
    return text(s)


def explain(expr, wrt, at, max_paths: int = MAX_PATHS) -> Explanation:
    """Every chain-rule path from the output of ``expr`` to the one symbol ``wrt`` at ``at``.

    Raises InputError when ``wrt`` names more or less than one symbol of the expression.

    >>> import sympy as sp
    >>> x, w = sp.symbols("x w")
    >>> print(explain(sp.exp(-w*x), wrt=w, at={x: 3, w: 0}))  # doctest: +ELLIPSIS
    dL/dw by the chain rule: ...
    <BLANKLINE>
    path 1: ξ2 → ξ1 → w
        ∂ξ2/∂ξ1 · ∂ξ1/∂w
        = (exp(ξ1)) · (-x)
        = (1) · (-3) = -3
    sum of the 1 path: (-3) = -3 = dL/dw
    <BLANKLINE>
    reverse mode groups the paths: ...
    dL/dξ2 = 1
    dL/dξ1 = dL/dξ2 · ∂ξ2/∂ξ1 = (1)(1) = 1
    dL/dw = dL/dξ1 · ∂ξ1/∂w = (1)(-3) = -3
    """
    wrt_list = [wrt] if isinstance(wrt, (str, sp.Basic)) else list(wrt)
    if len(wrt_list) != 1:
        raise InputError("explain follows the paths to one symbol; wrt has %d (%s): explain each in turn"
                         % (len(wrt_list), ", ".join(map(str, wrt_list))))
    p = at_point(expr, wrt_list, at)
    graph, w = p.graph, p.wrt[0]
    if not graph.nodes:
        raise InputError("%s has no operations, so no paths" % sp.sstr(graph.expr))
    into = {}
    for e in p.edges:
        into.setdefault(e.node, []).append(e)
    # number of paths from each symbol to w, counted bottom-up (never enumerated to count)
    count = {s: int(s == w) for s in graph.leaves}
    for n in graph.nodes:
        count[n.symbol] = sum(count[e.arg] for e in into.get(n.symbol, ()))
    total = count[graph.output]
    paths = []
    if 0 < total <= max_paths:
        stack = [(graph.output, (), ())]
        while stack:
            s, names, edges = stack.pop()
            names = names + (_name(s),)
            if s == w:
                value = sp.Mul(*[e.value for e in edges])
                paths.append(Path(names, edges, sp.N(value, 30)))
                continue
            for e in reversed(into.get(s, ())):
                if count.get(e.arg, 0):
                    stack.append((e.arg, names, edges + (e,)))
    reads = p.consumers()
    grouped = []
    for s in [n.symbol for n in reversed(graph.nodes)] + [w]:
        if not count.get(s) or (s != graph.output and s not in reads):
            continue
        terms = tuple((_name(e.node), e) for e in reads.get(s, ()) if count[e.arg])
        grouped.append((_name(s), terms if s != graph.output else (), p.adjoints[s]))
    return Explanation(sp.sstr(graph.expr), w.name, _name(graph.output), tuple(paths), total,
                       p.adjoints.get(w, sp.S.Zero), tuple(grouped))
