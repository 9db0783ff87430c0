"""Matrix-level ξ graphs: networks written as plain SymPy matrix expressions, compiled to NumPy.

The matrix frontend of the one IR (``symgrad.ir``): each node is one matrix operation of
``symgrad.ops_matrix`` (matrix product, bias broadcast, transpose, trace, row/column sums,
Frobenius product, row-wise log-sum-exp and softmax) or an elementwise operation: the body
of an ``applyfunc``, a Hadamard product or power, a sum of matrices, or a scalar operation
on their results. Elementwise nodes are ordinary scalar nodes (the same rules as
``symgrad.graph``) whose arguments are matrices.

SymPy pushes transposes inward (``(Z - Y).T`` becomes ``W2.T*tanh(...).T - Y.T``), which
would compute the network twice; the graph undoes that: a subexpression whose transpose has
fewer transposes in it is built as ``transpose(ξ)`` of that, so both uses share one chain.
``log((exp(Z))·1)`` (row-wise log-sum-exp, as in a naive softmax cross-entropy) becomes one
max-shifted node whose adjoint is the softmax.

>>> import sympy as sp
>>> B = sp.Symbol("B", integer=True, positive=True)
>>> X, W, b = sp.MatrixSymbol("X", B, 3), sp.MatrixSymbol("W", 3, 2), sp.MatrixSymbol("b", 1, 2)
>>> g, _ = decompose_matrix(sp.Trace(sp.OneMatrix(1, B)*(X*W + sp.OneMatrix(B, 1)*b).applyfunc(lambda t: sp.tanh(2*t))*sp.OneMatrix(2, 1)))
>>> print(g)
ξ1 = X@W
ξ2 = bcast_rows(b, B)
ξ3 = ξ1 + ξ2
ξ4 = 2*ξ3
ξ5 = tanh(ξ4)
ξ6 = sumall(ξ5)
"""

from __future__ import annotations

import re
from dataclasses import replace

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from .errors import InputError, UnsupportedError
from . import ops_matrix as O
from .graph import check_constant, check_leaf, scalar_split
from .ir import Graph, MatLeaf, Node, Xi, build_postorder, is_leaf

__all__ = ["decompose_matrix", "is_matrix_expr", "matrix_leaves", "check_shapes", "source_text"]

_D = sp.Dummy("d", real=True)  # the variable of every elementwise function, real as in networks


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


def _coeff_split(t):
    """(numeric coefficient, matrix rest) of one term of a MatAdd."""
    if isinstance(t, sp.MatMul):
        sc = [a for a in t.args if not isinstance(a, sp.MatrixExpr)]
        if sc and sp.Mul(*sc).is_number:
            return sp.Mul(*sc), _product([a for a in t.args if isinstance(a, sp.MatrixExpr)])
    return sp.S.One, t


