"""The stacked programs of ``symgrad.hessian_programs``: an axis of k directions in the middle,
``(rows, k, cols)``. Printing-only marker nodes (unit-direction slices, lifts, diagonal
entries), the helpers the printed programs call, and ``StackedPrinter``, which prints a matrix
operation with one stacked operand as one operation over reshaped views.
"""

from __future__ import annotations

import sympy as sp

from . import ops_matrix as O
from .errors import UnsupportedError
from .printing import CodePrinter

__all__ = ["StackedPrinter", "HELPERS_STACKED", "Marker", "Lift", "UnitRight", "UnitLeft", "Diag", "DiagMMR",
           "DiagMML", "DiagUnit", "DiagUnitLeft", "DiagSum", "DiagScalar", "DiagRows", "DiagOnes", "DiagGather"]


class Marker(O.MatOp):
    """Printing-only nodes of the stacked programs (never differentiated)."""

    kind = "constant"
    linear_args = ()

    @classmethod
    def shape(cls, args, shapes):
        return shapes(args[0])


class Lift(Marker):
    """An unstacked matrix operand of an elementwise operation on stacked ones: ``x[:, None, :]``."""

    nargs = 1


class UnitRight(Marker):
    """``A @ p_dot`` where p_dot is the block of unit directions: a slice of A, no product."""

    nargs = 2

    @classmethod
    def shape(cls, args, shapes):
        return (shapes(args[0])[0], shapes(args[1])[1])


class UnitLeft(Marker):
    """``p_dot @ B`` where p_dot is the block of unit directions: rows of B, no product."""

    nargs = 2

    @classmethod
    def shape(cls, args, shapes):
        return (shapes(args[0])[0], shapes(args[1])[1])


class Diag(Marker):
    """The diagonal entries (rows r0..r1 of p, shaped like them) of a stacked expression."""


class DiagMMR(Diag):
    """diag of ``A @ t`` (t stacked): ``einsum('am,mabb->ab', A[r0:r1], t)``, its diagonal entries only."""

    nargs = 2


class DiagMML(Diag):
    """diag of ``t @ B`` (t stacked): ``einsum('aabm,mb->ab', t[r0:r1], B)``."""

    nargs = 2


class DiagUnit(Diag):
    """diag of ``A @ (UnitRight(B)·c)``: ``((A[r0:r1].T ∘ B[:, r0:r1]).T @ c)``, no stacked array."""

    nargs = 3


class DiagUnitLeft(Diag):
    """diag of ``(UnitLeft(B)·c) @ A``: ``c[r0:r1] @ (Bᵀ ∘ A)``, no stacked array."""

    nargs = 3  # (c, B, A)


class DiagSum(Diag):
    """diag of a sum of a stacked t over rows (colsum, p a row), columns (rowsum, p a column)
    or both (sumall, p a scalar): the entries the diagonal needs, summed."""

    nargs = 2  # (t, which: 0 colsum, 1 rowsum, 2 sumall)


class DiagScalar(Diag):
    """diag for a scalar parameter: its one direction's (1, 1, 1) result."""

    nargs = 1


class DiagRows(Diag):
    """An unstacked factor with p's rows, at the rows of this block: ``c[r0:r1]``."""

    nargs = 1


class DiagOnes(Diag):
    """diag of the unit directions themselves: ones."""

    nargs = 1


class DiagGather(Diag):
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
