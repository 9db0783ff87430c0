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

import json
from dataclasses import dataclass, field

import sympy as sp

from .inputs import as_symbols, check_wrt
from .checkreport import depth, expr_text
from .exact import Shared, definitions, exact_text, has_shared, share as by_name
from .errors import InputError
from .atpoint import point_values
from .graph import decompose
from .printing import text
from .publish import Cell, Line, Sheet, render_html, render_markdown, render_text
from .publish_latex import latex_math, latex_number, latex_text, render_latex, tex_width
from .ir import XiDot
from .rewrite import stabilize
from .rules import kink_note, rule_for
from .second import tangent_of
from .sweeps import Assign, sweeps

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
    adjoint_tangents: tuple = ()  # order=2: d(dL/dξ)/dw, one per Table.second direction


REWRITTEN = "rewritten for stability as symgrad.compile does (its code comments use these ξ numbers): "


def _point(graph, at, exact):
    return point_values(graph, at, exact, digits=17)


EXACT_DEPTH = 12  # a float-mode value deeper than this (a chain of 100 tanh's) is kept as a 30-digit Float


def _run(program, env, label=None, trace=None):
    """Each statement's value from the values before it. Statements are shallow (one node), so
    nothing recurses deeply. Exact mode (``label`` given: the name of a statement's value):
    a value that would grow large, or that refers to a shared one, is shared by name
    (``exact.share``), so the next statement again sees a shallow expression and no exact value
    is ever expanded as a tree: the work is linear in the number of statements. Float mode: a
    value nested deeper than EXACT_DEPTH is replaced by its 30-digit value."""
    for a in program:
        v = a.expr.xreplace(env)
        if label is not None:
            v = by_name(v, label(a))
        elif not v.is_Atom and depth(v, EXACT_DEPTH + 1) > EXACT_DEPTH:
            v = v.evalf(30)
        env[a.target] = v
        if trace is not None:
            trace.append(v)
    return env


def _labels(program, kind, w=None):
    """Names of the shared exact values ``program`` assigns, as the table's columns name them:
    ``ξ3``, ``dξ3/dw``, ``dL/dξ3``; an adjoint still being summed is ``dL/dx (from ξ5 on)``."""
    last = {a.target: i for i, a in enumerate(program)}
    where = {id(a): i for i, a in enumerate(program)}

    def label(a):
        if kind == "value":
            return text(a.target)
        base = a.target.name.rsplit("_", 1)[0]
        if kind == "tangent":
            return "d%s/d%s" % (base, w)
        name = "dL/d%s" % base if kind == "adjoint" else "d(dL/d%s)/d%s" % (base, w)
        if last[a.target] != where[id(a)]:  # more contributions follow
            return "%s (from %s on)" % (name, a.note.split("/")[0].lstrip("∂"))
        return name
    return label


def _bardots(sw):
    """For each reverse statement, its tangent statement (``second.tangent_of``) or None: run
    after the forward program, they give the tangent of every adjoint along the seeds, i.e.
    forward-over-reverse as in ``symgrad.second``. Also {symbol: its tangent's variable} at the end."""
    dots = dict(sw.seeds)
    dots.update({s: t for s, t in sw.tangent.items() if t is not None})
    out = []
    for a in sw.reverse:
        d = tangent_of(a.expr, dots)
        if d is None:
            dots.pop(a.target, None)
            out.append(None)
            continue
        target = XiDot(a.target.name[:-len("_bar")] + "_bardot")
        out.append(Assign(target, d, a.note))
        dots[a.target] = target
    return out, dots