def _split_matrix(e, ntrans):
    """(kids, build) for one matrix-level subexpression: ``build(atoms)`` is the node's IR
    expression over its kids' symbols, or ``("apply", f)`` for an elementwise function."""
    # e.T pushes the transpose through the whole subexpression (SymPy's doit): only worth it
    # where there are transposes to cancel
    if isinstance(e, sp.MatrixExpr) and not isinstance(e, (sp.MatrixSymbol, sp.Transpose)) and ntrans[e]:
        et = e.T
        if ntrans[et] < ntrans[e]:
            return [et], lambda a: O.T(a[0])
    if isinstance(e, sp.Transpose):
        return [e.arg], lambda a: O.T(a[0])
    if isinstance(e, sp.OneMatrix):
        return [], lambda a: O.ones(e.rows, e.cols)
    if isinstance(e, sp.ZeroMatrix):
        return [], lambda a: O.zeros(e.rows, e.cols)
    if isinstance(e, sp.Identity):
        return [], lambda a: O.eye(e.rows)
    z = _is_lse_rows(e)
    if z is not None:
        return [z], lambda a: O.lse_rows(a[0])
    if isinstance(e, ElementwiseApplyFunction):
        return [e.expr], ("apply", e.function)
    if isinstance(e, sp.MatPow):
        k = e.exp
        if not (k.is_Integer and k >= 1):
            raise UnsupportedError("the matrix power %s is not supported: only positive integer powers of a square "
                                   "matrix (repeated products); write an inverse as a solve outside the loss"
                                   % sp.sstr(e))
        if k == 1:
            return [e.base], lambda a: a[0]
        return [e.base, e.base if k == 2 else sp.MatPow(e.base, k - 1)], lambda a: O.mm(a[0], a[1])
    if isinstance(e, sp.MatMul):
        scalars = [a for a in e.args if not isinstance(a, sp.MatrixExpr)]
        mats = [a for a in e.args if isinstance(a, sp.MatrixExpr)]
        c = sp.Mul(*scalars)
        if c != 1:
            rest = _product(mats)
            if c.is_number or not (c.free_symbols - _dims(e)):
                return [rest], lambda a: c * a[0]
            return [c, rest], lambda a: a[0] * a[1]
        if len(mats) > 2:
            k = _best_split(mats)
            return [_product(mats[:k]), _product(mats[k:])], lambda a: O.mm(a[0], a[1])
        a, b = mats
        if _ones(a, cols=1) and b.rows == 1:
            return [b], lambda x: O.bcast_rows(x[0], a.rows)
        if _ones(b, rows=1) and a.cols == 1:
            return [a], lambda x: O.bcast_cols(x[0], b.cols)
        if _ones(a, rows=1) and not isinstance(b, sp.OneMatrix):
            return [b], lambda x: O.colsum(x[0])
        if _ones(b, cols=1) and not isinstance(a, sp.OneMatrix):
            return [a], lambda x: O.rowsum(x[0])
        return [a, b], lambda x: O.mm(x[0], x[1])
    if isinstance(e, sp.MatAdd):
        parts = [_coeff_split(t) for t in e.args]
        return [r for _, r in parts], lambda a: sp.Add(*[c * x for (c, _), x in zip(parts, a)])
    if isinstance(e, sp.HadamardProduct):
        z = _is_softmax_rows(e)
        if z is not None:
            return [z], lambda a: O.softmax_rows(a[0])
        return list(e.args), lambda a: sp.Mul(*a)
    if isinstance(e, sp.HadamardPower):
        if e.exp.is_number:
            return [e.base], lambda a: a[0] ** e.exp
        return [e.base, e.exp], lambda a: a[0] ** a[1]
    if isinstance(e, sp.Trace):
        return _split_trace(e.arg, ntrans)
    if isinstance(e, sp.MatrixExpr):
        raise UnsupportedError("the matrix operation %s (%s) is not supported; use products, sums, transposes, "
                               "traces, Hadamard products/powers and applyfunc" % (sp.sstr(e)[:80], type(e).__name__))
    kids, rebuild = scalar_split(e)
    return kids, rebuild


def _split_trace(m, ntrans):
    if sp.simplify(m.rows - m.cols) != 0:
        raise UnsupportedError("Trace(%s) takes the trace of a %s × %s matrix, which is not square; for the sum of "
                               "all entries write Trace(OneMatrix(1, rows)*M*OneMatrix(cols, 1))"
                               % (source_text(m), m.rows, m.cols))
    mats = [a for a in m.args if isinstance(a, sp.MatrixExpr)] if isinstance(m, sp.MatMul) else []
    if isinstance(m, sp.MatMul) and len(mats) == len(m.args):
        if len(mats) == 3 and _ones(mats[0], rows=1) and _ones(mats[2], cols=1):
            return [mats[1]], lambda a: O.sumall(a[0])  # tr(1ᵀ M 1): the sum of all entries
        if len(mats) > 2:
            for k in range(1, len(mats)):
                left, right = _product(mats[:k]), _product(mats[k:])
                if left.T == right:  # tr(QᵀQ), flattened by SymPy into one product
                    return [right], lambda a: O.frob(a[0], a[0])
        if len(mats) == 2:
            a, b = mats
            if _ones(a, rows=1) and b.cols == 1:
                return [b], lambda x: O.sumall(x[0])
            if _ones(b, cols=1) and a.rows == 1:
                return [a], lambda x: O.sumall(x[0])
            at = a.T
            if ntrans[at] < ntrans[a] or isinstance(a, sp.Transpose):
                # tr(PᵀQ) = Σ P∘Q: no transposed copies, and tr(DᵀD) = Σ D² for a squared error
                if at == b:
                    return [b], lambda x: O.frob(x[0], x[0])
                return [at, b], lambda x: O.frob(x[0], x[1])
            return [a, b.T], lambda x: O.frob(x[0], x[1])  # tr(AB) = Σ A∘Bᵀ
    return [m], lambda a: O.trace(a[0])

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


