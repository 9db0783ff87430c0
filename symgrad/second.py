"""Second order on the one IR: Hessian-vector products by forward-over-reverse.

The reverse program is a list of statements ``target = expr`` over registered operations, so
forward mode applies to it as to any program: each statement gets a tangent statement
``target_bardot = Σ ∂expr/∂s · s_dot`` (a matrix operation by its tangent rule, an elementwise
function by its derivative), after the first-order tangents of the values. The tangents of
the gradients along ``v`` are H·v, from one extra sweep — no Hessian is built. Kinks, steps
and branches have derivative 0 almost everywhere, and so do their partials' conditions.

>>> import sympy as sp
>>> from symgrad.graph import decompose
>>> x, w = sp.symbols("x w")
>>> m = generate_hvp(decompose(sp.exp(w*x)), [w], [x])
>>> print(m.sources["hvp"], end="")
def hvp(x, w, w_dot):
    _batch = np.broadcast_shapes(np.shape(x), np.shape(w))
    xi1 = w*x  # w*x
    xi1_dot = x*w_dot  # w*x
    xi2 = np.exp(xi1)  # exp(w*x)
    xi2_dot = xi2*xi1_dot  # exp(w*x)
    w_bardot = x*xi2_dot  # ∂ξ1/∂w
    return (_sum_to(w_bardot, w, _batch),)
"""

from __future__ import annotations

import sympy as sp

from . import functions as F
from . import ops_matrix as O
from .emit import HEADER, HELPERS, SUM_TO, Names, assemble, dimension_lines, short_text, statement_lines
from .errors import UnsupportedError
from .ir import XiBar, XiDot
from .naming import docstring, identifier_names
from .printing import CodePrinter
from .sweeps import Assign, sweeps

__all__ = ["tangent_of", "generate_hvp"]

_FLAT = (sp.sign, sp.Heaviside, sp.floor, sp.ceiling)  # derivative 0 wherever it exists


def tangent_of(e, dots: dict, memo: dict | None = None):
    """The tangent of expression ``e`` given the tangents ``dots`` of its symbols; None if zero.

    >>> import sympy as sp
    >>> a, b, a_dot = sp.symbols("a b a_dot")
    >>> tangent_of(sp.tanh(a) * b, {a: a_dot})
    a_dot*b*(1 - tanh(a)**2)
    """
    memo = {} if memo is None else memo
    if e in memo:
        return memo[e]
    if e.is_Symbol:
        out = dots.get(e)
    elif e.is_Atom or not e.args or isinstance(e, _FLAT) or isinstance(e, sp.logic.boolalg.Boolean):
        out = None
    else:
        out = _tangent(e, dots, memo)
    memo[e] = out
    return out


def _tangent(e, dots, memo):
    def t(a):
        return tangent_of(a, dots, memo)

    if isinstance(e, O.MatOp):
        ds = {a: d for a in e.args if (d := t(a)) is not None}
        return O.jvp(e, ds, e) if ds else None
    if isinstance(e, F.where):
        cond, a, b = e.args
        ta, tb = t(a), t(b)
        return None if ta is None and tb is None else F.where(cond, ta if ta is not None else 0,
                                                               tb if tb is not None else 0)
    if isinstance(e, sp.Piecewise):
        ts = [t(p.expr) for p in e.args]
        if all(x is None for x in ts):
            return None
        return sp.Piecewise(*[(x if x is not None else 0, p.cond) for x, p in zip(ts, e.args)])
    terms = []
    if e.is_Add:
        terms = [x for a in e.args if (x := t(a)) is not None]
    elif e.is_Mul:
        for i, a in enumerate(e.args):
            x = t(a)
            if x is not None:
                terms.append(sp.Mul(*e.args[:i], x, *e.args[i + 1:]))
    elif e.is_Pow and e.exp.is_Number:
        x = t(e.base)
        if x is not None:
            terms.append(e.exp * e.base ** (e.exp - 1) * x)
    else:
        for i, a in enumerate(e.args):
            x = t(a)
            if x is not None:
                terms.append(_partial(e, i) * x)
    return sp.Add(*terms) if terms else None


def _partial(e, i):
    """∂e/∂(its i-th argument), by SymPy on placeholders (a user function's fdiff, twice)."""
    dummies = [sp.Dummy("a%d" % k) for k in range(len(e.args))]
    d = sp.diff(e.func(*dummies), dummies[i])
    d = d.replace(sp.DiracDelta, lambda *a: sp.S.Zero)
    if d.has(sp.Derivative, sp.Subs):
        name = getattr(e.func, "__name__", str(e.func))
        raise UnsupportedError("no second derivative known for %s: its fdiff gives an expression SymPy cannot "
                               "differentiate again; give the derivative's function an fdiff too" % name)
    return d.xreplace(dict(zip(dummies, e.args)))