def _directions(wrt, direction, seeds):
    """[(column name, {seed: value})]: one unit direction per parameter, or ``direction`` as "v"."""
    if direction is None:
        return [(w.name, {s: sp.S.One if v == w else sp.S.Zero for v, s in seeds.items()}) for w in wrt]
    if not isinstance(direction, dict):
        raise InputError("direction must be a dict {parameter: number}, got %s" % type(direction).__name__)
    by_name = {w.name: w for w in wrt}
    given = {}
    for k, v in direction.items():
        name = k.name if isinstance(k, sp.Symbol) else str(k)
        if name not in by_name:
            raise InputError("direction names %r, which is not in wrt (%s)" % (name, ", ".join(by_name)))
        try:
            num = sp.sympify(v, strict=True)
        except (sp.SympifyError, TypeError):
            num = None
        if num is None or not num.is_number or not num.is_real:
            raise InputError("direction for %r is %r, which is not a real number" % (name, v))
        given[by_name[name]] = num
    return [("v", {s: given.get(v, sp.S.Zero) for v, s in seeds.items()})]


def _second_columns(sw, forward, trace, label):
    """Per direction: {node or leaf: the tangent of its adjoint along it}, from the reverse program
    interleaved with its tangent statements, after ``forward`` [(direction name, the values and
    tangents along it)]; each reverse statement's value is replayed from ``trace``."""
    program, dots = _bardots(sw)
    second = [d for d in program if d is not None]
    columns = []
    for name, env in forward:
        e = dict(env)
        named = label(second, "second", name)
        for a, v, d in zip(sw.reverse, trace, program):
            e[a.target] = v
            if d is not None:
                _run([d], e, named)
        col = {}
        for s, adj in sw.adjoint.items():
            t = tangent_of(sp.sympify(adj), dots)
            col[s] = sp.S.Zero if t is None else _tidy(t.xreplace(e), together=True)
        columns.append(col)
    return columns


def _tidy(v, together: bool = False):
    """A small exact value in its shortest rational form (cancel, and with ``together`` also
    sp.together, which keeps 3*exp(9)/(1 + exp(9))**2 unexpanded; never on big expressions)."""
    if v.is_Atom or sp.count_ops(v) > 40:
        return v
    c = sp.cancel(v)
    if together:
        t = sp.together(v)
        c = t if len(text(t)) < len(text(c)) else c
    return c if len(text(c)) < len(text(v)) else v


