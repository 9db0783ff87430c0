"""Hessians and their diagonals of matrix expressions, from the structure of the HVP program
of ``symgrad.second``.

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

The HVP program these are built from is ``symgrad.second``; the printer is ``symgrad.stacked``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp

from . import ops_matrix as O
from .emit import HEADER, HELPERS, Names, assemble, dimension_lines, short_text, statement_lines, strip_parens
from .ir import MatLeaf, XiDot
from .naming import docstring, identifier_names
from .second import Shared, forward_over_reverse, live_statements, share
from .stacked import (HELPERS_STACKED, Diag, DiagGather, DiagMML, DiagMMR, DiagOnes, DiagRows, DiagScalar, DiagSum,
                      DiagUnit, DiagUnitLeft, Lift, StackedPrinter, UnitLeft, UnitRight)
from .sweeps import Assign, sweeps

__all__ = ["generate_hessian", "HessianPlan"]


class _Stacking:
    """Which expressions of a stacked program carry the direction axis, and their shapes."""

    def __init__(self, graph, shapes):
        self.graph, self.shapes = graph, shapes
        self.memo = {}

    def stacked(self, e) -> bool:
        m = self.memo.get(e)
        if m is None:
            if isinstance(e, Diag):
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
        if isinstance(e, Diag):
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
        fr = forward_over_reverse(graph, wrt, (p,), sw)
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
        live = live_statements(program, [r for r in results if r is not None])
        live, results = _fuse(live, results, st)
        live, results = share(live, results, names, st.stacked,
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