def _elementwise_parts(m):
    """(constant, coefficient, applyfunc) if ``m`` is ``c·1 + d·f(A)`` (matrices of ones and one
    elementwise function, as ``OneMatrix - sigmoid(Z)`` is), else None."""
    if not isinstance(m, sp.MatAdd):
        return None
    const, found = sp.S.Zero, None
    for t in m.args:
        c, rest = _coeff_split(t)
        if isinstance(rest, sp.OneMatrix):
            const += c
        elif isinstance(rest, ElementwiseApplyFunction) and found is None:
            found = (c, rest)
        else:
            return None
    return (const, *found) if found is not None else None


def _fuse(body, inner):
    """``body`` (over ``_D``) applied elementwise to ``inner``, with elementwise layers fused so
    that the stability rewrites see the whole scalar function: ``log(sigmoid(t))``,
    ``log(1 - sigmoid(t))``; ``log`` of a row-wise softmax is ``z - logsumexp(z)`` per row."""
    if body == sp.log(_D):
        z = _is_softmax_rows(inner)
        if z is not None:  # log(softmax(z)) underflows to log(0) at a logit spread of 750
            n = z.shape[1]
            lse = (z.applyfunc(sp.Lambda(_D, sp.exp(_D))) * sp.OneMatrix(n, 1)).applyfunc(sp.Lambda(_D, sp.log(_D)))
            return z - lse * sp.OneMatrix(1, n)
    if isinstance(inner, ElementwiseApplyFunction) and _is_lse_rows(inner) is None:
        return ElementwiseApplyFunction(sp.Lambda(_D, body.xreplace({_D: inner.function.expr})), inner.expr)
    parts = _elementwise_parts(inner)
    if parts is not None:
        c, d, f = parts
        return ElementwiseApplyFunction(sp.Lambda(_D, body.xreplace({_D: c + d * f.function.expr})), f.expr)
    return ElementwiseApplyFunction(sp.Lambda(_D, body), inner)


def _canonical_lambdas(expr):
    """``expr`` with every applyfunc's Lambda over the one variable ``_D``, and nested
    elementwise functions fused into one (see ``_fuse``).

    Each ``.applyfunc(f)`` call makes a fresh dummy, so two identical activations would
    otherwise be different subexpressions and never share a node.
    """
    memo: dict = {}

    def canon(e):
        if e in memo:
            return memo[e]
        if isinstance(e, ElementwiseApplyFunction):
            f = e.function
            out = _fuse(f.expr.xreplace({f.variables[0]: _D}), canon(e.expr))
        elif e.args and isinstance(e, (sp.MatrixExpr, sp.Expr)):
            args = tuple(canon(a) for a in e.args)
            out = e if args == e.args else e.func(*args)
        else:
            out = e
        memo[e] = out
        return out

    return canon(expr)


def _array_args(local) -> tuple:
    """The distinct symbols a node reads as arrays, in order (sizes of broadcasts are static)."""
    if isinstance(local, O.MatOp):
        cands = [local.args[i] for i in range(len(local.args))
                 if i in type(local).linear_args or type(local).kind == "custom"]
    else:
        cands = sorted(local.free_symbols, key=sp.default_sort_key) if not local.is_Symbol else [local]
        # keep the written order where SymPy has one (``tanh(ξ3)``, ``ξ1 + ξ2``)
        order = [a for a in local.args if a.is_Symbol]
        cands = order + [a for a in cands if a not in order]
    return tuple(dict.fromkeys(a for a in cands if a.is_Symbol))