def table(expr, wrt, at, exact: bool = True, share: bool = True, direction=None, order: int = 1,
          rewrite: bool = False) -> "Table":
    r"""The derivative table of ``expr`` at the point ``at`` for the parameters ``wrt``.

    ``exact=True`` evaluates with SymPy numbers (``exp(-9)``); ``exact=False`` with floats.
    Raises InputError for a missing or non-numeric value or a wrt symbol not in ``expr``.
    A network (a matrix expression) gets a matrix-level table (``symgrad.mattables``) whose
    tangent column ``dξ/dv`` follows ``direction`` ({parameter: array}; by default a seeded
    random unit direction); a scalar table has one column ``dξ/dw`` per parameter instead.

    ``order=2`` (scalar expressions) adds forward-over-reverse columns ``d(dL/dξ)/dw``: the
    tangent of each node's adjoint along each parameter (``symgrad.second``), and the Hessian
    of L in the footer and in JSON (``"hessian"``); with ``direction`` ({parameter: number})
    one column ``d(dL/dξ)/dv`` along it instead, and H·v.

    A scalar table is the literal chain of ``expr``, node for node the graph that
    ``compile(expr, rewrite=False)`` generates code for; ``rewrite=True`` tabulates the graph
    after the stability rewrites (``symgrad.rewrite``), the one ``compile(expr)`` numbers its
    code comments by, and names the rewrites in the footer. (A network's table always shows
    compile's graph.)

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> print(table((2*(x + 1))**2, wrt=x, at={x: 2}).to_markdown())
    | ξ | definition | local partial | value | partial value | dξ/dx | dL/dξ |
    |---|---|---|---|---|---|---|
    | ξ1 | 2 + 2\*x | ∂ξ1/∂x = 2 | 6 | 2 | 2 | 12 |
    | ξ2 | ξ1\*\*2 = (2 + 2\*x)\*\*2 | ∂ξ2/∂ξ1 = 2\*ξ1 = 4 + 4\*x | 36 | 12 | 24 | 1 |
    <BLANKLINE>
    L = ξ2 = 36; dL/dx = 24
    """
    from .matrix import is_matrix_expr  # networks get a matrix-level table

    if order not in (1, 2):
        raise InputError("order is 1 (values, tangents, adjoints) or 2 (also the tangents of the adjoints "
                         "and the Hessian), got %r" % (order,))
    if is_matrix_expr(sp.sympify(expr)):
        if order == 2:
            raise InputError("order=2 tables are for scalar expressions; for a network use "
                             "symgrad.compile(...).hvp or .hessian")
        from .mattables import matrix_table

        return matrix_table(expr, wrt, at, direction=direction)
    if direction is not None and order == 1:
        raise InputError("direction is for matrix-level tables (networks) and for order=2 tables; a scalar "
                         "table already has a tangent column dξ/dw for each parameter in wrt")
    rewrites = ()
    if rewrite:  # the graph compile(expr) generates code for, so that its ξ numbers are the code's
        expr, fired = stabilize(sp.sympify(expr))
        rewrites = tuple(str(r) for r in fired)
    graph = decompose(expr, share=share)
    wrt = as_symbols(wrt, "wrt", graph.leaves)
    check_wrt(graph.expr, wrt, [])
    if not graph.nodes:
        raise InputError("%s has no operations to tabulate" % sp.sstr(graph.expr))
    sw = sweeps(graph, wrt, all_adjoints=True, inline_tangents=False)  # a tangent for every node
    label = _labels if exact else (lambda *a: None)
    env = _run(sw.values, dict(_point(graph, at, exact)), label(sw.values, "value"))

    tangents, forward = [], []
    for w in wrt:
        tenv = dict(env)
        tenv.update({s: sp.S.One if v == w else sp.S.Zero for v, s in sw.seeds.items()})
        _run(sw.forward, tenv, label(sw.forward, "tangent", w))
        tangents.append({n.symbol: _tidy(sp.sympify(sw.tangent.get(n.symbol, 0)).xreplace(tenv))
                         for n in graph.nodes})
        forward.append((w.name, tenv))
    trace = []
    renv = _run(sw.reverse, dict(env), label(sw.reverse, "adjoint"), trace)
    adj = {s: _tidy(sp.sympify(e).xreplace(renv)) for s, e in sw.adjoint.items()}
    second, columns = (), []
    if order == 2:
        directions = _directions(wrt, direction, sw.seeds)
        if direction is not None:  # one more forward run, along v
            forward = [("v", _run(sw.forward, {**env, **directions[0][1]}, label(sw.forward, "tangent", "v")))]
        second = tuple(name for name, _ in forward)
        columns = _second_columns(sw, forward, trace, label)

    rows, small = [], graph.small_sources()
    for n, parts in zip(graph.nodes, sw.partials):
        own = {n.symbol: n.expr}
        active = [(a, p) for a, p in parts if a in wrt or a in sw.tangent]
        shown = []
        for a, p in (active or parts):
            in_xi = p.xreplace(own)
            pv = p.xreplace(env)
            if exact and has_shared(pv):  # a partial over shared values is one number by name too
                pv = by_name(pv, "∂%s/∂%s" % (n.name, text(a)), always=True)
            shown.append((a, in_xi, graph.substituted(in_xi, small), pv))
        rows.append(Row(n.name, rule_for(n.expr).name, n.expr, graph.readable(n, small), tuple(shown), env[n.symbol],
                        tuple(t[n.symbol] for t in tangents), adj.get(n.symbol, sp.S.Zero),
                        tuple(c.get(n.symbol, sp.S.Zero) for c in columns)))
    gradient = {w.name: adj.get(w, sp.S.Zero) for w in wrt}
    hessian = {w.name: {d: c.get(w, sp.S.Zero) for d, c in zip(second, columns)} for w in wrt} if order == 2 else {}
    for r in rows:
        for v in (r.value, r.adjoint, *r.tangents, *r.adjoint_tangents, *(p[3] for p in r.partials)):
            if not v.is_finite and v.is_finite is not None or v.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
                raise InputError("%s is %s at this point (node %s = %s); choose a point inside the expression's "
                                 "domain" % (text(v), "infinite or undefined", r.name, text(r.substituted)))
            _num(v)
    notes = tuple((n.name, kink_note(n.expr)) for n in graph.nodes if kink_note(n.expr))
    for row in hessian.values():
        for v in row.values():
            _num(v)
    return Table(tuple(rows), tuple(w.name for w in wrt), {s.name: v for s, v in _point(graph, at, exact).items()},
                 env[graph.output], gradient, graph.nodes[-1].name, expr_text(graph.expr, limit=10 ** 6), notes,
                 second, hessian, {w.name: directions[0][1][sw.seeds[w]] for w in wrt} if second == ("v",) else {},
                 rewrites)


