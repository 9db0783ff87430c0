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

**Hessians of matrix expressions** (``generate_hessian``). The same program with the direction
of one parameter p only, and every unit vector of a block of p's rows at once: each tangent
then carries an axis of k directions in the middle, ``(rows, k, cols)``, so that a matrix
product with a tangent is ONE product, ``(A @ t.reshape(r, -1)).reshape(n, k, m)`` (no
reshape copies: the direction axis sits next to the axis the product does not touch).
The direction itself is the identity, so ``A @ p_dot`` is a slice of A, ``A[:, r0:r1, None]``
for a column p: no product at all. For logistic regression the whole program is then
``Xᵀ·(s·X)`` — one product, the closed form. The tangent program is linear in the direction,
so no product ever has two stacked operands. For the diagonal only p's own result is kept,
and "the diagonal of" is pushed through sums, scalings and variables into the last operation,
which needs only its diagonal entries: ``A @ (unit directions ∘ c)`` is ``((Aᵀ ∘ B)ᵀ @ c)``
with no stacked array at all (logistic regression: ``(X∘X)ᵀs``, no d × d work; ``path``
"structure"), another product with a stacked operand the einsum of its diagonal entries
(``path`` "stacked" when the directions pass through other products first); anything else
takes the documented fallback: the whole stacked column block of p, and its diagonal entries
(``path`` "columns"; a block of p's rows at a time, never the full Hessian). Subexpressions
several statements read are computed once (``_s1 = ...``), in the HVP program too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp

from . import functions as F
from . import ops_matrix as O
from .emit import (HEADER, HELPERS, SUM_TO, Names, assemble, dimension_lines, short_text, statement_lines,
                   strip_parens)
from .errors import UnsupportedError
from .ir import MatLeaf, XiDot
from .naming import docstring, identifier_names
from .printing import CodePrinter
from .sweeps import Assign, sweeps

__all__ = ["tangent_of", "generate_hvp", "generate_hessian", "HessianPlan", "StackedPrinter"]

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


@dataclass
class _Program:
    """A forward-over-reverse program: statements, and H·v of each parameter (None if zero)."""

    sw: object  # the first-order sweeps (values, reverse program, seeds)
    program: list
    hv: dict  # parameter -> expression of its H·v
    shapes: dict  # derivative variable -> its (unstacked) shape


def _forward_over_reverse(graph, wrt, seeded=None, sw=None) -> _Program:
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
    if e.is_Atom or isinstance(e, (_Marker, sp.logic.boolalg.Boolean)) or not isinstance(e, sp.Expr) or skip(e):
        return False
    if e.is_Mul and len(e.args) == 2 and e.args[0].is_Number and e.args[1].is_Atom:
        return False  # -x, 2*x: as cheap as reading a variable
    if isinstance(e, (O.T, O.bcast_rows, O.bcast_cols, O.fill)) and e.args[0].is_Atom:
        return False  # a view
    return isinstance(e, (sp.Function, sp.Add, sp.Mul, sp.Pow))


def _share(program, results, names, skip=lambda e: False, made=lambda sym, e: None):
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


def generate_hvp(graph, wrt, args, sw=None):
    """A module with ``hvp(args..., wrt..., v...)`` returning the tangents of the gradients along
    v: H·v for each parameter (summed over a batch like the gradients)."""
    fr = _forward_over_reverse(graph, wrt, sw=sw)
    sw = fr.sw
    params = list(args) + list(sw.wrt)
    names = Names(identifier_names(params + list(graph.dims)))
    printer = CodePrinter(names)
    head = dimension_lines(graph, params, names)
    returned = [sp.S.Zero if fr.hv[w] is None else fr.hv[w] for w in sw.wrt]
    shapes = fr.shapes

    def shape_of(s):
        return s.shape if isinstance(s, MatLeaf) else shapes.get(s) or graph.shape(s)

    live, returned = _share(_live(fr.program, returned), returned, names,
                            made=lambda sym, x: shapes.__setitem__(sym, tuple(O.shape_of(x, shape_of))))
    results = []
    for w, hv in zip(sw.wrt, returned):
        if graph.is_matrix:
            shape = "np.shape(%s)" % names[w]
            results.append("np.broadcast_to(%s, %s).astype(np.result_type(%s, float))"
                           % (printer.doprint(hv), shape, names[w]) if graph.shape(w) else "float(%s)"
                           % printer.doprint(hv))
        else:
            results.append("_sum_to(%s, %s, _batch)" % (printer.doprint(hv), names[w]))
    if graph.is_matrix:  # statements overwrite the buffers they own once nothing reads them (passes.plan_inplace)
        inputs = set(params) | {sw.seeds[w] for w in sw.wrt}
        lines = statement_lines(printer, live, names, inputs, returned, lambda s: tuple(shape_of(s) or ()))
    else:
        lines = statement_lines(printer, live, names)
    sig = ", ".join(names[p] for p in params) + ", " + ", ".join(printer._print(sw.seeds[w]) for w in sw.wrt)
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


# ---- stacked programs: an axis of k directions in the middle, (rows, k, cols) ------------------

class _Marker(O.MatOp):
    """Printing-only nodes of the stacked programs (never differentiated)."""

    kind = "constant"
    linear_args = ()

    @classmethod
    def shape(cls, args, shapes):
        return shapes(args[0])


class Lift(_Marker):
    """An unstacked matrix operand of an elementwise operation on stacked ones: ``x[:, None, :]``."""

    nargs = 1


class UnitRight(_Marker):
    """``A @ p_dot`` where p_dot is the block of unit directions: a slice of A, no product."""

    nargs = 2

    @classmethod
    def shape(cls, args, shapes):
        return (shapes(args[0])[0], shapes(args[1])[1])


class UnitLeft(_Marker):
    """``p_dot @ B`` where p_dot is the block of unit directions: rows of B, no product."""

    nargs = 2

    @classmethod
    def shape(cls, args, shapes):
        return (shapes(args[0])[0], shapes(args[1])[1])


class _Diag(_Marker):
    """The diagonal entries (rows r0..r1 of p, shaped like them) of a stacked expression."""


class DiagMMR(_Diag):
    """diag of ``A @ t`` (t stacked): ``einsum('am,mabb->ab', A[r0:r1], t)``, its diagonal entries only."""

    nargs = 2


class DiagMML(_Diag):
    """diag of ``t @ B`` (t stacked): ``einsum('aabm,mb->ab', t[r0:r1], B)``."""

    nargs = 2


class DiagUnit(_Diag):
    """diag of ``A @ (UnitRight(B)·c)``: ``((A[r0:r1].T ∘ B[:, r0:r1]).T @ c)``, no stacked array."""

    nargs = 3


class DiagUnitLeft(_Diag):
    """diag of ``(UnitLeft(B)·c) @ A``: ``c[r0:r1] @ (Bᵀ ∘ A)``, no stacked array."""

    nargs = 3  # (c, B, A)


class DiagSum(_Diag):
    """diag of a sum of a stacked t over rows (colsum, p a row), columns (rowsum, p a column)
    or both (sumall, p a scalar): the entries the diagonal needs, summed."""

    nargs = 2  # (t, which: 0 colsum, 1 rowsum, 2 sumall)


class DiagScalar(_Diag):
    """diag for a scalar parameter: its one direction's (1, 1, 1) result."""

    nargs = 1


class DiagRows(_Diag):
    """An unstacked factor with p's rows, at the rows of this block: ``c[r0:r1]``."""

    nargs = 1


class DiagOnes(_Diag):
    """diag of the unit directions themselves: ones."""

    nargs = 1


class DiagGather(_Diag):
    """The fallback: the stacked expression computed whole, its diagonal entries read off."""

    nargs = 1


HELPERS_STACKED = {
    "_unit": '''
def _unit(r0, r1, rows, cols):
    """The unit directions of rows r0..r1 of a (rows, cols) parameter: (rows, k, cols), k = (r1 - r0)·cols."""
    e = np.zeros((rows, r1 - r0, cols, cols))
    e[np.arange(r0, r1), np.arange(r1 - r0)] = np.eye(cols)
    return e.reshape(rows, (r1 - r0) * cols, cols)
''',
    "_unit_right": '''
def _unit_right(a, r0, r1, cols):
    """a @ e for the unit directions e of rows r0..r1 of a (rows, cols) parameter: column b of the
    result is column r of a for the direction of entry (r, b), without a product."""
    out = np.zeros((a.shape[0], r1 - r0, cols, cols), np.result_type(a, float))
    out[:, :, np.arange(cols), np.arange(cols)] = a[:, r0:r1, None]
    return out.reshape(a.shape[0], (r1 - r0) * cols, cols)
''',
    "_unit_left": '''
def _unit_left(b, r0, r1, rows):
    """e @ b for the unit directions e of rows r0..r1 of a (rows, cols) parameter: row r of the
    result is row c of b for the direction of entry (r, c), without a product."""
    out = np.zeros((rows, r1 - r0, b.shape[0], b.shape[1]), np.result_type(b, float))
    out[np.arange(r0, r1), np.arange(r1 - r0)] = b
    return out.reshape(rows, (r1 - r0) * b.shape[0], b.shape[1])
''',
}


class StackedPrinter(CodePrinter):
    """Matrix operations on stacked tangents, (rows, k, cols) with the k directions in the
    middle: a product with one stacked operand is one product over reshaped views. ``stacked(e)``
    says whether an expression carries the direction axis, ``shape(e)`` gives its shape per
    direction; ``rows``/``cols`` are the parameter's, whose unit directions are stacked."""

    def __init__(self, names, stacked, shape, rows, cols):
        super().__init__(names)
        self.stacked, self.shape, self.rows, self.cols = stacked, shape, rows, cols

    def _dim(self, n):
        return self._print(n)

    def _print_mm(self, e):
        a, b = e.args
        sa, sb = self.stacked(a), self.stacked(b)
        if not (sa or sb):
            return super()._print_mm(e)
        if sa and sb:  # pragma: no cover - the program is linear in the direction
            raise UnsupportedError("internal: a product of two stacked tangents")
        (n, r), (_, m) = self.shape(a), self.shape(b)
        if sb:
            return "(%s @ %s.reshape(%s, -1)).reshape(%s, _k, %s)" % (
                self._operand(a), self._operand(b), self._dim(r), self._dim(n), self._dim(m))
        return "(%s.reshape(-1, %s) @ %s).reshape(%s, _k, %s)" % (
            self._operand(a), self._dim(r), self._operand(b), self._dim(n), self._dim(m))

    def _print_T(self, e):
        if not self.stacked(e):
            return super()._print_T(e)
        return "%s.transpose(2, 1, 0)" % self._operand(e.args[0])

    def _print_bcast_rows(self, e):
        if not self.stacked(e):
            return super()._print_bcast_rows(e)
        t = e.args[0]
        return "np.broadcast_to(%s, (%s, _k, %s))" % (self._print(t), self._dim(e.args[1]), self._dim(self.shape(t)[1]))

    def _print_bcast_cols(self, e):
        if not self.stacked(e):
            return super()._print_bcast_cols(e)
        t = e.args[0]
        return "np.broadcast_to(%s, (%s, _k, %s))" % (self._print(t), self._dim(self.shape(t)[0]), self._dim(e.args[1]))

    def _print_colsum(self, e):
        if not self.stacked(e):
            return super()._print_colsum(e)
        return "np.sum(%s, axis=0, keepdims=True)" % self._print(e.args[0])

    def _print_rowsum(self, e):
        if not self.stacked(e):
            return super()._print_rowsum(e)
        return "np.sum(%s, axis=2, keepdims=True)" % self._print(e.args[0])

    def _print_sumall(self, e):
        if not self.stacked(e):
            return super()._print_sumall(e)
        return "np.sum(%s, axis=(0, 2), keepdims=True)" % self._print(e.args[0])

    def _print_fill(self, e):
        if not self.stacked(e):
            return super()._print_fill(e)
        g, r, c = e.args
        return "np.broadcast_to(%s, (%s, _k, %s))" % (self._print(g), self._dim(r), self._dim(c))

    def _print_trace(self, e):
        if not self.stacked(e):
            return super()._print_trace(e)
        return "np.einsum('aka->k', %s)[None, :, None]" % self._print(e.args[0])

    def _print_frob(self, e):
        if not self.stacked(e):
            return super()._print_frob(e)
        a, b = e.args
        if self.stacked(a):
            a, b = b, a
        if self.stacked(a):  # pragma: no cover - the program is linear in the direction
            raise UnsupportedError("internal: a Frobenius product of two stacked tangents")
        return "np.einsum('am,akm->k', %s, %s)[None, :, None]" % (self._print(a), self._print(b))

    def _print_lse_rows(self, e):
        if self.stacked(e):  # pragma: no cover - their tangents are rowsum/exp expressions
            raise UnsupportedError("internal: lse_rows of a stacked tangent")
        return super()._print_lse_rows(e)

    def _print_softmax_rows(self, e):
        if self.stacked(e):  # pragma: no cover
            raise UnsupportedError("internal: softmax_rows of a stacked tangent")
        return super()._print_softmax_rows(e)

    def _print_Lift(self, e):
        return "%s[:, None, :]" % self._operand(e.args[0])

    def _print_UnitRight(self, e):
        a = e.args[0]
        if self.cols == 1:
            return "%s[:, _r0:_r1, None]" % self._operand(a)
        self.helpers.add("_unit_right")
        return "_unit_right(%s, _r0, _r1, %s)" % (self._print(a), self._dim(self.cols))

    def _print_UnitLeft(self, e):
        self.helpers.add("_unit_left")
        return "_unit_left(%s, _r0, _r1, %s)" % (self._print(e.args[1]), self._dim(self.rows))

    def _print_DiagMMR(self, e):
        a, t = e.args
        m = self.shape(t)[0]
        c = self._dim(self.cols)
        return "np.einsum('am,mabb->ab', %s[_r0:_r1], %s.reshape(%s, _rows, %s, %s))" % (
            self._operand(a), self._operand(t), self._dim(m), c, c)

    def _print_DiagMML(self, e):
        t, b = e.args
        m = self.shape(t)[1]
        return "np.einsum('aabm,mb->ab', %s[_r0:_r1].reshape(_rows, _rows, %s, %s), %s)" % (
            self._operand(t), self._dim(self.cols), self._dim(m), self._print(b))

    def _print_DiagUnit(self, e):
        a, b, c = e.args
        left = ("%s[:, _r0:_r1]" % self._operand(a.args[0]) if isinstance(a, O.T) else
                "%s[_r0:_r1].T" % self._operand(a))
        prod = "(%s * %s[:, _r0:_r1])" % (left, self._operand(b))
        m = self.shape(b)[0]
        tall = [f for f in sp.Mul.make_args(c) if self.shape(f) and self.shape(f)[0] == m and m != 1]
        rest = sp.Mul(*[f for f in sp.Mul.make_args(c) if f not in tall])
        if tall:
            out = "(%s.T @ %s)" % (prod, self._operand(sp.Mul(*tall)))
        else:
            out = "np.sum(%s, axis=0)[:, None]" % prod
        return out if rest == 1 else "%s*%s" % (out, self.parenthesize(rest, 50))

    def _print_DiagUnitLeft(self, e):
        c, b, a = e.args
        prod = "(%s * %s)" % (self._operand(O.T(b)), self._operand(a))
        mats = [f for f in sp.Mul.make_args(c) if self.shape(f)]
        rest = sp.Mul(*[f for f in sp.Mul.make_args(c) if not self.shape(f)])
        if mats:
            m = sp.Mul(*mats)
            rows = "%s[_r0:_r1]" % self._operand(m) if self.shape(m)[0] != 1 else self._operand(m)
            out = "(%s @ %s)" % (rows, prod)
        else:
            out = "np.sum(%s, axis=0)[None, :]" % prod
        return out if rest == 1 else "%s*%s" % (out, self.parenthesize(rest, 50))

    def _print_DiagSum(self, e):
        t, which = e.args
        c = self._dim(self.cols)
        if which == 0:  # p is a row (1, c): direction j is entry (0, j)
            return "np.einsum('mbb->b', %s.reshape(-1, %s, %s))[None, :]" % (self._operand(t), c, c)
        if which == 1:  # p is a column (r, 1): direction j is entry (r0 + j, 0)
            return "np.einsum('aam->a', %s[_r0:_r1])[:, None]" % self._operand(t)
        return "np.sum(%s, axis=(0, 2)).reshape(_rows, %s)" % (self._print(t), c)

    def _print_DiagScalar(self, e):
        return "np.reshape(%s, (1, 1))" % self._print(e.args[0])

    def _print_DiagRows(self, e):
        return "%s[_r0:_r1]" % self._operand(e.args[0])

    def _print_DiagOnes(self, e):
        return "np.ones((_rows, %s))" % self._dim(self.cols)

    def _print_DiagGather(self, e):
        t = e.args[0]
        r, c = self._dim(self.rows), self._dim(self.cols)
        return "np.einsum('aabb->ab', np.broadcast_to(%s, (%s, _k, %s))[_r0:_r1].reshape(_rows, _rows, %s, %s))" % (
            self._print(t), r, c, c, c)


class _Stacking:
    """Which expressions of a stacked program carry the direction axis, and their shapes."""

    def __init__(self, graph, shapes):
        self.graph, self.shapes = graph, shapes
        self.memo = {}

    def stacked(self, e) -> bool:
        m = self.memo.get(e)
        if m is None:
            if isinstance(e, _Diag):
                m = False
            elif isinstance(e, (UnitRight, UnitLeft)):
                m = True
            elif e.is_Symbol:
                m = isinstance(e, XiDot)
            elif e.is_Atom or not e.args:
                m = False
            else:
                m = any(self.stacked(a) for a in e.args if isinstance(a, sp.Basic))
            self.memo[e] = m
        return m

    def symbol_shape(self, s):
        if isinstance(s, MatLeaf):
            return s.shape
        return self.shapes.get(s) or self.graph.shape(s)

    def shape(self, e):
        return O.shape_of(e, self.symbol_shape)

    # -- lifting: unstacked matrices inside elementwise operations on stacked ones -----------
    def lift(self, e):
        if not self.stacked(e) or e.is_Symbol or isinstance(e, (UnitRight, UnitLeft)):
            return e
        if isinstance(e, O.MatOp):
            return e.func(*[self.lift(a) for a in e.args])
        if isinstance(e, sp.Piecewise):
            return sp.Piecewise(*[(self._operand(p.expr), self._cond(p.cond)) for p in e.args], evaluate=False)
        if e.is_Mul:  # the unstacked factors multiplied first, lifted once: one pass over the stacked array
            inner = [a for a in e.args if self.stacked(a)]
            outer = sp.Mul(*[a for a in e.args if not self.stacked(a)])
            return sp.Mul(self._operand(outer), *[self.lift(a) for a in inner])
        return e.func(*[self._operand(a) for a in e.args])

    def lift_diag(self, e):
        """Lift inside the diagonal nodes of an output expression (which itself is unstacked)."""
        if isinstance(e, _Diag):
            return e.func(*[self.lift(a) for a in e.args])
        if e.is_Add or e.is_Mul:
            return e.func(*[self.lift_diag(a) for a in e.args])
        return e

    def _operand(self, a):
        if self.stacked(a):
            return self.lift(a)
        if isinstance(a, sp.logic.boolalg.Boolean) and not isinstance(a, sp.Expr):
            return self._cond(a)
        if isinstance(a, sp.Expr) and self.shape(a):
            return Lift(a)
        return a

    def _cond(self, c):
        if isinstance(c, sp.core.relational.Relational):
            return c.func(*[Lift(a) if self.shape(a) else a for a in c.args])
        if isinstance(c, (sp.And, sp.Or, sp.Not, sp.Xor)):
            return c.func(*[self._cond(a) for a in c.args])
        return c


class _Abort(Exception):
    """The diagonal cannot be pushed down without reading an overwritten variable."""


def _definitions(program, st: _Stacking):
    """({stacked variable: its defining expression}, versions) for pushing the diagonal down:
    a definition whose unstacked inputs are overwritten later is left out (it could not be read
    at the end); an accumulation ``t = t + s`` refers to the earlier t by a version symbol
    (``versions``), which must never reach the printed program."""
    last = {}
    for i, a in enumerate(program):
        last[a.target] = i
    defs, versions, current = {}, set(), {}
    for i, a in enumerate(program):
        t = a.target
        if not st.stacked(t):
            continue
        expr = a.expr
        if t in current and t in expr.free_symbols:
            v = XiDot("%s@%d" % (t.name, i))
            versions.add(v)
            if current[t] is not None:
                defs[v] = current[t]
            expr = expr.xreplace({t: v})
        safe = all(last.get(x, -1) < i or x == t for x in a.expr.free_symbols if not st.stacked(x))
        current[t] = expr if safe else None
        if safe:
            defs[t] = expr
        else:
            defs.pop(t, None)
    return defs, versions


def _diag_of(e, p, seed, p_shape, st: _Stacking, defs: dict, used: list, versions=frozenset()):
    """The diagonal entries (rows r0..r1 of p) of the stacked expression ``e``, whose shape per
    direction is p's: pushed through sums, scalings and variables into the last product
    (``used`` collects how each piece is computed; "columns" is the fallback)."""
    def down(x):
        return _diag_of(x, p, seed, p_shape, st, defs, used, versions)

    if e == seed:
        used.append("ones")
        return DiagOnes(seed)
    if e.is_Symbol and e in defs:
        return down(defs[e])
    if e.is_Add:
        terms = [down(a) for a in e.args if st.stacked(a)]
        if len(terms) == len([a for a in e.args]):
            return sp.Add(*terms)
    if e.is_Mul:
        inner = [a for a in e.args if st.stacked(a)]
        outer = [a for a in e.args if not st.stacked(a)]
        if len(inner) == 1 and tuple(st.shape(inner[0])) == tuple(p_shape) and all(
                _fits(st.shape(a), p_shape) for a in outer):
            rows = [DiagRows(a) if st.shape(a) and st.shape(a)[0] == p_shape[0] and p_shape[0] != 1 else a
                    for a in outer]
            return sp.Mul(*rows, down(inner[0]))
    if isinstance(e, (O.colsum, O.rowsum, O.sumall)) and st.stacked(e.args[0]) and e.args[0] != seed:
        which = {O.colsum: 0, O.rowsum: 1, O.sumall: 2}[type(e)]
        if (which == 0 and p_shape[0] == 1) or (which == 1 and p_shape[1] == 1) or which == 2:
            used.append("einsum")
            return DiagSum(e.args[0], which)
    if isinstance(e, O.mm):
        a, b = e.args
        via = []
        unit = _unit_scaling(b, st, defs, via) if st.stacked(b) and not st.stacked(a) else None
        if unit is not None:  # A @ (B·e ∘ c): Σ_m A[a,m]·B[m,a]·c[m,b], the diagonal without the stack
            node = DiagUnit(a, *unit)
            used.append(("unit", via, node))
            return node
        unit = _unit_scaling(a, st, defs, via, UnitLeft) if st.stacked(a) and not st.stacked(b) else None
        if unit is not None:  # (e·B ∘ c) @ A: Σ_m c[a,m]·B[b,m]·A[m,b], the diagonal without the stack
            node = DiagUnitLeft(unit[1], unit[0], b)
            used.append(("unit", via, node))
            return node
        if st.stacked(b) and not st.stacked(a) and not isinstance(b, (UnitRight, UnitLeft)) and b != seed:
            used.append("einsum")
            return DiagMMR(a, b)
        if st.stacked(a) and not st.stacked(b) and not isinstance(a, (UnitRight, UnitLeft)) and a != seed:
            used.append("einsum")
            return DiagMML(a, b)
    if any(s in versions for s in e.free_symbols):
        raise _Abort
    used.append("columns")
    return DiagGather(e)


def _unit_scaling(e, st: _Stacking, defs: dict, via: list, kind=None):
    """(B, c) when the stacked ``e`` is ``UnitRight(B)·c`` (``kind=UnitLeft``: ``UnitLeft(B)·c``;
    c unstacked, 1 if absent) through variables (appended to ``via``), else None."""
    kind = UnitRight if kind is None else kind
    factors = []
    while True:
        if e.is_Symbol and e in defs:
            via.append(e)
            e = defs[e]
        elif e.is_Mul and sum(1 for f in e.args if st.stacked(f)) == 1:
            factors += [f for f in e.args if not st.stacked(f)]
            e = next(f for f in e.args if st.stacked(f))
        elif isinstance(e, kind):
            return e.args[0 if kind is UnitRight else 1], sp.Mul(*factors)
        else:
            return None


def _fits(shape, p_shape) -> bool:
    """Whether an unstacked factor of ``shape`` broadcasts against p's shape (a scalar, a row, a column)."""
    if not shape:
        return True
    if not p_shape:
        return False
    return all(s == q or s == 1 for s, q in zip(shape, p_shape))


@dataclass
class HessianPlan:
    """One parameter's stacked program in a ``generate_hessian`` module.

    ``function``: its name in the module; ``outputs``: the parameters whose rows of the Hessian
    it returns (for the diagonal: p alone); ``per_row``: elements its stacked variables hold per
    row of p (a SymPy expression of the dimensions; for choosing how many rows per call);
    ``path``: for the diagonal, "structure" (p's directions reach the last product through
    elementwise operations and sums only, and only its diagonal is computed: as cheap as a
    gradient), "stacked" (the last product's diagonal only, after the directions pass through
    other products: one HVP per entry of the layers in between) or "columns" (the documented
    fallback: p's column block, a block of rows at a time, its diagonal read off); for the
    Hessian, "stacked". ``rows``, ``cols``: p's shape ((1, 1) for a scalar)."""

    parameter: object
    function: str
    outputs: tuple
    per_row: object
    path: str
    rows: object
    cols: object


def generate_hessian(graph, wrt, args, diagonal: bool = False, upper: bool = True, sw=None):
    """A module with one function per parameter p of a matrix expression,
    ``columns_p(args..., wrt..., _r0, _r1)`` (or ``diagonal_p``), and a ``HessianPlan`` for
    each (``module.plans``, in ``wrt`` order).

    ``columns_p`` returns, for each parameter q in ``plan.outputs`` (p and, with ``upper``, the
    parameters after it; the blocks before are the transposes of theirs), the Hessian entries
    ∂²L/∂q∂p for the entries of p's rows r0..r1: an array that broadcasts to (rows_q, k, cols_q),
    k = (r1 − r0)·cols_p, whose [:, j, :] is H·e_j (None where the block is zero). ``diagonal_p``
    returns the diagonal entries of those rows of p's own block (broadcasting to (r1 − r0, cols_p))."""
    wrt = tuple(wrt)
    params = list(args) + list(wrt)
    names = Names(identifier_names(params + list(graph.dims)))
    sources, plans, functions, helpers, imports = {}, [], [], set(), set()
    sw = sweeps(graph, wrt) if sw is None else sw
    for i, p in enumerate(wrt):
        fr = _forward_over_reverse(graph, wrt, (p,), sw)
        seed = sw.seeds[p]
        p_shape = graph.shape(p)
        rows, cols = (p_shape if p_shape else (sp.S.One, sp.S.One))
        outputs = (p,) if diagonal else (wrt[i:] if upper else wrt)
        st = _Stacking(graph, fr.shapes)
        is_seed = {seed}

        def unit(e):  # the unit directions' products: slices of the other operand
            return e.replace(lambda x: isinstance(x, O.mm) and (x.args[1] in is_seed) and not st.stacked(x.args[0]),
                             lambda x: UnitRight(x.args[0], x.args[1])).replace(
                lambda x: isinstance(x, O.mm) and (x.args[0] in is_seed) and not st.stacked(x.args[1]),
                lambda x: UnitLeft(x.args[0], x.args[1]))

        program = [Assign(a.target, unit(a.expr), a.note) for a in fr.program]
        hv = {q: (None if fr.hv[q] is None else unit(fr.hv[q])) for q in outputs}
        used = []
        if diagonal:
            defs, versions = _definitions(program, st)
            d = hv[p]
            if d is None:
                results = [None]
            elif not p_shape:  # one direction: its column is the diagonal
                results = [DiagScalar(d)]
            else:
                try:
                    results = [_diag_of(d, p, seed, tuple(p_shape), st, defs, used, versions)]
                    if results[0].free_symbols & versions:
                        raise _Abort
                except _Abort:
                    used = ["columns"]
                    results = [DiagGather(d)]
        else:
            results = [hv[q] for q in outputs]
        live = _live(program, [r for r in results if r is not None])
        live, results = _fuse(live, results, st)
        live, results = _share(live, results, names, st.stacked,
                               lambda sym, x: st.shapes.__setitem__(sym, tuple(st.shape(x))))
        if diagonal and results[0] is not None:
            live, results = _weights(live, results, names, st, fr.program, used)
        results = [None if r is None else (st.lift_diag(r) if diagonal else st.lift(r)) for r in results]
        live = [Assign(a.target, st.lift(a.expr), a.note) if st.stacked(a.expr) else a for a in live]
        through = any(isinstance(x, (O.mm, O.T)) and st.stacked(x) for a in live if st.stacked(a.target)
                      for x in sp.preorder_traversal(a.expr))
        path = "columns" if "columns" in used else ("stacked" if through or not diagonal else "structure")
        used = [u for u in used if not isinstance(u, tuple)]
        printer = StackedPrinter(names, st.stacked, st.shape, rows, cols)
        head = dimension_lines(graph, params, names)
        head.append("    _rows = _r1 - _r0  # rows of %s in this block" % names[p])
        head.append("    _k = %s  # directions: every entry of those rows" % (
            "_rows" if cols == 1 else "_rows * %s" % printer._dim(cols)))
        seed_used = any(_reads_seed(a.expr, seed) for a in live) or any(
            r is not None and _reads_seed(r, seed) for r in results)
        if seed_used:
            printer.helpers.add("_unit")
            head.append("    %s = _unit(_r0, _r1, %s, %s)  # the unit directions, (rows, k, cols)" % (
                printer._print(seed), printer._dim(rows), printer._dim(cols)))
        lines = statement_lines(printer, live, names)
        ret = ["None" if r is None else strip_parens(printer.doprint(r)) for r in results]
        head = _used(head, lines + ret)
        fname = ("diagonal_" if diagonal else "columns_") + names[p]
        sig = ", ".join(names[x] for x in params) + ", _r0, _r1"
        what = ("the diagonal of ∂²L/∂%s², rows _r0.._r1 of %s (%s)" % (names[p], names[p], path) if diagonal else
                "∂²L/∂(%s)∂%s: H·e for the unit directions e of rows _r0.._r1 of %s" % (
                    ", ".join(names[q] for q in outputs), names[p], names[p]))
        body = "".join(line + "\n" for line in head + lines)
        src = 'def %s(%s):\n    """%s"""\n%s    return (%s,)\n' % (fname, sig, what, body, ", ".join(ret))
        sources[fname] = src
        functions.append((fname, fname))
        helpers |= printer.helpers
        imports |= {m for m in printer.module_imports if m.startswith("scipy")}
        per_row = cols * sp.Add(*[sp.Mul(*(st.symbol_shape(a.target) or (1,))) for a in live
                                  if st.stacked(a.target)], 1)
        plans.append(HessianPlan(p, fname, tuple(outputs), per_row, path, rows, cols))
    extra = "import scipy.special\n" if imports else ""
    source = HEADER.format(expr=docstring(short_text(graph)), extra=extra)
    for h in sorted(helpers):
        source += HELPERS_STACKED[h] if h in HELPERS_STACKED else HELPERS[h]
    source = source.rstrip("\n") + "\n\n\n" + "\n\n".join(sources.values())
    module = assemble(source, sources, names, kinds=tuple(functions))
    return module, plans


def _fuse(live, results, st):
    """Inline each stacked statement that only scales one stacked value by unstacked factors
    (``t = s·c``) into its one elementwise consumer: a chain of such statements is then one
    pass over the stacked array, its unstacked factors multiplied first (``s·(c·c')``)."""
    uses, where, assigned = {}, {}, {}
    for i, a in enumerate(live):
        assigned.setdefault(a.target, []).append(i)
        for x in a.expr.free_symbols:
            uses[x] = uses.get(x, 0) + 1
            where[x] = i
    for r in results:
        for x in (r.free_symbols if r is not None else ()):
            uses[x] = uses.get(x, 0) + 2  # a result is read by the caller: never inlined away

    def scaling(e):
        return e.is_Mul and sum(1 for f in e.args if st.stacked(f)) == 1

    inline, since, chain, out = {}, {}, {}, []
    for i, a in enumerate(live):
        expr, start, note, merged = a.expr, i, a.note, []
        if st.stacked(expr) and not isinstance(expr, O.MatOp):
            sub = {x: inline[x] for x in expr.free_symbols if x in inline}
            if sub:
                start = min(since[x] for x in sub)
                expr = expr.xreplace(sub)
                merged = sorted({n for x in sub for n in chain[x]})
                note = "%s; with %s inlined" % (a.note, ", ".join(merged))
        t = a.target
        consumer = where.get(t)
        if (st.stacked(t) and scaling(expr) and uses.get(t) == 1 and len(assigned[t]) == 1 and consumer is not None
                and consumer > i and st.stacked(live[consumer].expr) and not isinstance(live[consumer].expr, O.MatOp)
                and not any(len(assigned.get(x, ())) > 1 and any(start < j < consumer for j in assigned[x])
                            for x in expr.free_symbols)):  # an accumulated adjoint reads the same value there
            inline[t], since[t], chain[t] = expr, start, merged + [sp.sstr(t)]
            continue
        out.append(Assign(t, expr, note) if expr is not a.expr else a)
    return out, results


def _weights(live, results, names, st, program, used):
    """The weights c of each ``DiagUnit`` in a statement of their own (``_sN = c``), named after
    the statements they come from, so that the return line reads ``(B∘A)ᵀ @ _sN``."""
    notes = {a.target: a.note for a in program}
    vias = {u[2]: u[1] for u in used if isinstance(u, tuple)}
    taken = {v for k, v in names.items() if not isinstance(k, Shared)} | {
        names[a.target] for a in live if isinstance(a.target, Shared)}
    sub, k = {}, 0
    for u, via in vias.items():
        left = isinstance(u, DiagUnitLeft)
        c = u.args[0] if left else u.args[2]
        if c.is_Atom or u in sub or (left and not any(st.shape(f) for f in sp.Mul.make_args(c))):
            continue
        k += 1
        while "_s%d" % k in taken:
            k += 1
        sym = Shared("_s%d" % k)
        names[sym] = "_s%d" % k
        st.shapes[sym] = tuple(st.shape(c))
        origin = ", ".join(dict.fromkeys(notes[v] for v in via if v in notes))
        live = live + [Assign(sym, c, "the weights of the last product's diagonal (%s)" % origin)]
        sub[u] = DiagUnitLeft(sym, u.args[1], u.args[2]) if left else DiagUnit(u.args[0], u.args[1], sym)
    return live, [results[0].xreplace(sub)] + results[1:]


def _used(head, body) -> list:
    """The header lines (``name = ...``) whose name the body or a later kept header line reads."""
    text = "\n".join(body)
    kept = []
    for line in reversed(head):
        name = line.split("=", 1)[0].strip()
        if re.search(r"(?<![\w.])%s(?!\w)" % re.escape(name), text):
            kept.append(line)
            text += "\n" + line.split("=", 1)[1]
    return kept[::-1]


def _reads_seed(e, seed) -> bool:
    """Whether ``e`` reads the unit directions other than through a product that slices them."""
    if e == seed:
        return True
    if isinstance(e, (UnitRight, UnitLeft)) or e.is_Atom:
        return False
    return any(_reads_seed(a, seed) for a in e.args if isinstance(a, sp.Basic))
