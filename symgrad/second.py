"""Second order on the one IR: Hessian-vector products by forward-over-reverse, and Hessians
and their diagonals of matrix expressions from the structure of that program.

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

The structured Hessians and their diagonals of matrix expressions, built from the structure of
this program, are ``symgrad.hessian_programs.generate_hessian`` (printed by ``symgrad.stacked``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import functions as F
from . import ops_matrix as O
from .emit import HEADER, HELPERS, SUM_TO, Names, assemble, dimension_lines, short_text, statement_lines
from .errors import UnsupportedError
from .flavours import NUMPY, XP
from .ir import MatLeaf, XiDot
from .naming import docstring, identifier_names
from .printing import CodePrinter
from .stacked import Marker
from .sweeps import Assign, sweeps

__all__ = ["tangent_of", "generate_hvp", "forward_over_reverse", "live_statements", "share", "Shared"]

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


def _dot_name(target):
    """x_bar → x_bardot, ξ3_bar → ξ3_bardot (named by ``emit.Names`` like every derivative variable)."""
    return XiDot(target.name[:-len("_bar")] + "_bardot")


def live_statements(program, results) -> list:
    """The statements the results read (a target assigned twice is live between its uses)."""
    live = set().union(*(r.free_symbols for r in results)) if results else set()
    kept = []
    for a in reversed(program):
        if a.target in live:
            kept.append(a)
            live.discard(a.target)
            live |= a.expr.free_symbols
    return kept[::-1]


@dataclass
class _Program:
    """A forward-over-reverse program: statements, and H·v of each parameter (None if zero)."""

    sw: object  # the first-order sweeps (values, reverse program, seeds)
    program: list
    hv: dict  # parameter -> expression of its H·v
    shapes: dict  # derivative variable -> its (unstacked) shape


def forward_over_reverse(graph, wrt, seeded=None, sw=None) -> _Program:
    """The HVP program of ``graph`` for parameters ``wrt``, with directions for ``seeded``
    only (default: all): the other parameters' directions are zero and never written.
    ``sw``: the first-order sweeps of ``graph`` for ``wrt``, if already built."""
    sw = sweeps(graph, wrt) if sw is None else sw
    seeded = tuple(wrt if seeded is None else seeded)
    shapes = dict(sw.shapes)
    zero = {sw.seeds[w]: sp.S.Zero for w in wrt if w not in seeded}
    tangents = {}  # the first-order tangents along the seeded directions: those of sw, others zeroed
    program = []
    by_target = {a.target: a for a in sw.forward}
    known = {}
    for n, a in zip(graph.nodes, sw.values):
        program.append(a)
        known[a.expr] = a.target
        t = sw.tangent.get(n.symbol)
        d = by_target.pop(t, None)
        if d is not None:
            expr = _without(d.expr, zero) if zero else d.expr
            if expr.is_zero or (zero and expr.is_Atom):  # zero, or another tangent: no statement
                zero[d.target] = expr
            else:
                program.append(Assign(d.target, expr.xreplace(known), d.note))
        if t is not None:
            t = _without(t, zero) if zero else t
            if not t.is_zero:
                tangents[n.symbol] = t
    dots = {w: sw.seeds[w] for w in seeded}
    dots.update(tangents)
    for a in sw.reverse:
        expr = a.expr.xreplace(known)
        program.append(Assign(a.target, expr, a.note))
        d = tangent_of(expr, dots)
        if d is None:
            dots.pop(a.target, None)
            continue
        target = _dot_name(a.target)
        if a.target in shapes:
            shapes[target] = shapes[a.target]
        if d != target:
            program.append(Assign(target, d, a.note))
        dots[a.target] = target
    hv = {}
    for w in sw.wrt:
        adj = sw.adjoint.get(w)
        hv[w] = tangent_of(adj.xreplace(known), dots) if adj is not None else None
    return _Program(sw, program, hv, shapes)


class Shared(sp.Symbol):
    """A subexpression several statements read, computed once (``_s1 = ...``)."""


def _size(e) -> int:
    return sum(1 for _ in sp.preorder_traversal(e))


def _worth_sharing(e, skip) -> bool:
    if e.is_Atom or isinstance(e, (Marker, sp.logic.boolalg.Boolean)) or not isinstance(e, sp.Expr) or skip(e):
        return False
    if e.is_Mul and len(e.args) == 2 and e.args[0].is_Number and e.args[1].is_Atom:
        return False  # -x, 2*x: as cheap as reading a variable
    if isinstance(e, (O.T, O.bcast_rows, O.bcast_cols, O.fill)) and e.args[0].is_Atom:
        return False  # a view
    return isinstance(e, (sp.Function, sp.Add, sp.Mul, sp.Pow))


def share(program, results, names, skip=lambda e: False, made=lambda sym, e: None):
    """Common subexpressions of ``program`` (and of the ``results`` it returns) computed once:
    the largest first, each in a statement ``_sN = e`` before its first reader, where no
    variable it reads is overwritten before its last reader. ``skip(e)``: never share e (the
    stacked programs keep their stacked expressions); ``made(sym, e)`` is told of each new one."""
    exprs = [a.expr for a in program] + [r for r in results if r is not None]
    counts = {}
    for e in exprs:
        for x in sp.preorder_traversal(e):
            if _worth_sharing(x, skip):
                counts[x] = counts.get(x, 0) + 1
    cands = sorted((x for x, c in counts.items() if c > 1), key=_size, reverse=True)
    if not cands:
        return program, results
    assigned = {}
    for i, a in enumerate(program):
        assigned.setdefault(a.target, []).append(i)
    program, results = list(program), list(results)
    taken = {v for k, v in names.items() if not isinstance(k, Shared)}
    k = 0
    for x in cands:
        readers = [i for i, a in enumerate(program) if a.expr.has(x)]
        ends = [len(program) for r in results if r is not None and r.has(x)]
        uses = sum(1 for a in program for y in sp.preorder_traversal(a.expr) if y == x) + sum(
            1 for r in results if r is not None for y in sp.preorder_traversal(r) if y == x)
        if uses < 2 or not readers + ends:
            continue
        first, last = (readers + ends)[0], (readers + ends)[-1]
        if any(first <= j < last for y in x.free_symbols for j in assigned.get(y, ())):
            continue  # a variable it reads is overwritten before its last reader
        k += 1
        while "_s%d" % k in taken:
            k += 1
        sym = Shared("_s%d" % k)
        names[sym] = "_s%d" % k
        made(sym, x)
        sub = {x: sym}
        new = [Assign(a.target, a.expr.xreplace(sub), a.note, tuple(t.xreplace(sub) for t in a.acc)) if a.expr.has(x)
               else a for a in program]
        new.insert(first, Assign(sym, x, "shared: %s" % sp.sstr(x)))
        program = new
        results = [None if r is None else r.xreplace(sub) for r in results]
        assigned = {}
        for i, a in enumerate(program):
            assigned.setdefault(a.target, []).append(i)
    return program, results


def _without(e, zero: dict):
    """``e`` with the symbols of ``zero`` replaced (by 0, or by the tangent they alias), and
    every linear operation of a zero argument zero (``mm(X, 0)`` is 0)."""
    if not (e.free_symbols & zero.keys()):
        return e
    if e.is_Symbol:
        return zero[e]
    args = [_without(a, zero) if isinstance(a, sp.Basic) else a for a in e.args]
    if isinstance(e, O.MatOp) and any(args[i].is_zero for i in type(e).linear_args):
        return sp.S.Zero
    if isinstance(e, sp.Piecewise):
        return sp.Piecewise(*[(a.args[0], a.args[1]) for a in args])
    return e.func(*args)


def generate_hvp(graph, wrt, args, sw=None, flavour: str = "numpy"):
    """A module with ``hvp(args..., wrt..., v...)`` returning the tangents of the gradients along
    v: H·v for each parameter (summed over a batch like the gradients). ``flavour="xp"``: the
    array-API module (symgrad.flavours; no in-place statements, the library's arrays out)."""
    fl = XP if flavour == "xp" else NUMPY
    fr = forward_over_reverse(graph, wrt, sw=sw)
    sw = fr.sw
    params = list(args) + list(sw.wrt)
    names = Names(identifier_names(params + list(graph.dims)))
    printer = fl.printer(names)
    head = dimension_lines(graph, params, names)
    returned = [sp.S.Zero if fr.hv[w] is None else fr.hv[w] for w in sw.wrt]
    shapes = fr.shapes

    def shape_of(s):
        return s.shape if isinstance(s, MatLeaf) else shapes.get(s) or graph.shape(s)

    live, returned = share(live_statements(fr.program, returned), returned, names,
                            made=lambda sym, x: shapes.__setitem__(sym, tuple(O.shape_of(x, shape_of))))
    results = []
    for w, hv in zip(sw.wrt, returned):
        if graph.is_matrix and fl is XP:
            results.append(fl.own % (printer.doprint(hv), names[w]) if graph.shape(w) else printer.doprint(hv))
        elif graph.is_matrix:
            shape = "np.shape(%s)" % names[w]
            results.append("np.broadcast_to(%s, %s).astype(np.result_type(%s, float))"
                           % (printer.doprint(hv), shape, names[w]) if graph.shape(w) else "float(%s)"
                           % printer.doprint(hv))
        else:
            results.append("_sum_to(%s, %s, _batch)" % (printer.doprint(hv), names[w]))
    if graph.is_matrix and fl.inplace:  # statements overwrite the buffers they own once nothing reads them
        inputs = set(params) | {sw.seeds[w] for w in sw.wrt}
        lines = statement_lines(printer, live, names, inputs, returned, lambda s: tuple(shape_of(s) or ()))
    else:
        lines = statement_lines(printer, live, names)
    sig = ", ".join(names[p] for p in params) + ", " + ", ".join(printer._print(sw.seeds[w]) for w in sw.wrt)
    if not graph.is_matrix:
        leaves = set(graph.leaves)
        used = [names[p] for p in params if p in leaves] or ["0.0"]
        head = ["    _batch = %s" % (fl.bshape % ", ".join(fl.shape % u for u in used))] + head
    src = "def hvp(%s):\n%s\n    return (%s,)\n" % (sig, "\n".join(head + lines), ", ".join(results))
    extra = "import scipy.special\n" if any(m.startswith("scipy") for m in printer.module_imports) else ""
    if fl is XP:
        source = fl.header.format(expr=docstring(short_text(graph)), extra="") + fl.runtime
    else:
        source = HEADER.format(expr=docstring(short_text(graph)), extra=extra)
        if not graph.is_matrix:
            source += SUM_TO
    for h in sorted(printer.helpers):
        source += (fl.helpers or HELPERS)[h]
    source = source.rstrip("\n") + "\n\n\n" + src
    return assemble(source, {"hvp": src}, names, kinds=(("hvp", "hvp"),))
