"""Matrix-level ξ graphs: networks written as plain SymPy matrix expressions, compiled to NumPy.

Each node is one matrix operation (matrix product, bias broadcast, elementwise function,
Hadamard product/power, transpose, trace, row/column sums, row-wise log-sum-exp) or a
scalar operation on their results. Every operation carries its value, its vector-Jacobian
product (reverse mode) and its Jacobian-vector product (forward mode) in ``symgrad.matrules.OPS``, one entry
each; an elementwise node gets its scalar derivative from the scalar rule table.

SymPy pushes transposes inward (``(Z - Y).T`` becomes ``W2.T*tanh(...).T - Y.T``), which
would compute the network twice; the graph undoes that: a subexpression whose transpose has
fewer transposes in it is built as ``transpose(ξ)`` of that, so both uses share one chain.
``log((exp(Z))·1)`` (row-wise log-sum-exp, as in a naive softmax cross-entropy) becomes one
max-shifted node whose adjoint is the softmax.

>>> import sympy as sp
>>> B = sp.Symbol("B", integer=True, positive=True)
>>> X, W, b = sp.MatrixSymbol("X", B, 3), sp.MatrixSymbol("W", 3, 2), sp.MatrixSymbol("b", 1, 2)
>>> g = decompose_matrix(sp.Trace((X*W + sp.OneMatrix(B, 1)*b).applyfunc(sp.tanh)*sp.OneMatrix(2, 1)*sp.OneMatrix(1, 1)))
>>> for n in g.nodes: print(n)
ξ1 = X@W
ξ2 = broadcast_rows(b)
ξ3 = ξ1 + ξ2
ξ4 = tanh(ξ3)
ξ5 = trace_matmul(ξ4, 1)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from .errors import InputError, UnsupportedError
from .graph import Xi, _split, build_postorder

__all__ = ["MNode", "MGraph", "decompose_matrix", "is_matrix_expr", "matrix_leaves", "check_shapes"]

_D = sp.Dummy("d", real=True)  # the variable of every elementwise function, real as in networks
_OUT = sp.Dummy("out")


def is_matrix_expr(expr) -> bool:
    """True when ``expr`` is or contains a SymPy matrix expression (each subexpression visited once)."""
    seen, stack = set(), [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, sp.MatrixExpr):
            return True
        if e not in seen and e.args:
            seen.add(e)
            stack.extend(e.args)
    return False


def matrix_leaves(expr) -> tuple:
    """(matrix symbols, scalar symbols, dimension symbols) of a matrix expression, in first-seen order."""
    mats, scalars, seen, stack = {}, {}, set(), [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, sp.MatrixSymbol):
            mats.setdefault(e, None)
        elif isinstance(e, sp.Symbol):
            if not isinstance(e, sp.Dummy):  # Lambda variables of applyfunc are bound, not inputs
                scalars.setdefault(e, None)
        elif e not in seen and e.args:
            seen.add(e)
            stack.extend(reversed(e.args))
    dims = {d: None for m in mats for x in m.shape for d in sorted(x.free_symbols, key=lambda s: s.name)}
    return tuple(mats), tuple(s for s in scalars if s not in dims), tuple(dims)


@dataclass(frozen=True, slots=True)
class MNode:
    """``symbol = op(args)``; ``param`` holds static data (coefficients, the scalar function)."""

    symbol: Xi
    op: str
    args: tuple
    param: object
    shape: tuple  # () for a scalar
    source: sp.Basic

    @property
    def name(self):
        return "ξ%d" % self.symbol.index

    def __repr__(self):
        a = [sp.sstr(x) for x in self.args]
        if self.op == "matmul":
            return "%s = %s@%s" % (self.name, a[0], a[1])
        if self.op == "add":
            return "%s = %s" % (self.name, sp.sstr(sp.Add(*[c * sp.Symbol(s) for c, s in zip(self.param, a)]),
                                                   order="none"))
        if self.op == "elementwise":
            return "%s = %s" % (self.name, sp.sstr(self.param.xreplace({_D: self.args[0]})))
        if self.op == "scalar":
            return "%s = %s" % (self.name, sp.sstr(self.param, order="none"))
        return "%s = %s(%s)" % (self.name, self.op, ", ".join(a))


@dataclass(frozen=True, slots=True)
class MGraph:
    nodes: tuple
    output: sp.Basic
    leaves: tuple
    expr: sp.Basic

    def __str__(self):
        return "\n".join(repr(n) for n in self.nodes)


def _ones(e, rows=None, cols=None):
    return isinstance(e, sp.OneMatrix) and (rows is None or e.rows == rows) and (cols is None or e.cols == cols)


def _is_lse_rows(e):
    """log(exp(Z) · 1): the row-wise log-sum-exp written naively."""
    if not (isinstance(e, ElementwiseApplyFunction) and e.function(_D) == sp.log(_D)):
        return None
    inner = e.expr
    if isinstance(inner, sp.MatMul) and len(inner.args) == 2 and _ones(inner.args[1], cols=1):
        ex = inner.args[0]
        if isinstance(ex, ElementwiseApplyFunction) and ex.function(_D) == sp.exp(_D):
            return ex.expr
    return None


def _is_softmax_rows(e):
    """exp(Z) ∘ ((exp(Z)·1)^∘-1 · 1ᵀ): the row-wise softmax written naively (as symgrad.nn.softmax)."""
    if len(e.args) != 2:
        return None
    for ex, other in (e.args, e.args[::-1]):
        if not (isinstance(ex, ElementwiseApplyFunction) and ex.function(_D) == sp.exp(_D)):
            continue
        if isinstance(other, sp.MatMul) and len(other.args) == 2 and _ones(other.args[1], rows=1):
            inv = other.args[0]
            if isinstance(inv, sp.HadamardPower) and inv.exp == -1 and isinstance(inv.base, sp.MatMul) \
                    and inv.base.args == (ex, sp.OneMatrix(ex.shape[1], 1)):
                return ex.expr
    return None


class _Counter(dict):
    """Number of Transpose nodes in a matrix subexpression (memoised)."""

    def __missing__(self, e):
        n = int(isinstance(e, sp.Transpose)) + sum(self[a] for a in e.args if isinstance(a, sp.MatrixExpr))
        self[e] = n
        return n


def _split_matrix(e, ntrans):
    """(op, kids, param) for one matrix or scalar subexpression."""
    if isinstance(e, sp.MatrixExpr) and not isinstance(e, (sp.MatrixSymbol, sp.Transpose)):
        et = e.T
        if ntrans[et] < ntrans[e]:
            return "transpose", [et], None
    if isinstance(e, sp.Transpose):
        return "transpose", [e.arg], None
    z = _is_lse_rows(e)
    if z is not None:
        return "logsumexp_rows", [z], None
    if isinstance(e, ElementwiseApplyFunction):
        return "elementwise", [e.expr], e.function(_D)
    if isinstance(e, sp.MatMul):
        scalars = [a for a in e.args if not isinstance(a, sp.MatrixExpr)]
        mats = [a for a in e.args if isinstance(a, sp.MatrixExpr)]
        c = sp.Mul(*scalars)
        if c != 1:
            rest = mats[0] if len(mats) == 1 else sp.MatMul(*mats)
            if c.is_number or not (c.free_symbols - _dims(e)):
                return "add", [rest], (c,)
            return "scale", [c, rest], None
        if len(mats) > 2:
            k = _best_split(mats)
            return "matmul", [_product(mats[:k]), _product(mats[k:])], None
        a, b = mats
        if _ones(a, cols=1) and b.rows == 1:
            return "broadcast_rows", [b], a.rows
        if _ones(b, rows=1) and a.cols == 1:
            return "broadcast_cols", [a], b.cols
        if _ones(a, rows=1):
            return "colsum", [b], None
        if _ones(b, cols=1):
            return "rowsum", [a], None
        return "matmul", [a, b], None
    if isinstance(e, sp.MatAdd):
        coeffs, kids = [], []
        for t in e.args:
            c, rest = sp.S.One, t
            if isinstance(t, sp.MatMul):
                sc = [a for a in t.args if not isinstance(a, sp.MatrixExpr)]
                if sc and sp.Mul(*sc).is_number:
                    c = sp.Mul(*sc)
                    ms = [a for a in t.args if isinstance(a, sp.MatrixExpr)]
                    rest = ms[0] if len(ms) == 1 else sp.MatMul(*ms)
            coeffs.append(c)
            kids.append(rest)
        return "add", kids, tuple(coeffs)
    if isinstance(e, sp.HadamardProduct):
        z = _is_softmax_rows(e)
        if z is not None:
            return "softmax_rows", [z], None
        return "hadamard", list(e.args), None
    if isinstance(e, sp.HadamardPower):
        if not e.exp.is_number:
            raise UnsupportedError("HadamardPower with a non-constant exponent %s is not supported" % e.exp)
        return "hpow", [e.base], e.exp
    if isinstance(e, sp.Trace):
        m = e.arg
        mats = [a for a in m.args if isinstance(a, sp.MatrixExpr)] if isinstance(m, sp.MatMul) else []
        if len(mats) > 2 and len(mats) == len(m.args):
            for k in range(1, len(mats)):
                left, right = _product(mats[:k]), _product(mats[k:])
                if left.T == right:  # tr(QᵀQ), flattened by SymPy into one product
                    return "sumsq", [right], None
        if isinstance(m, sp.MatMul) and len(m.args) == 2 and all(isinstance(a, sp.MatrixExpr) for a in m.args):
            a, b = m.args
            if _ones(a, rows=1) and b.cols == 1:
                return "sum", [b], None
            if _ones(b, cols=1) and a.rows == 1:
                return "sum", [a], None
            at = a.T
            if ntrans[at] < ntrans[a] or isinstance(a, sp.Transpose):
                # tr(PᵀQ) = Σ P∘Q: no transposed copies, and tr(DᵀD) = Σ D² for a squared error
                return ("sumsq", [b], None) if at == b else ("frobenius", [at, b], None)
            return "trace_matmul", [a, b], None
        return "trace", [m], None
    if isinstance(e, sp.MatrixExpr):
        raise UnsupportedError("the matrix operation %s (%s) is not supported; use products, sums, transposes, "
                               "traces, Hadamard products/powers and applyfunc" % (sp.sstr(e)[:80], type(e).__name__))
    kids, rebuild = _split(e)
    return "scalar", kids, rebuild


def _product(mats):
    return mats[0] if len(mats) == 1 else sp.MatMul(*mats)


def _size(d):
    return int(d) if d.is_Integer else 1024  # a symbolic dimension is a batch: assume it is large


def _best_split(mats):
    """Where to split a chain of matrix products so it costs the fewest multiplications
    (the classic dynamic programme; X.T*X*w becomes X.T*(X*w))."""
    n = len(mats)
    dims = [_size(mats[0].rows)] + [_size(m.cols) for m in mats]
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            cost[i][j] = None
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k + 1
    return split[0][n - 1]


def _dims(e):
    out = set()
    for m in e.atoms(sp.MatrixSymbol):
        for d in m.shape:
            out |= d.free_symbols
    return out


def _is_leaf(e):
    return isinstance(e, (sp.MatrixSymbol, sp.OneMatrix, sp.ZeroMatrix, sp.Identity)) or \
        (not isinstance(e, sp.MatrixExpr) and (e.is_Symbol or e.is_Number or e.is_NumberSymbol))


def _canonical_lambdas(expr):
    """``expr`` with every applyfunc's Lambda over the one variable ``_D``.

    Each ``.applyfunc(f)`` call makes a fresh dummy, so two identical activations would
    otherwise be different subexpressions and never share a node.
    """
    memo: dict = {}

    def canon(e):
        if e in memo:
            return memo[e]
        if isinstance(e, ElementwiseApplyFunction):
            f = e.function
            out = ElementwiseApplyFunction(sp.Lambda(_D, f.expr.xreplace({f.variables[0]: _D})), canon(e.expr))
        elif e.args and isinstance(e, (sp.MatrixExpr, sp.Expr)):
            args = tuple(canon(a) for a in e.args)
            out = e if args == e.args else e.func(*args)
        else:
            out = e
        memo[e] = out
        return out

    return canon(expr)


def decompose_matrix(expr) -> MGraph:
    """The matrix ξ graph of ``expr`` (a scalar built from matrix expressions, or a matrix)."""
    expr = _canonical_lambdas(expr)
    nodes, memo, leaves = [], {}, {}
    ntrans = _Counter()

    def atom(e):
        if _is_leaf(e):
            if isinstance(e, sp.MatrixSymbol) or (e.is_Symbol and not isinstance(e, sp.MatrixExpr)):
                leaves.setdefault(e, None)
            return e
        return memo.get(e)

    def make(e, op, param, atoms):
        sym = Xi.of(len(nodes) + 1)
        if op == "scalar":
            param = param(atoms)  # the local expression over the kids' atoms
            args = tuple(dict.fromkeys(a for a in atoms if a.is_Symbol))
        else:
            args = tuple(atoms)
        shape = tuple(e.shape) if isinstance(e, sp.MatrixExpr) else ()
        nodes.append(MNode(sym, op, args, param, shape, e))
        memo[e] = sym
        return sym

    def split(e):
        op, kids, param = _split_matrix(e, ntrans)
        return kids, (op, param)

    root = atom(expr)
    if root is None:
        root = build_postorder(expr, split, atom, lambda e, info, atoms: make(e, info[0], info[1], atoms))
    return MGraph(tuple(nodes), root, tuple(leaves), expr)


def check_shapes(leaves, values: dict) -> dict:
    """Bind symbolic dimensions from the arrays and check every matrix's shape, naming the culprit.

    Returns {dimension symbol: size}.
    """
    dims: dict = {}
    for s in leaves:
        if not isinstance(s, sp.MatrixSymbol):
            continue
        v = values[s.name]
        if getattr(v, "ndim", 0) != 2:
            got = "a scalar" if getattr(v, "ndim", 0) == 0 else "an array of shape %s" % (v.shape,)
            raise InputError("%s must be a 2-D array of shape %s, got %s" % (s.name, _shape_text(s.shape), got))
        for d, n in zip(s.shape, v.shape):
            if d.is_Integer:
                ok = int(d) == n
            elif d.is_Symbol:
                ok = dims.setdefault(d, (n, s.name))[0] == n
            else:
                continue
            if not ok:
                bound = ", ".join("%s = %d from %s" % (k, m, src) for k, (m, src) in dims.items())
                raise InputError("%s has shape %s but the expression needs %s%s" % (
                    s.name, v.shape, _shape_text(s.shape), " with " + bound if bound else ""))
    return {k: m for k, (m, _) in dims.items()}


def source_text(e) -> str:
    """A user subexpression for a code comment: ``tanh(X*W1 + 1*b1)`` rather than SymPy's Lambda form."""
    s = re.sub(r"Lambda\((_?\w+), (\w+)\(\1\)\)\.", r"\2", sp.sstr(e))
    return s if len(s) <= 70 else s[:67] + "..."


def _shape_text(shape):
    return "(%s)" % ", ".join(sp.sstr(d) for d in shape)