def _num(v) -> float:
    if isinstance(v, Shared) and v.is_extended_real:  # straight from its mpmath value
        return float(v)
    n = sp.N(v, 17)
    if not n.is_real:
        raise InputError("%s is not a real number here (it is %s); the point lies outside the expression's "
                         "domain — choose values where every node is real and finite" % (text(v), sp.sstr(n)))
    return float(n)


def _cell(v, exact_limit=28) -> str:
    """An exact value if it is short, else its float; floats to 10 significant digits."""
    if has_shared(v):  # a large exact value, kept by name: shown by its decimal
        return "%.10g" % _num(v)
    s = text(v)
    if v.is_Integer or v.is_Rational and len(s) <= 12:
        return s
    f = "%.10g" % _num(v)
    return s + " ≈ " + f if len(s) <= exact_limit and not v.is_Float else f

SUBSTITUTED_EM = 20  # LaTeX shows a substituted form (in the inputs) up to this width; the ξ form always


def _shown(v, tex: bool = True) -> Cell:
    """A value cell: ``_cell``'s text; lines: the exact value, then ``≈`` its decimals."""
    s = _cell(v)
    exact, sep, approx = s.partition(" ≈ ")
    if sep:
        return Cell(s, (exact, "≈ " + approx),
                    ("$%s$" % latex_math(v), r"$\approx %s$" % latex_number(approx)) if tex else ())
    if not tex:
        return Cell(s)
    return Cell(s, (), ("$%s$" % (latex_math(v) if s == text(v) else latex_number(s)),))


