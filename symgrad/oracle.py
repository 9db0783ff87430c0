"""The exact oracle for networks: a matrix expression multiplied out on explicit SymPy matrices
and differentiated with SymPy's own rules, independent of symgrad's registry and compiler.

``explicit`` spells every supported matrix operation out entry by entry; ``network_oracle``
turns the parameters' entries into symbols and returns the gradient ``sympy.diff`` gives,
evaluated in floating point (``sympy_gradient`` chains SymPy's derivative of each distinct
operation, which is the same number as whole-tree ``sympy.diff`` at a fraction of the cost).

>>> import sympy as sp
>>> A = sp.MatrixSymbol("A", 2, 2)
>>> explicit(sp.Trace(A.T*A), {A: sp.Matrix([[1, 2], [3, 4]])})
30
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from .errors import InputError, UnsupportedError
from .matrix import check_shapes
from .printing import HAVE_SCIPY

__all__ = ["explicit", "network_oracle", "sympy_gradient"]


def postorder(root, kids):
    """Each distinct subexpression of ``root`` once, after its ``kids(e)``, without recursion."""
    done, stack = set(), [root]
    while stack:
        e = stack[-1]
        if e in done:
            stack.pop()
            continue
        todo = [k for k in kids(e) if k not in done]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        done.add(e)
        yield e


def explicit(expr, values: dict, sizes: dict | None = None):
    """``expr`` multiplied out on explicit SymPy matrices: an ``sp.Matrix`` for a matrix-valued
    expression, a scalar SymPy expression otherwise.

    ``values`` maps each MatrixSymbol (or its name) to an ``sp.Matrix`` (or anything
    ``sp.Matrix`` accepts) and scalar symbols to SymPy values; entries may be symbols.
    ``sizes`` maps dimension symbols to integers. Every operation symgrad compiles is
    spelled out: products, sums, transposes, traces, powers, Hadamard products and powers,
    ``applyfunc`` and the ones/zero/identity matrices; each distinct subexpression is
    evaluated once and the walk is iterative, so no recursion limit is met.

    >>> import sympy as sp
    >>> n, a = sp.Symbol("n", integer=True, positive=True), sp.Symbol("a")
    >>> W = sp.MatrixSymbol("W", n, 2)
    >>> explicit(sp.Trace(sp.OneMatrix(1, n) * (a * W).applyfunc(sp.exp) * sp.OneMatrix(2, 1)),
    ...          {W: [[0, 1]], a: sp.Symbol("s")}, {n: 1})
    exp(s) + 1
    """
    sizes = {sp.sympify(k): sp.Integer(v) for k, v in (sizes or {}).items()}
    mats, scalars = {}, dict(sizes)
    for k, v in values.items():
        if isinstance(k, sp.MatrixSymbol) or isinstance(v, sp.MatrixBase) or np.ndim(v) == 2:
            mats[k.name if isinstance(k, sp.MatrixSymbol) else str(k)] = sp.Matrix(v)
        else:
            scalars[sp.Symbol(k) if isinstance(k, str) else k] = sp.sympify(v)
    by_name = {s.name: v for s, v in scalars.items()}

    def size(d):
        d = sp.sympify(d).xreplace(sizes)
        if not d.is_Integer:
            raise InputError("the size %s is not known; give a value for each of its symbols" % sp.sstr(d))
        return int(d)

    def kids(e):
        if isinstance(e, (sp.MatrixSymbol, sp.OneMatrix, sp.ZeroMatrix, sp.Identity)) or not e.args:
            return ()
        if isinstance(e, ElementwiseApplyFunction):
            return (e.expr, e.function.expr)
        return e.args

    def combine(e, a):
        if isinstance(e, sp.MatrixSymbol):
            if e.name not in mats:
                raise InputError("no value for the matrix %s" % e.name)
            m = mats[e.name]
            if m.shape != (size(e.rows), size(e.cols)):
                raise InputError("%s has shape %s but the expression needs %s" % (e.name, m.shape, e.shape))
            return m
        if isinstance(e, sp.OneMatrix):
            return sp.ones(size(e.rows), size(e.cols))
        if isinstance(e, sp.ZeroMatrix):
            return sp.zeros(size(e.rows), size(e.cols))
        if isinstance(e, sp.Identity):
            return sp.eye(size(e.rows))
        if isinstance(e, sp.MatAdd):
            return functools.reduce(lambda p, q: p + q, a)
        if isinstance(e, sp.MatMul):
            return functools.reduce(lambda p, q: p * q, a)
        if isinstance(e, sp.MatPow):  # repeated products (Matrix.__pow__ would go through a Jordan form)
            k = e.exp
            if not (k.is_Integer and k >= 1):
                raise UnsupportedError("cannot spell out the matrix power %s" % sp.sstr(e)[:80])
            return functools.reduce(lambda p, q: p * q, [a[0]] * int(k))
        if isinstance(e, sp.Transpose):
            return a[0].T
        if isinstance(e, sp.Trace):
            return a[0].trace()
        if isinstance(e, sp.HadamardProduct):
            return functools.reduce(lambda p, q: p.multiply_elementwise(q), a)
        if isinstance(e, sp.HadamardPower):
            base, k = a
            return base.applyfunc(lambda t: t ** k)
        if isinstance(e, ElementwiseApplyFunction):
            m, body = a
            var = e.function.variables[0]
            return m.applyfunc(lambda t: body.xreplace({var: t}))
        if isinstance(e, sp.MatrixExpr):
            raise UnsupportedError("cannot spell out the matrix operation %s (%s)" % (sp.sstr(e)[:80], type(e).__name__))
        if e.is_Symbol:
            if e in scalars:
                return scalars[e]
            return by_name.get(e.name, e) if not isinstance(e, sp.Dummy) else e
        if not e.args:
            return e
        return e.func(*a)

    memo: dict = {}
    for e in postorder(sp.sympify(expr), kids):
        memo[e] = combine(e, [memo[k] for k in kids(e)])
    return memo[sp.sympify(expr)]


def network_oracle(expr, f, wrt, vals) -> dict:
    """{parameter name: the gradient by ``sympy.diff``}, evaluated in floating point.

    Every parameter entry is a fresh real symbol; so is every other entry of the data except
    exact zeros and ones (one-hot targets, masks), which stay integers. ``explicit``
    multiplies the matrices out into one scalar expression in these symbols (no Float enters
    SymPy; nothing is simplified on the way) and ``_sympy_gradient`` differentiates it.
    """
    sizes = check_shapes(f.params, vals)
    wset = set(wrt)
    values, fresh, point, consts, cvals = {}, [], [], [], []

    def entry(name, v, i, j, param):
        v = float(v)
        if not param and v in (0.0, 1.0):
            return sp.Integer(int(v))
        s = sp.Dummy("%s_%d_%d" % (name, i, j), real=True)  # never equal to a user's symbol
        (fresh if param else consts).append(s)
        (point if param else cvals).append(v)
        return s

    for p in f.params:
        v, param = vals[p.name], p in wset
        if isinstance(p, sp.MatrixSymbol):
            r, c = np.shape(v)
            values[p] = sp.Matrix(r, c, lambda i, j: entry(p.name, v[i, j], i, j, param))
        else:
            values[p] = entry(p.name, v, 0, 0, param)
    with sp.evaluate(False):  # no simplification on construction: the tree as written, built fast
        out = explicit(expr, values, sizes)
        if isinstance(out, sp.MatrixBase):  # a matrix-valued expression: its entries summed (or averaged)
            n = len(out)
            out = sp.Add(*out) / (n if f.reduce == "mean" and n > 1 else 1)
    at = dict(zip(fresh, point))
    at.update(zip(consts, cvals))
    flat = sympy_gradient(out, fresh, at)
    refs, k = {}, 0
    for p in wrt:
        shape = np.shape(vals[p.name])
        m = int(np.prod(shape)) if shape else 1
        refs[p.name] = np.reshape(flat[k:k + m], shape) if shape else float(flat[k])
        k += m
    return refs


def sympy_gradient(expr, syms, at) -> np.ndarray:
    """The gradient of the scalar SymPy expression ``expr`` by ``syms`` at ``at`` ({symbol: value}).

    ``sympy.diff(expr, s)`` for every entry s is exact but SymPy rebuilds the whole tree once
    per symbol (minutes for a batch of 32), and it recurses: a tree a few hundred levels deep
    meets Python's recursion limit. The same derivative is taken here with SymPy's own rules,
    once per operation, in an iterative post-order walk: each distinct subexpression
    ``F(a1, …, an)`` gets its value and its gradient Σ ∂F/∂ai · ∇ai, where ∂F/∂ai is
    ``sympy.diff`` of F on placeholder arguments (lambdified once per kind of operation).
    Nothing of symgrad's rules or compiler is involved; a Piecewise follows the branch its
    conditions choose. Values may be arrays (a batch): the result then has shape
    (len(syms),) + the broadcast shape of the values, one derivative per batch entry.

    >>> import sympy as sp, numpy as np
    >>> x, w = sp.symbols("x w")
    >>> sympy_gradient(sp.sin(w * x), [w], {w: 0.0, x: np.array([1.0, 2.0])}).tolist()
    [[1.0, 2.0]]
    """
    n = len(syms)
    index = {s: i for i, s in enumerate(syms)}
    shape = np.broadcast_shapes(*[np.shape(v) for v in at.values()]) if at else ()
    zero = np.zeros((n,) + shape)
    rules: dict = {}
    modules = ["numpy", "scipy"] if HAVE_SCIPY else "numpy"

    def rule(e):
        key = (e.func, len(e.args))
        if key not in rules:
            xs = [sp.Symbol("_x%d" % i, real=True) for i in range(len(e.args))]
            template = e.func(*xs)
            if not isinstance(e, sp.Expr):  # a condition: its truth value only
                rules[key] = (sp.lambdify(xs, template, modules), None)
                return rules[key]
            parts = [sp.diff(template, x).replace(lambda t: isinstance(t, sp.DiracDelta), lambda t: sp.S.Zero)
                     for x in xs]
            bad = [p for p in parts if p.has(sp.Derivative, sp.Subs)]
            if bad:
                raise UnsupportedError("sympy.diff cannot differentiate %s; check this expression with "
                                       "modes=('fd', 'fwd-rev')" % type(e).__name__)
            rules[key] = (sp.lambdify(xs, template, modules), [sp.lambdify(xs, p, modules) for p in parts])
        return rules[key]

    def kids(e):
        return () if not e.args or e.is_Atom else e.args

    def num(v):
        v = np.asarray(v)
        return np.real(v).astype(float) if v.dtype.kind in "fcib" else v.astype(float)

    memo: dict = {}  # subexpression -> (value, gradient or None for a condition)
    with np.errstate(all="ignore"):
        for e in postorder(expr, kids):
            if e in index:
                g = zero.copy()
                g[index[e]] = 1.0
                memo[e] = (num(at[e]), g)
            elif e.is_Symbol:
                if e not in at:
                    raise InputError("no value for %s" % e)
                memo[e] = (num(at[e]), zero)
            elif e.is_Number or e.is_NumberSymbol:
                memo[e] = (np.float64(float(e)), zero)
            elif isinstance(e, (sp.logic.boolalg.BooleanAtom,)):
                memo[e] = (np.asarray(bool(e)), None)
            elif isinstance(e, sp.Piecewise):  # the branch whose condition holds first, entry by entry
                pairs = [memo[pair] for pair in e.args]
                conds = [np.broadcast_to(np.asarray(holds, bool), shape) for _, holds in pairs]
                vals = [np.broadcast_to(v, shape) for (v, _), _ in pairs]
                grads = [np.broadcast_to(g, zero.shape) for (_, g), _ in pairs]
                memo[e] = (np.select(conds, vals, np.nan), np.select([c[None] for c in conds], grads, np.nan))
            elif isinstance(e, ExprCondPair):  # (the branch's value and gradient, where it is taken)
                memo[e] = (memo[e.expr], np.asarray(memo[e.cond][0], bool))
            elif e.is_Add:  # the sum rule
                args = [memo[a] for a in e.args]
                memo[e] = (sum(a[0] for a in args), sum(a[1] for a in args))
            elif e.is_Mul:  # the product rule: ∂/∂ai = the product of the other factors
                args = [memo[a] for a in e.args]
                xs = [a[0] for a in args]
                left, right = [np.float64(1.0)], [np.float64(1.0)]
                for v in xs[:-1]:
                    left.append(left[-1] * v)
                for v in xs[:0:-1]:
                    right.append(right[-1] * v)
                grad = zero.copy()
                for l, r, (_, ga) in zip(left, right[::-1], args):
                    if ga.any():
                        grad = grad + (l * r) * ga
                memo[e] = (left[-1] * xs[-1], grad)
            else:
                args = [memo[a] for a in e.args]
                value_of, partials_of = rule(e)
                xs = [a[0] for a in args]
                value = num(value_of(*xs))
                if partials_of is None:
                    memo[e] = (np.asarray(value, bool), None)
                    continue
                grad = zero.copy()
                for p, (_, ga) in zip(partials_of, args):
                    if ga is not None and ga.any():
                        grad = grad + num(p(*xs)) * ga
                memo[e] = (value, grad)
    return np.broadcast_to(memo[expr][1], zero.shape).copy()
