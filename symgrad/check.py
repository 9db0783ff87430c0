"""``check_grads``: compiled derivatives against sympy.diff, finite differences and each other.

Three checks, as autograd and JAX test their gradients:
(a) reverse-mode gradient vs ``sympy.diff`` (exact oracle, tight tolerance), taken once per
operation in an iterative walk (``oracle.sympy_gradient``), so deep expressions never meet
the recursion limit;
(b) the directional derivative along a seeded random direction vs central differences, the
direction scaled to the point (each coordinate by max(|x_i|, 1)) and the step chosen among
ε^(1/3)·4^-k by the smallest estimated error, skipping steps that leave the domain
(``numdiff``), with a tolerance from that error and the magnitude of f;
(c) forward vs reverse mode: ⟨u, J v⟩ = ⟨Jᵀ u, v⟩, relative to Σ|∂f/∂x_i · v_i|.

At a kink (|w| or relu at 0) the one-sided derivatives differ; a derivative between them
passes with a note (``report=True`` returns it) instead of failing. A failure names the
parameters, the direction, and the node whose local derivative is wrong (``blame``). For a
user ``Function`` the sympy.diff check reuses its ``fdiff`` and is not independent; the
report and every failure message say which checks were (``checkreport``). The checks
themselves live in ``checkruns``.

Networks (matrix expressions) get the same three checks. Their oracle never touches
symgrad's compiler: every matrix becomes an explicit ``sp.Matrix`` (the parameters' entries
fresh real symbols, the data its numbers), the expression is multiplied out into one scalar
SymPy expression in those symbols (``explicit``), and SymPy's derivatives of its operations
give the gradient by each entry. It grows with the number of entries, so it runs only while
the parameters have at most ``ORACLE_ENTRIES`` entries in all; beyond that the two numerical
checks remain.

>>> import sympy as sp
>>> x, y, w = sp.symbols("x y w")
>>> check_grads(-y*sp.log(1/(1 + sp.exp(-w*x))), wrt=[w], at={x: 3, y: 1, w: 3})
>>> import numpy as np
>>> X, v = sp.MatrixSymbol("X", 3, 2), sp.MatrixSymbol("v", 2, 1)
>>> check_grads(sp.Trace(sp.OneMatrix(1, 3) * (X * v).applyfunc(sp.tanh)), wrt=[v],
...             at={X: np.arange(6.0).reshape(3, 2) / 6, v: np.array([[0.5], [-1.0]])})
"""

from __future__ import annotations

import sys

import numpy as np
import sympy as sp

from .checkreport import Check, GradCheck, GradientMismatch, depth, numeric_values
from .checkruns import Context, fd_check, fwd_rev_check, sympy_check
from .compiled import CompiledFunction, as_symbols, compile
from .errors import InputError, UnsupportedError
from .matrix import is_matrix_expr, matrix_leaves
from .oracle import postorder, explicit

__all__ = ["GradientMismatch", "GradCheck", "check_grads", "numeric_values", "explicit", "ORACLE_ENTRIES"]

ORACLE_ENTRIES = 64  # networks: the sympy.diff oracle runs while the parameters have at most this many entries


def _values_for(f, at) -> dict:
    """{name: value} for every input of ``f`` from ``at``; values of other symbols are ignored."""
    if not isinstance(at, dict):
        raise InputError("at must be a dict {symbol or name: value}, got %s" % type(at).__name__)
    vals = numeric_values(at)
    missing = [n for n in f.names if n not in vals]
    if missing:
        raise InputError("check_grads needs a value for %s in at" % ", ".join(repr(m) for m in missing))
    return {n: vals[n] for n in f.names}


def _user_functions(expr) -> list:
    """The user ``Function`` classes in ``expr``: sympy.diff differentiates them by their own fdiff."""
    found = {type(e).__name__ for e in postorder(expr, lambda e: e.args)
             if isinstance(e, sp.Function) and not type(e).__module__.startswith(("sympy", "symgrad"))}
    return sorted(found)