def _inline(c: Cell) -> str:
    """A value cell's LaTeX on one line, without the dollars."""
    return " ".join(t.strip("$") for t in c.tex)


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
    second: tuple = ()  # order=2: the directions of the d(dL/dξ)/d… columns (wrt names, or "v")
    hessian: dict = field(default_factory=dict)  # order=2: {a: {direction: d(dL/da)/d(direction)}}
    direction: dict = field(default_factory=dict)  # order=2 along a direction: {parameter: its component}
    rewrites: tuple = ()  # rewrite=True: the stability rewrites that fired ("sigmoid: 1/(1 + exp(-u)) → sigmoid(u)")

    def _header(self):
        return ["ξ", "definition", "local partial", "value", "partial value"] + \
            ["dξ/d%s" % w for w in self.wrt] + ["dL/dξ"] + ["d(dL/dξ)/d%s" % d for d in self.second]

    def _second_items(self):
        """(text label, LaTeX label, value) of the order-2 footer: d²L/da db, or (H·v)_a along a direction."""
        out = []
        for a, row in self.hessian.items():
            for d, v in row.items():
                if d == "v" and self.direction:
                    out.append(("(H·v)_%s" % a, r"(H v)_{%s}" % latex_math(sp.Symbol(a)), v))
                elif d == a:
                    out.append(("d²L/d%s²" % a, r"\frac{\partial^2 L}{\partial %s^2}" % latex_math(sp.Symbol(a)), v))
                else:
                    out.append(("d²L/d%s d%s" % (a, d), r"\frac{\partial^2 L}{\partial %s\,\partial %s}" % (
                        latex_math(sp.Symbol(a)), latex_math(sp.Symbol(d))), v))
        return out

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
                       [value(t) for t in r.tangents] + [value(r.adjoint)] + [value(t) for t in r.adjoint_tangents])
        return out

    def _sheet(self, tex: bool = True) -> Sheet:
        """The rows for symgrad.publish: one-line text as ``_cells``, natural line breaks and
        (``tex``) LaTeX lines; the footer: L and the gradient, then one line per note."""
        def sub(e):  # the substituted form, in LaTeX only while it stays short
            if not tex:
                return ()
            s = "$= %s$" % latex_math(e)
            return (s,) if tex_width(s) <= SUBSTITUTED_EM else ()
        head = [Cell(h) for h in self._header()]
        if tex:
            marks = [r"$\xi$", "definition", "local partial", "value", "partial value"] + \
                [r"$d\xi/d%s$" % latex_math(sp.Symbol(w)) for w in self.wrt] + [r"$dL/d\xi$"] + \
                [r"$d(dL/d\xi)/d%s$" % latex_math(sp.Symbol(d)) for d in self.second]
            head = [Cell(h.text, (), (m,)) for h, m in zip(head, marks)]
        rows = []
        for r, cells in zip(self.rows, self._cells(text, _cell)):
            xi = r"\xi_{%s}" % r.name[1:]
            same = r.substituted == r.definition
            definition = Cell(cells[1], () if same else (text(r.definition), "= " + text(r.substituted)),
                              (("$%s = %s$" % (xi, latex_math(r.definition)),) + (() if same else sub(r.substituted)))
                              if tex else ())
            pbreaks, ptex, vbreaks, vtex = [], [], [], []
            for a, p, q, v in r.partials:
                label = "∂%s/∂%s = %s" % (r.name, text(a), text(p))
                pbreaks += [label] + ([] if q == p else ["= " + text(q)])
                if tex:
                    ptex += [r"$\frac{\partial %s}{\partial %s} = %s$" % (xi, latex_math(a), latex_math(p))]
                    ptex += [] if q == p else list(sub(q))
                shown = _shown(v, tex)  # one line per partial where there are several
                vbreaks += list(shown.lines) if len(r.partials) == 1 else [shown.text]
                vtex += list(shown.tex) if len(r.partials) == 1 else ["$%s$" % _inline(shown)] if tex else []
            rows.append([Cell(r.name, (), (r"$%s$" % xi,)), definition, Cell(cells[2], tuple(pbreaks), tuple(ptex)),
                         _shown(r.value, tex), Cell(cells[4], tuple(vbreaks), tuple(vtex))] +
                        [_shown(t, tex) for t in r.tangents] + [_shown(r.adjoint, tex)] +
                        [_shown(t, tex) for t in r.adjoint_tangents])
        value = _shown(self.value, tex)
        items = [Cell("L = %s = %s" % (self.output, value.text), (),
                      ("$L = %s = %s$" % (r"\xi_{%s}" % self.output[1:], _inline(value)),) if tex else ())]
        for w, g in self.gradient.items():
            shown = _shown(g, tex)
            items.append(Cell("dL/d%s = %s" % (w, shown.text), (),
                              (r"$dL/d%s = %s$" % (latex_math(sp.Symbol(w)), _inline(shown)),) if tex else ()))
        footer = [Line(tuple(items))]
        if self.hessian:  # order=2: the Hessian (or H·v) of L, one item per entry
            footer.append(Line(tuple(Cell("%s = %s" % (label, shown.text), (), (r"$%s = %s$" % (tl, _inline(shown)),)
                                          if tex else ()) for label, tl, shown in
                                     ((lb, tl, _shown(v, tex)) for lb, tl, v in self._second_items()))))
        if self.rewrites:  # rewrite=True: say whose numbering this is
            note = REWRITTEN + "; ".join(self.rewrites)
            footer.append(Line((Cell(note, (), (latex_text(note),) if tex else ()),), True))
        for name, note in self.notes:
            footer.append(Line((Cell("%s: %s" % (name, note), (),
                                     (r"$\xi_{%s}$: %s" % (name[1:], latex_text(note)),) if tex else ()),), True))
        return Sheet(tuple(head), tuple(tuple(r) for r in rows), tuple(footer))

    def to_text(self, width: int | None = None, layout: str = "auto", translate=None) -> str:
        """Aligned text no wider than ``width`` characters (None: the terminal's width, or 100
        when standard output is not a terminal; 0: no limit, one line per node).

        One line per node when it fits; else the cells wrap in narrower columns; where a column
        would get fewer than 16 characters, one block per node, a labelled line per column
        (``layout="grid"`` or ``"vertical"`` chooses). ``translate`` rewrites every piece of text
        first (the command line's ASCII spelling).
        """
        return render_text(self._sheet(tex=False), width, layout, translate)

    def __str__(self) -> str:
        return self.to_text()

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table plus a line with the value and gradient (and one per
        note); ``*``, ``_``, ``|`` and the like are escaped, so renderers show them as written."""
        return render_markdown(self._sheet(tex=False))

    def to_latex(self, layout: str = "auto", standalone: bool = False) -> str:
        """LaTeX for pdflatex: booktabs rules, math-mode cells (exact values with their ≈ decimals),
        the footer and notes; ``longtable`` when long, landscape pages or columns split in parts
        when wide (``layout`` "portrait", "landscape" or "split" chooses). The fragment needs
        ``\\usepackage{amsmath,booktabs,longtable,array,pdflscape}``; ``standalone=True`` gives a
        whole document (``symgrad.publish_latex``)."""
        return render_latex(self._sheet(), layout, standalone)

    def to_html(self) -> str:
        """An HTML table with a few lines of scoped CSS (what Jupyter shows); all text escaped."""
        return render_html(self._sheet(tex=False))

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_latex_(self) -> str:
        return self.to_latex()

    def to_dict(self) -> dict:
        """Plain data: floats for numbers, strings for expressions (exact values as ``exact_*``)."""
        nodes = []
        for r in self.rows:
            nodes.append({
                "name": r.name, "op": r.op, "expr": text(r.definition), "substituted": text(r.substituted),
                "value": _num(r.value), "exact_value": exact_text(r.value),
                "partials": [{"wrt": text(a), "expr": text(p), "substituted": text(q), "value": _num(v)}
                             for a, p, q, v in r.partials],
                "tangents": {w: _num(t) for w, t in zip(self.wrt, r.tangents)},
                "adjoint": _num(r.adjoint), "exact_adjoint": exact_text(r.adjoint),
            })
            if len(self.wrt) == 1:  # "tangent" only where it is unambiguous; "tangents" always
                nodes[-1]["tangent"] = _num(r.tangents[0])
            if self.second:  # order=2: d(dL/dξ)/d… per direction
                nodes[-1]["adjoint_tangents"] = {d: _num(t) for d, t in zip(self.second, r.adjoint_tangents)}
        out = {"expression": self.expression, "wrt": list(self.wrt),
               "at": {k: _num(v) for k, v in self.at.items()},
               "value": _num(self.value), "exact_value": exact_text(self.value),
               "gradient": {w: _num(g) for w, g in self.gradient.items()},
               "exact_gradient": {w: exact_text(g) for w, g in self.gradient.items()},
               "nodes": nodes, "notes": {name: note for name, note in self.notes}}
        if self.rewrites:
            out["rewrites"] = list(self.rewrites)
        if self.direction:  # order=2 along a direction: H·v
            out["direction"] = {a: _num(v) for a, v in self.direction.items()}
            out["hvp"] = {a: _num(row["v"]) for a, row in self.hessian.items()}
        elif self.hessian:
            out["hessian"] = {a: {b: _num(v) for b, v in row.items()} for a, row in self.hessian.items()}
            out["exact_hessian"] = {a: {b: exact_text(v) for b, v in row.items()} for a, row in self.hessian.items()}
        shared = definitions([self.value, *self.gradient.values(), *(v for row in self.hessian.values()
                                                                      for v in row.values()),
                              *(v for r in self.rows for v in (r.value, *r.tangents, r.adjoint, *r.adjoint_tangents))])
        if shared:  # large exact values are written by the names they refer to; here is each name
            out["exact_shared"] = shared
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """JSON with top-level ``value``, ``gradient`` and ``nodes`` (name, expr, value, tangent, adjoint)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)