class StackedPrinter(CodePrinter):
    """Matrix operations over the last two axes, so tangents may carry a leading axis of
    directions (k, rows, cols): one call of the HVP program multiplies H by k vectors."""

    def _print_T(self, e):
        return "np.swapaxes(%s, -1, -2)" % self._print(e.args[0])

    def _print_bcast_rows(self, e):
        b = self._print(e.args[0])
        return "np.broadcast_to(%s, np.shape(%s)[:-2] + (%s, np.shape(%s)[-1]))" % (b, b, self._print(e.args[1]), b)

    def _print_bcast_cols(self, e):
        a = self._print(e.args[0])
        return "np.broadcast_to(%s, np.shape(%s)[:-1] + (%s,))" % (a, a, self._print(e.args[1]))

    def _print_colsum(self, e):
        return "np.sum(%s, axis=-2, keepdims=True)" % self._print(e.args[0])

    def _print_rowsum(self, e):
        return "np.sum(%s, axis=-1, keepdims=True)" % self._print(e.args[0])

    def _print_sumall(self, e):
        return "np.sum(%s, axis=(-2, -1), keepdims=True)" % self._print(e.args[0])

    def _print_fill(self, e):
        g, r, c = (self._print(a) for a in e.args)
        return "np.broadcast_to(%s, np.shape(%s)[:-2] + (%s, %s))" % (g, g, r, c)

    def _print_trace(self, e):
        return "np.trace(%s, axis1=-2, axis2=-1)[..., None, None]" % self._print(e.args[0])

    def _print_frob(self, e):
        return "np.sum(%s * %s, axis=(-2, -1), keepdims=True)" % tuple(self._operand(a) for a in e.args)


def _dot_name(target):
    """x_bar → x_bardot, ξ3_bar → ξ3_bardot (named by ``emit.Names`` like every derivative variable)."""
    return XiDot(target.name[:-len("_bar")] + "_bardot")


def _live(program, results) -> list:
    """The statements the results read (a target assigned twice is live between its uses)."""
    live = set().union(*(r.free_symbols for r in results)) if results else set()
    kept = []
    for a in reversed(program):
        if a.target in live:
            kept.append(a)
            live.discard(a.target)
            live |= a.expr.free_symbols
    return kept[::-1]


def generate_hvp(graph, wrt, args, stacked: bool = False):
    """A module with ``hvp(args..., wrt..., v...)`` returning the tangents of the gradients along
    v: H·v for each parameter (summed over a batch like the gradients). ``stacked`` (matrix
    expressions): every v has a leading axis of k directions, (k, rows, cols), or (k, 1, 1) for
    a scalar parameter, and so does each result."""
    sw = sweeps(graph, wrt)
    params = list(args) + list(sw.wrt)
    names = Names(identifier_names(params + list(graph.dims)))
    printer = StackedPrinter(names) if stacked else CodePrinter(names)
    head = dimension_lines(graph, params, names)
    program = []
    by_target = {a.target: a for a in sw.forward}
    known = {}
    for n, a in zip(graph.nodes, sw.values):
        program.append(a)
        known[a.expr] = a.target
        d = by_target.pop(sw.tangent.get(n.symbol), None)
        if d is not None:
            program.append(Assign(d.target, d.expr.xreplace(known), d.note))
    dots = {w: sw.seeds[w] for w in sw.wrt}
    dots.update({n.symbol: sw.tangent[n.symbol] for n in graph.nodes if sw.tangent.get(n.symbol) is not None})
    for a in sw.reverse:
        expr = a.expr.xreplace(known)
        program.append(Assign(a.target, expr, a.note))
        d = tangent_of(expr, dots)
        if d is None:
            dots.pop(a.target, None)
            continue
        target = _dot_name(a.target)
        if d != target:
            program.append(Assign(target, d, a.note))
        dots[a.target] = target
    results, returned = [], []
    for w in sw.wrt:
        adj = sw.adjoint.get(w)
        hv = tangent_of(adj.xreplace(known), dots) if adj is not None else None
        hv = sp.S.Zero if hv is None else hv
        returned.append(hv)
        if stacked:
            shape = "(_k,) + np.shape(%s)" % names[w] if graph.shape(w) else "(_k, 1, 1)"
            results.append("np.broadcast_to(%s, %s).astype(float)" % (printer.doprint(hv), shape))
        elif graph.is_matrix:
            shape = "np.shape(%s)" % names[w]
            results.append("np.broadcast_to(%s, %s).astype(np.result_type(%s, float))"
                           % (printer.doprint(hv), shape, names[w]) if graph.shape(w) else "float(%s)"
                           % printer.doprint(hv))
        else:
            results.append("_sum_to(%s, %s, _batch)" % (printer.doprint(hv), names[w]))
    lines = statement_lines(printer, _live(program, returned), names)
    sig = ", ".join(names[p] for p in params) + ", " + ", ".join(printer._print(sw.seeds[w]) for w in sw.wrt)
    if stacked:
        head = ["    _k = max((%s,))" % ", ".join("np.shape(%s)[0]" % printer._print(sw.seeds[w]) for w in sw.wrt)] + head
    if not graph.is_matrix:
        leaves = set(graph.leaves)
        used = [names[p] for p in params if p in leaves] or ["0.0"]
        head = ["    _batch = np.broadcast_shapes(%s)" % ", ".join("np.shape(%s)" % u for u in used)] + head
    src = "def hvp(%s):\n%s\n    return (%s,)\n" % (sig, "\n".join(head + lines), ", ".join(results))
    extra = "import scipy.special\n" if any(m.startswith("scipy") for m in printer.module_imports) else ""
    source = HEADER.format(expr=docstring(short_text(graph)), extra=extra)
    if not graph.is_matrix:
        source += SUM_TO
    for h in sorted(printer.helpers):
        source += HELPERS[h]
    source = source.rstrip("\n") + "\n\n\n" + src
    return assemble(source, {"hvp": src}, names, kinds=(("hvp", "hvp"),))
