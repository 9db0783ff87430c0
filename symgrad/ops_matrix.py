"""The matrix operations of the IR: one SymPy function per operation, with its rules as data.

Each class is the whole entry of one operation: its result shape, its kind and its rules.
*Linear* operations (transpose, broadcasts, sums, trace) and *bilinear* ones (matrix
product, Frobenius product) state only their transpose, ``vjp``; their tangent rule is the
operation applied to the tangents (JAX's ``deflinear``), derived once in ``jvp`` below.
*Custom* operations (row-wise log-sum-exp and softmax) state both. Every rule returns an IR
expression built from registered operations (these and elementwise SymPy functions), never
source text, so a derivative program can be printed for any array library and swept again.
How each operation prints is the printer's business (``symgrad.printing``).

>>> import sympy as sp
>>> X, W, g = sp.symbols("X W g")
>>> mm.vjp((X, W), 1, g, None, None)
X.T@g
>>> jvp(mm(X, W), {X: sp.Symbol("X_dot")}, None)
X_dot@W
"""

from __future__ import annotations

import sympy as sp

__all__ = ["MatOp", "mm", "T", "bcast_rows", "bcast_cols", "colsum", "rowsum", "sumall", "fill", "trace",
           "frob", "ones", "zeros", "eye", "lse_rows", "softmax_rows", "MATRIX_OPS", "jvp", "vjp",
           "shape_of", "broadcast"]


class MatOp(sp.Function):
    """Base of the matrix operations. ``kind`` is "linear", "bilinear", "custom" or "constant";
    ``linear_args`` are the positions of the array arguments (the others are static sizes)."""

    kind = "linear"
    linear_args = (0,)

    @classmethod
    def shape(cls, args, shapes):  # pragma: no cover - every operation states its own
        raise NotImplementedError

    @classmethod
    def vjp(cls, args, i, g, out, shapes):  # pragma: no cover
        raise NotImplementedError

    def _sympystr(self, printer):
        return "%s(%s)" % (type(self).__name__, ", ".join(printer._print(a) for a in self.args))


class mm(MatOp):
    """Matrix product ``a @ b``."""

    nargs = 2
    kind = "bilinear"
    linear_args = (0, 1)

    @classmethod
    def shape(cls, args, shapes):
        return (shapes(args[0])[0], shapes(args[1])[1])

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        a, b = args
        return mm(g, T(b)) if i == 0 else mm(T(a), g)

    def _sympystr(self, printer):
        return "%s@%s" % tuple(printer.parenthesize(a, 60) for a in self.args)


class T(MatOp):
    """Transpose (a view, never a copy)."""

    nargs = 1

    @classmethod
    def eval(cls, a):
        if isinstance(a, T):
            return a.args[0]
        return None

    @classmethod
    def shape(cls, args, shapes):
        r, c = shapes(args[0])
        return (c, r)

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        return T(g)

    def _sympystr(self, printer):
        return "%s.T" % printer.parenthesize(self.args[0], 1000, strict=True)


class bcast_rows(MatOp):
    """A (1, c) row repeated over n rows (a bias added to every sample)."""

    nargs = 2

    @classmethod
    def shape(cls, args, shapes):
        return (args[1], shapes(args[0])[1])

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        return colsum(g)


class bcast_cols(MatOp):
    """An (r, 1) column repeated over n columns."""

    nargs = 2

    @classmethod
    def shape(cls, args, shapes):
        return (shapes(args[0])[0], args[1])

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        return rowsum(g)


class colsum(MatOp):
    """The (1, c) row of column sums."""

    nargs = 1

    @classmethod
    def shape(cls, args, shapes):
        return (sp.S.One, shapes(args[0])[1])

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        return bcast_rows(g, shapes(args[0])[0])


class rowsum(MatOp):
    """The (r, 1) column of row sums."""

    nargs = 1

    @classmethod
    def shape(cls, args, shapes):
        return (shapes(args[0])[0], sp.S.One)

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        return bcast_cols(g, shapes(args[0])[1])


class sumall(MatOp):
    """The sum of all entries, a scalar."""

    nargs = 1

    @classmethod
    def shape(cls, args, shapes):
        return ()

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        return fill(g, *shapes(args[0]))


class fill(MatOp):
    """A scalar repeated into an (r, c) matrix (a broadcast view)."""

    nargs = 3

    @classmethod
    def shape(cls, args, shapes):
        return (args[1], args[2])

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        return sumall(g)