def decompose_matrix(expr, rewrite: bool = False):
    """The ξ graph of a matrix expression (a scalar loss built from matrices, or a matrix).

    Matrix operations become nodes of ``symgrad.ops_matrix``; the body of every ``applyfunc``
    is broken into elementwise scalar nodes over its matrix argument (``tanh(2*t)`` is two
    nodes), so elementwise parts are differentiated by the scalar rules, and scalar
    parameters inside them are ordinary inputs. ``rewrite=True`` applies the stability
    rewrites to every elementwise body. Returns ``(graph, rewrites)``.
    """
    from .rewrite import stabilize

    expr = _canonical_lambdas(expr)
    mats, scalars, dims = matrix_leaves(expr)
    nodes, memo, shapes, fired = [], {}, {}, []
    leaf_of = {}
    for m in mats:
        leaf = MatLeaf.of(m)
        leaf_of[m] = leaf
        shapes[leaf] = tuple(m.shape)
    leaves = dict.fromkeys(leaf_of.values())
    dim_set = set(dims)
    ntrans = _Counter()

    def shape(a):
        return shapes.get(a, ())

    def atom(e):
        if isinstance(e, sp.MatrixSymbol):
            return leaf_of[e]
        if not isinstance(e, sp.MatrixExpr) and is_leaf(e):
            check_leaf(e)
            return e
        return memo.get(e)

    def new_node(local, source):
        if local.is_Symbol or local.is_Number:
            return local
        sym = Xi.of(len(nodes) + 1)
        if isinstance(local, sp.Expr) and not isinstance(local, O.MatOp) and not local.free_symbols:
            check_constant(local)
        try:
            shp = O.shape_of(local, shape)
        except ValueError as err:
            raise UnsupportedError("cannot combine the shapes in %s: %s" % (source_text(source), err)) from None
        nodes.append(Node(sym, local, _array_args(local), source, shp))
        if shp:
            shapes[sym] = shp
        return sym

    def scalar_atom(e):
        if is_leaf(e):
            check_leaf(e)
            return e
        return memo.get(e)

    def make_scalar(e, rebuild, atoms):
        sym = new_node(rebuild(atoms), e)
        memo[e] = sym
        return sym

    def apply(f, arg, source):
        body = f.expr.xreplace({f.variables[0]: arg})
        if rewrite:
            body, report = stabilize(body)
            fired.extend(report)
        if not body.has(arg):  # a constant function: a constant matrix of the argument's shape
            return new_node(body * O.ones(*shape(arg)), source)
        root = scalar_atom(body)
        return root if root is not None else build_postorder(body, scalar_split, scalar_atom, make_scalar)

    def make(e, build, atoms):
        if isinstance(build, tuple):  # ("apply", Lambda)
            sym = apply(build[1], atoms[0], e)
            if nodes and nodes[-1].symbol == sym:  # the body's last node stands for the whole applyfunc
                nodes[-1] = replace(nodes[-1], source=e)
        else:
            sym = new_node(build(atoms), e)
        memo[e] = sym
        return sym

    def split(e):
        return _split_matrix(e, ntrans)

    root = atom(expr)
    if root is None:
        root = build_postorder(expr, split, atom, make)
    for n in nodes:
        for a in n.args:
            if a.is_Symbol and not isinstance(a, (Xi, MatLeaf)) and a not in dim_set:
                leaves.setdefault(a, None)
    names = {}
    for s in leaves:
        if s.name in names:
            raise InputError("two different symbols are both called %r; values are passed by name, so rename one"
                             % s.name)
        names[s.name] = s
    return Graph(tuple(nodes), root, tuple(leaves), expr, shapes, tuple(dims)), tuple(fired)

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
    sizes = {k: m for k, (m, _) in dims.items()}
    for s in leaves:  # compound sizes such as 2*n, once every dimension symbol is bound
        if not isinstance(s, sp.MatrixSymbol):
            continue
        for d, n in zip(s.shape, values[s.name].shape):
            if d.is_Integer or d.is_Symbol:
                continue
            want = d.xreplace(sizes)
            if want.is_Integer and int(want) != n:
                bound = ", ".join("%s = %d from %s" % (k, m, src) for k, (m, src) in dims.items())
                raise InputError("%s has shape %s but the expression needs %s with %s" % (
                    s.name, values[s.name].shape, _shape_text(s.shape), bound))
    return {k: m for k, (m, _) in dims.items()}


def source_text(e) -> str:
    """A user subexpression for a code comment: ``tanh(X*W1 + 1*b1)`` rather than SymPy's Lambda form."""
    s = re.sub(r"Lambda\((_?\w+), (\w+)\(\1\)\)\.", r"\2", sp.sstr(e))
    return s if len(s) <= 70 else s[:67] + "..."


def _shape_text(shape):
    return "(%s)" % ", ".join(sp.sstr(d) for d in shape)