def check_grads(expr, wrt, at, args=None, rtol=1e-9, atol=1e-12, fd_rtol=1e-5, eps=None, seed=0,
                modes=("sympy", "fd", "fwd-rev"), fn: CompiledFunction | None = None, report: bool = False,
                order: int = 1):
    """Raise GradientMismatch unless the compiled derivatives of ``expr`` pass the checks in ``modes``.

    ``at`` maps every symbol (or its name) to a number or array (a batch). ``fn`` lets a test
    pass an already compiled function (e.g. one built with a deliberately wrong rule).
    Returns None on success, or with ``report=True`` a ``GradCheck`` saying which checks ran,
    which were independent of symgrad's rules, and any kink notes. ``eps`` is the largest
    relative finite-difference step (default ε^(1/3) ≈ 6e-6; smaller ones are tried too).
    ``order=2`` also checks Hessian-vector products (``symgrad.check2.check_second``: central
    differences of the gradient, and sympy.hessian for scalar expressions).

    For a network (a matrix expression, ``symgrad.matrix.is_matrix_expr``) ``at`` maps its
    MatrixSymbols (or their names) to 2-D arrays and its scalar symbols to numbers; the
    "sympy" check then runs on explicit matrices (see the module docstring) and is skipped,
    without error, when the parameters have more than ``ORACLE_ENTRIES`` entries. A network
    whose value is a matrix (not 1×1) is checked through the sum of its entries: it is
    compiled with ``reduce="sum"`` given explicitly (``grad`` refuses such an output otherwise).

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> check_grads(sp.tanh(x)**2, wrt=[x], at={x: 0.3})
    >>> r = check_grads(sp.Max(x, 0), wrt=[x], at={x: 0.0}, report=True)
    >>> print(r)  # doctest: +ELLIPSIS
    check_grads: sympy kink (independent); fd kink (independent); fwd-rev passed (consistency only)
      fwd-rev: both programs use symgrad's rules
      kink: one-sided derivatives differ (left 0, right 1) along x; symgrad uses the min-norm subgradient (kink convention 'min-norm'): 0; sympy.diff gives 0.5
      kink: one-sided derivatives differ (left 0, right 0.12...) along the direction v; ...
    >>> r.independent
    ('sympy', 'fd')
    """
    expr = sp.sympify(expr)
    network = is_matrix_expr(expr)
    if network:
        mats, scalars, _ = matrix_leaves(expr)
        wrt = as_symbols(wrt, "wrt", mats + scalars)
    else:
        wrt = as_symbols(wrt, "wrt", fn.params if fn is not None else _symbols(expr))
    f = fn or _compile(expr, wrt, args)
    vals = _values_for(f, at)
    ctx = Context(expr, f, wrt, vals, _where(at), network, seed)
    users = _user_functions(expr)
    plan = {"sympy": not users, "fd": True, "fwd-rev": False}
    notes = {"sympy": "it reuses the fdiff of %s" % ", ".join(users) if users else "",
             "fwd-rev": "both programs use symgrad's rules"}
    ctx.result = GradCheck(direction=ctx.dirs)
    ctx.plan = [Check(m, "planned", plan[m], notes.get(m, "")) for m in ("sympy", "fd", "fwd-rev") if m in modes]
    if "sympy" in modes:
        sympy_check(ctx, rtol, atol, fd_rtol, ORACLE_ENTRIES)
    if "fd" in modes:
        fd_check(ctx, fd_rtol, eps)
    if "fwd-rev" in modes:
        fwd_rev_check(ctx, rtol, atol)
    if order not in (1, 2):
        raise InputError("order must be 1 or 2, got %r" % (order,))
    if order == 2:
        from .check2 import check_second
        check_second(expr, wrt, at, args=args, seed=seed, f=f)
    return ctx.result if report else None


DEEP_LIMIT = 10000  # the most frames the fallback in _compile allows


def _compile(expr, wrt, args):
    """``compile`` with ``reduce="sum"`` given (a matrix-valued output is checked through its
    sum); where a part of it still recurses on a very deep tree (a stability rewrite asks SymPy
    for ``free_symbols``, which recurses), once more with Python's recursion limit raised to 4
    frames per level of the tree plus 1000, at most DEEP_LIMIT, and restored after."""
    try:
        return compile(expr, wrt=wrt, args=args, reduce="sum")
    except RecursionError:
        pass
    old = sys.getrecursionlimit()
    levels = depth(expr)
    sys.setrecursionlimit(min(max(old, 4 * levels + 1000), DEEP_LIMIT))
    try:
        return compile(expr, wrt=wrt, args=args, reduce="sum")
    except RecursionError:
        raise UnsupportedError("the expression is %d levels deep, too deep to compile within %d frames of "
                               "recursion" % (levels, sys.getrecursionlimit())) from None
    finally:
        sys.setrecursionlimit(old)


def _symbols(expr):
    return sorted({e for e in postorder(expr, lambda e: e.args) if isinstance(e, sp.Symbol)}, key=str)


def _where(at) -> str:
    """The point, readably: numbers as they are, arrays by their shape."""
    parts = []
    for k, v in at.items():
        name = k.name if hasattr(k, "name") else str(k)
        shape = np.shape(v) if not isinstance(v, sp.MatrixBase) else v.shape
        parts.append("%s: %s" % (name, "%d×%d array" % tuple(shape) if len(shape) == 2 else
                                 ("array of shape %s" % (shape,) if shape else _num_text(v))))
    return "{%s}" % ", ".join(parts)


def _num_text(v) -> str:
    try:
        return repr(float(v))
    except (TypeError, ValueError):
        return sp.sstr(v)