class trace(MatOp):
    """The trace of a square matrix."""

    nargs = 1

    @classmethod
    def shape(cls, args, shapes):
        return ()

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        return g * eye(shapes(args[0])[0])


class eye(MatOp):
    """The n × n identity (a constant)."""

    nargs = 1
    kind = "constant"
    linear_args = ()

    @classmethod
    def shape(cls, args, shapes):
        return (args[0], args[0])


class ones(MatOp):
    """The r × c matrix of ones (a constant)."""

    nargs = 2
    kind = "constant"
    linear_args = ()

    @classmethod
    def shape(cls, args, shapes):
        return (args[0], args[1])


class zeros(ones):
    """The r × c zero matrix (a constant)."""


class frob(MatOp):
    """The Frobenius product Σ a∘b = tr(aᵀb), a scalar."""

    nargs = 2
    kind = "bilinear"
    linear_args = (0, 1)

    @classmethod
    def shape(cls, args, shapes):
        return ()

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        return g * args[1 - i]


class lse_rows(MatOp):
    """Row-wise log-sum-exp, max-shifted: m + log Σ exp(z − m), an (r, 1) column."""

    nargs = 1
    kind = "custom"

    @classmethod
    def shape(cls, args, shapes):
        return (shapes(args[0])[0], sp.S.One)

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        return g * sp.exp(args[0] - out)  # the softmax weights times the row's adjoint

    @classmethod
    def tangent(cls, args, dots, out):
        return rowsum(sp.exp(args[0] - out) * dots[0])


class softmax_rows(MatOp):
    """Row-wise softmax, max-shifted."""

    nargs = 1
    kind = "custom"

    @classmethod
    def shape(cls, args, shapes):
        return shapes(args[0])

    @classmethod
    def vjp(cls, args, i, g, out, shapes):
        return out * (g - rowsum(g * out))

    @classmethod
    def tangent(cls, args, dots, out):
        return out * (dots[0] - rowsum(dots[0] * out))


MATRIX_OPS = (mm, T, bcast_rows, bcast_cols, colsum, rowsum, sumall, fill, trace, frob, eye, ones, zeros,
              lse_rows, softmax_rows)


def vjp(expr, i, g, out, shapes):
    """The contribution of node ``expr``'s adjoint ``g`` to the adjoint of its argument ``i``."""
    return type(expr).vjp(expr.args, i, g, out, shapes)


def jvp(expr, dots: dict, out):
    """The tangent of node ``expr`` from its arguments' tangents ``dots`` ({arg: tangent}; a
    missing one is zero), or None when it is zero. A linear operation applied to the tangents,
    a bilinear one once per argument (product rule); custom ones state their own."""
    op = type(expr)
    args = expr.args
    if op.kind == "constant":
        return None
    if op.kind == "custom":
        d = dots.get(args[0])
        return None if d is None else op.tangent(args, [d], out)
    terms = []
    for i in op.linear_args:
        d = dots.get(args[i])
        if d is not None:
            terms.append(op(*[d if j == i else a for j, a in enumerate(args)]))
    return sp.Add(*terms) if terms else None


def broadcast(*shapes_) -> tuple:
    """NumPy's broadcast of (possibly symbolic) 2-D or scalar shapes."""
    out = ()
    for s in shapes_:
        if not s:
            continue
        if not out:
            out = tuple(s)
            continue
        dims = []
        for p, q in zip(out, s):
            if p == q or q == 1:
                dims.append(p)
            elif p == 1:
                dims.append(q)
            else:
                raise ValueError("shapes %s and %s do not broadcast" % (out, s))
        out = tuple(dims)
    return out


def shape_of(e, shapes) -> tuple:
    """The shape of IR expression ``e``; ``shapes(symbol)`` gives the shape of a symbol."""
    if e.is_Symbol:
        return shapes(e)
    if e.is_Number or e.is_NumberSymbol or not e.args:
        return ()
    if isinstance(e, MatOp):
        return type(e).shape(e.args, lambda a: shape_of(a, shapes))
    if isinstance(e, sp.Piecewise):
        return broadcast(*[shape_of(p.expr, shapes) for p in e.args], *[shape_of(p.cond, shapes) for p in e.args])
    if isinstance(e, sp.logic.boolalg.Boolean) and not isinstance(e, sp.Expr):
        return broadcast(*[shape_of(a, shapes) for a in e.args if isinstance(a, sp.Expr)])
    return broadcast(*[shape_of(a, shapes) for a in e.args if isinstance(a, (sp.Expr, sp.logic.boolalg.Boolean))])
