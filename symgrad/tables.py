"""Derivative tables like the lecture's: the value, forward and reverse programs evaluated at a point.

Rows are ξ nodes; columns are the definition (in ξ and in the inputs), the local partial
(both forms), the value, the partial's value, the forward tangent dξ/dw for each ``wrt`` and
the backward adjoint dL/dξ. One set of rows renders as text, Markdown, LaTeX, HTML and JSON.

>>> import sympy as sp
>>> x, y, w = sp.symbols("x y w")
>>> t = table(-y*sp.log(1/(1 + sp.exp(-w*x))), wrt=w, at={x: 3, y: 1, w: 3})
>>> t.gradient["w"]
-3/(1 + exp(9))
>>> round(float(t.gradient["w"]), 15)
-0.000370183727959
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import sympy as sp

from .inputs import as_symbols, check_wrt
from .checkreport import depth, expr_text
from .errors import InputError
from .atpoint import point_values
from .graph import decompose
from .printing import latex, text
from .rules import kink_note, rule_for
from .sweeps import sweeps

__all__ = ["Row", "Table", "table"]


@dataclass(frozen=True, slots=True)
class Row:
    """One node of the table, with exact (SymPy) values."""

    name: str
    op: str
    definition: sp.Expr  # in ξ
    substituted: sp.Expr  # in the inputs
    partials: tuple  # ((arg, partial in ξ, partial in inputs, value), ...)
    value: sp.Expr
    tangents: tuple  # one per wrt
    adjoint: sp.Expr


def _point(graph, at, exact):
    return point_values(graph, at, exact, digits=17)


EXACT_DEPTH = 12  # an exact value deeper than this (a chain of 100 tanh's) is kept as a 30-digit Float


def _run(program, env):
    """Each statement's value from the values before it. Statements are shallow (one node), so
    nothing recurses deeply; an exact value that would nest deeper than EXACT_DEPTH is
    replaced by its 30-digit value, so the next statement again sees a shallow expression."""
    for a in program:
        v = a.expr.xreplace(env)
        if not v.is_Atom and depth(v, EXACT_DEPTH + 1) > EXACT_DEPTH:
            v = v.evalf(30)
        env[a.target] = v
    return env


def _tidy(v):
    """A small exact value in its shortest rational form (cancel only; never on big expressions)."""
    if v.is_Atom or sp.count_ops(v) > 40:
        return v
    c = sp.cancel(v)
    return c if len(text(c)) < len(text(v)) else v


def table(expr, wrt, at, exact: bool = True, share: bool = True, direction=None) -> "Table":
    """The derivative table of ``expr`` at the point ``at`` for the parameters ``wrt``.

    ``exact=True`` evaluates with SymPy numbers (``exp(-9)``); ``exact=False`` with floats.
    Raises InputError for a missing or non-numeric value or a wrt symbol not in ``expr``.
    A network (a matrix expression) gets a matrix-level table (``symgrad.mattables``) whose
    tangent column ``dξ/dv`` follows ``direction`` ({parameter: array}; by default a seeded
    random unit direction); a scalar table has one column ``dξ/dw`` per parameter instead.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> print(table((2*(x + 1))**2, wrt=x, at={x: 2}).to_markdown())
    | ξ | definition | local partial | value | partial value | dξ/dx | dL/dξ |
    |---|---|---|---|---|---|---|
    | ξ1 | 2 + 2*x | ∂ξ1/∂x = 2 | 6 | 2 | 2 | 12 |
    | ξ2 | ξ1**2 = (2 + 2*x)**2 | ∂ξ2/∂ξ1 = 2*ξ1 = 4 + 4*x | 36 | 12 | 24 | 1 |
    <BLANKLINE>
    L = ξ2 = 36; dL/dx = 24
    """
    from .matrix import is_matrix_expr  # networks get a matrix-level table

    if is_matrix_expr(sp.sympify(expr)):
        from .mattables import matrix_table

        return matrix_table(expr, wrt, at, direction=direction)
    if direction is not None:
        raise InputError("direction is for matrix-level tables (networks); a scalar table already has a "
                         "tangent column dξ/dw for each parameter in wrt")
    graph = decompose(expr, share=share)
    wrt = as_symbols(wrt, "wrt", graph.leaves)
    check_wrt(graph.expr, wrt, [])
    if not graph.nodes:
        raise InputError("%s has no operations to tabulate" % sp.sstr(graph.expr))
    sw = sweeps(graph, wrt, all_adjoints=True, inline_tangents=False)  # a tangent for every node
    env = _run(sw.values, dict(_point(graph, at, exact)))

    tangents = []
    for w in wrt:
        tenv = dict(env)
        tenv.update({s: sp.S.One if v == w else sp.S.Zero for v, s in sw.seeds.items()})
        _run(sw.forward, tenv)
        tangents.append({n.symbol: _tidy(sp.sympify(sw.tangent.get(n.symbol, 0)).xreplace(tenv))
                         for n in graph.nodes})
    renv = _run(sw.reverse, dict(env))
    adj = {s: _tidy(sp.sympify(e).xreplace(renv)) for s, e in sw.adjoint.items()}

    rows, small = [], graph.small_sources()
    for n, parts in zip(graph.nodes, sw.partials):
        own = {n.symbol: n.expr}
        active = [(a, p) for a, p in parts if a in wrt or a in sw.tangent]
        shown = []
        for a, p in (active or parts):
            in_xi = p.xreplace(own)
            shown.append((a, in_xi, graph.substituted(in_xi, small), p.xreplace(env)))
        rows.append(Row(n.name, rule_for(n.expr).name, n.expr, graph.readable(n, small), tuple(shown), env[n.symbol],
                        tuple(t[n.symbol] for t in tangents), adj.get(n.symbol, sp.S.Zero)))
    gradient = {w.name: adj.get(w, sp.S.Zero) for w in wrt}
    for r in rows:
        for v in (r.value, r.adjoint, *r.tangents, *(p[3] for p in r.partials)):
            if not v.is_finite and v.is_finite is not None or v.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
                raise InputError("%s is %s at this point (node %s = %s); choose a point inside the expression's "
                                 "domain" % (text(v), "infinite or undefined", r.name, text(r.substituted)))
            _num(v)
    notes = tuple((n.name, kink_note(n.expr)) for n in graph.nodes if kink_note(n.expr))
    return Table(tuple(rows), tuple(w.name for w in wrt), {s.name: v for s, v in _point(graph, at, exact).items()},
                 env[graph.output], gradient, graph.nodes[-1].name, expr_text(graph.expr, limit=10 ** 6), notes)


def _num(v) -> float:
    n = sp.N(v, 17)
    if not n.is_real:
        raise InputError("%s is not a real number here (it is %s); the point lies outside the expression's "
                         "domain — choose values where every node is real and finite" % (text(v), sp.sstr(n)))
    return float(n)


def _cell(v, exact_limit=28) -> str:
    """An exact value if it is short, else its float; floats to 10 significant digits."""
    s = text(v)
    if v.is_Integer or v.is_Rational and len(s) <= 12:
        return s
    f = "%.10g" % _num(v)
    return s + " ≈ " + f if len(s) <= exact_limit and not v.is_Float else f


@dataclass(frozen=True)
class Table:
    """A derivative table; ``str()`` is aligned text, with Markdown, LaTeX, HTML and JSON renderings."""

    rows: tuple
    wrt: tuple
    at: dict
    value: sp.Expr
    gradient: dict
    output: str
    expression: str
    notes: tuple = ()  # (node name, which kink convention its derivative follows)

    def _header(self):
        return ["ξ", "definition", "local partial", "value", "partial value"] + \
            ["dξ/d%s" % w for w in self.wrt] + ["dL/dξ"]

    def _cells(self, fmt, value):
        out = []
        for r in self.rows:
            definition = fmt(r.definition)
            if r.substituted != r.definition:
                definition += " = " + fmt(r.substituted)
            partials = "; ".join(
                "∂%s/∂%s = %s" % (r.name, text(a), fmt(p) + ("" if q == p else " = " + fmt(q)))
                for a, p, q, _ in r.partials)
            pvals = "; ".join(value(v) for *_, v in r.partials)
            out.append([r.name, definition, partials, value(r.value), pvals] +
                       [value(t) for t in r.tangents] + [value(r.adjoint)])
        return out

    def _footer(self, value):
        grads = "; ".join("dL/d%s = %s" % (w, value(g)) for w, g in self.gradient.items())
        lines = ["L = %s = %s; %s" % (self.output, value(self.value), grads)]
        return "\n".join(lines + ["%s: %s" % note for note in self.notes])

    def __str__(self) -> str:
        rows = [self._header()] + self._cells(text, _cell)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(wd) for c, wd in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("─" * wd for wd in widths))
        return "\n".join(lines + ["", self._footer(_cell)])

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table plus a line with the value and gradient."""
        esc = lambda s: s.replace("|", r"\|")  # noqa: E731
        head = self._header()
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in self._cells(text, _cell)]
        return "\n".join(lines + ["", self._footer(_cell)])

    def to_latex(self) -> str:
        """A LaTeX ``tabular`` with math-mode cells (exact values as SymPy prints them)."""
        head = [r"$\xi$", "definition", "local partial", "value", "partial value"] + \
            [r"$\frac{d\xi}{d%s}$" % latex(sp.Symbol(w)) for w in self.wrt] + [r"$\frac{dL}{d\xi}$"]
        body = []
        for r in self.rows:
            k = r.name[1:]
            definition = "$%s = %s$" % (r"\xi_{%s}" % k, latex(r.definition))
            if r.substituted != r.definition:
                definition = definition[:-1] + " = %s$" % latex(r.substituted)
            partials = "; ".join(r"$\frac{\partial \xi_{%s}}{\partial %s} = %s$" % (k, latex(a), latex(p))
                                 for a, p, _, _ in r.partials)
            pvals = "; ".join("$%s$" % latex(v) for *_, v in r.partials)
            cells = [r"$\xi_{%s}$" % k, definition, partials, "$%s$" % latex(r.value), pvals] + \
                ["$%s$" % latex(t) for t in r.tangents] + ["$%s$" % latex(r.adjoint)]
            body.append(" & ".join(cells) + r" \\")
        spec = "l" * len(head)
        return "\n".join([r"\begin{tabular}{%s}" % spec, r"\hline", " & ".join(head) + r" \\", r"\hline"]
                         + body + [r"\hline", r"\end{tabular}"])

    def to_html(self) -> str:
        """An HTML table (what Jupyter shows)."""
        e = html.escape
        head = "".join("<th>%s</th>" % e(h) for h in self._header())
        body = "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % e(c) for c in r) for r in self._cells(text, _cell))
        return "<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table><p>%s</p>" % (
            head, body, e(self._footer(_cell)))

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_latex_(self) -> str:
        return self.to_latex()

    def to_dict(self) -> dict:
        """Plain data: floats for numbers, strings for expressions (exact values as ``exact_*``)."""
        nodes = []
        for r in self.rows:
            nodes.append({
                "name": r.name, "op": r.op, "expr": text(r.definition), "substituted": text(r.substituted),
                "value": _num(r.value), "exact_value": text(r.value),
                "partials": [{"wrt": text(a), "expr": text(p), "substituted": text(q), "value": _num(v)}
                             for a, p, q, v in r.partials],
                "tangents": {w: _num(t) for w, t in zip(self.wrt, r.tangents)},
                "adjoint": _num(r.adjoint), "exact_adjoint": text(r.adjoint),
            })
            if len(self.wrt) == 1:  # "tangent" only where it is unambiguous; "tangents" always
                nodes[-1]["tangent"] = _num(r.tangents[0])
        return {"expression": self.expression, "wrt": list(self.wrt),
                "at": {k: _num(v) for k, v in self.at.items()},
                "value": _num(self.value), "exact_value": text(self.value),
                "gradient": {w: _num(g) for w, g in self.gradient.items()},
                "exact_gradient": {w: text(g) for w, g in self.gradient.items()},
                "nodes": nodes, "notes": {name: note for name, note in self.notes}}

    def to_json(self, indent: int | None = 2) -> str:
        """JSON with top-level ``value``, ``gradient`` and ``nodes`` (name, expr, value, tangent, adjoint)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)
