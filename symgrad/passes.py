"""Passes on a straight-line program: dead values, in-place updates of owned buffers, inlined broadcasts.

A program is a list of ``Assign`` statements (``symgrad.sweeps``). ``needed`` drops values
that nothing requested reads. ``plan_inplace`` decides, for matrix programs, which
statements may write into the buffer of one of their operands instead of allocating: the
operand must be *owned* (allocated by this program: never an input, never a view such as a
transpose or a broadcast, never a buffer something else views) and *dead* (read by nothing
after the statement, the returned results included), and it must already have the result's
shape. ``inline_broadcasts`` finds bias broadcasts that NumPy's broadcasting makes
unnecessary. These are what make generated network gradients as lean as careful
hand-written backprop.

>>> import sympy as sp
>>> from symgrad.sweeps import Assign
>>> a, b, t, u = sp.symbols("a b t u")
>>> prog = [Assign(t, a + b), Assign(u, sp.tanh(t))]
>>> plan = plan_inplace(prog, inputs={a, b}, results=[u], shape=lambda s: (3, 2))
>>> plan
{1: t}
"""

from __future__ import annotations

import sympy as sp

from . import ops_matrix as O

__all__ = ["needed", "plan_inplace", "inline_broadcasts", "VIEWS"]

VIEWS = (O.T, O.fill, O.bcast_rows, O.bcast_cols)  # results that share their argument's buffer


def needed(values, program, results) -> list:
    """The value assignments that ``program`` and ``results`` read, directly or not."""
    need = set()
    for e in list(results) + [a.expr for a in program]:
        need |= e.free_symbols
    keep = []
    for a in reversed(values):
        if a.target in need:
            need |= a.expr.free_symbols
            keep.append(a)
    return keep[::-1]


def _viewed(e) -> set:
    """Symbols whose buffer a view inside ``e`` shares (``ξ3.T``, a broadcast of ``b``)."""
    out = set()
    for v in e.atoms(*VIEWS):
        if v.args[0].is_Symbol:
            out.add(v.args[0])
    return out


def _candidates(e):
    """The operands a statement could overwrite with its result: the plain-symbol terms of a
    sum, the plain-symbol factors of a product, the argument of a one-argument function."""
    if e.is_Add or e.is_Mul:
        return [a for a in e.args if a.is_Symbol]
    if isinstance(e, sp.Function) and not isinstance(e, O.MatOp) and len(e.args) == 1 and e.args[0].is_Symbol:
        return [e.args[0]]
    return []


def plan_inplace(program, inputs, results, shape) -> dict:
    """{statement index: operand whose buffer the statement overwrites}.

    For a product ``g·p`` the entry may be a pair ``(g, c)``: ``p`` is computed in the buffer
    of ``c`` (owned, dead, occurring once in ``p``) and then multiplied into ``g``, so
    ``g *= 1 - a**2`` needs no temporary at all once ``a`` is no longer read.

    ``inputs`` are the program's arguments (never written), ``results`` the returned
    expressions (live to the end), ``shape(symbol)`` the symbol's shape (``()`` for scalars,
    which are never updated in place).
    """
    last = {}
    for k, a in enumerate(program):
        for s in a.expr.free_symbols:
            last[s] = k
    for r in results:
        for s in sp.sympify(r).free_symbols:
            last[s] = len(program)
    owned, viewed, plan = set(), set(), {}
    for k, a in enumerate(program):
        if isinstance(a.expr, VIEWS) or a.expr.is_Symbol:  # the target shares a buffer from now on
            viewed |= _viewed(a.expr) | ({a.expr} if a.expr.is_Symbol else set())
        target_shape = shape(a.target)

        def free(c):
            return c in owned and c not in viewed and last.get(c) == k and shape(c) == target_shape and target_shape

        choices = [c for c in _candidates(a.expr) if free(c)
                   and not (a.expr.is_Mul and sum(1 for f in a.expr.args if f == c) != 1)]
        pick = choices[0] if choices else None
        if a.expr.is_Mul:  # the other factors may be computed in a second dead buffer
            for c in choices:
                rest = a.expr / c
                d = next((d for d in sorted(rest.free_symbols, key=sp.default_sort_key)
                          if d != c and free(d) and _count(_unbare(rest, d), d) == 1), None)
                if d is not None:
                    pick = (c, d)
                    break
        if pick is not None:
            plan[k] = pick
            owned.difference_update(pick if isinstance(pick, tuple) else (pick,))
        fresh = not (a.expr.is_Symbol or isinstance(a.expr, VIEWS)) and bool(target_shape)
        if fresh and a.target not in inputs:
            owned.add(a.target)
    return plan


def _unbare(e, d):
    """A product without its bare factors ``d`` (they are multiplied in first, one at a time)."""
    return sp.Mul(*[f for f in sp.Mul.make_args(e) if f != d])


def _count(e, s) -> int:
    """How many times symbol ``s`` occurs in the tree of ``e`` (a small expression)."""
    if e == s:
        return 1
    return sum(_count(a, s) for a in e.args)


def inline_broadcasts(nodes, consumers, output) -> set:
    """Bias broadcasts ``bcast_rows(b, B)`` read only by sums that also have a full-shape operand:
    NumPy broadcasts the ``(1, n)`` row itself, so the ``(B, n)`` copy is never made."""
    out = set()
    for n in nodes:
        if not isinstance(n.expr, (O.bcast_rows, O.bcast_cols)) or n.symbol == output:
            continue
        users = consumers.get(n.symbol, [])
        if users and all(u.expr.is_Add and any(a != n.symbol and a not in out and not isinstance(a, sp.Number)
                                                 for a in u.expr.args if a.is_Symbol) for u in users):
            out.add(n.symbol)
    return out
