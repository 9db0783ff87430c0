"""The IR's operation registry, checked op by op against independent references, plus the
programs built from it: a deliberately wrong rule is caught, the README network's generated
source is pinned and matches hand-written backprop, and no call ever writes into its inputs.

References are independent of symgrad: op values come from hand NumPy/Python formulas (loops,
``math.fsum``, a hand max-shifted log-sum-exp), tangents from central differences of those
formulas, and each transpose rule (vjp) is tied to its tangent rule (jvp) by the inner-product
identity ⟨u, J v⟩ = ⟨Jᵀu, v⟩, every rule being printed with ``symgrad.printing.CodePrinter`` and
the NumPy text evaluated, as generated code is.
"""

from __future__ import annotations

import builtins
import math
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad import nn, ops_matrix as O, reference, rules
from symgrad.emit import HELPERS
from symgrad.printing import CodePrinter

# ------------------------------------------------------------------------------------------
# 1. The registry walk: every matrix operation's rules, symbolically and numerically
# ------------------------------------------------------------------------------------------

r, c, k, n = sp.symbols("r c k n", integer=True, positive=True)   # dimension symbols
DIMS = {r: 3, c: 4, k: 2, n: 3}
a, b, s = sp.symbols("a b s")                                     # plain array/scalar symbols
g, out = sp.symbols("g out")                                      # cotangent and node output
DOT = {x: sp.Symbol(x.name + "_dot") for x in (a, b, s)}


def _trace(A):
    return math.fsum(A[i, i] for i in range(A.shape[0]))


def _lse(A):
    rows = []
    for row in A:
        m = max(row)
        rows.append([m + math.log(math.fsum(math.exp(x - m) for x in row))])
    return np.array(rows)


def _softmax(A):
    rows = []
    for row in A:
        m = max(row)
        e = [math.exp(x - m) for x in row]
        t = math.fsum(e)
        rows.append([v / t for v in e])
    return np.array(rows)


def _eye(m):
    return np.array([[1.0 if i == j else 0.0 for j in range(m)] for i in range(m)])


# op -> (expression of plain symbols, {array argument: shape}, hand formula over {name: value} and dims)
SPECS = {
    O.mm: (O.mm(a, b), {a: (r, k), b: (k, c)}, lambda v, d: v["a"] @ v["b"]),
    O.T: (O.T(a), {a: (r, c)},
          lambda v, d: np.array([[v["a"][i, j] for i in range(d[r])] for j in range(d[c])])),
    O.bcast_rows: (O.bcast_rows(a, n), {a: (1, c)}, lambda v, d: np.repeat(v["a"], d[n], axis=0)),
    O.bcast_cols: (O.bcast_cols(a, n), {a: (r, 1)}, lambda v, d: np.repeat(v["a"], d[n], axis=1)),
    O.colsum: (O.colsum(a), {a: (r, c)},
               lambda v, d: np.array([[math.fsum(v["a"][:, j]) for j in range(d[c])]])),
    O.rowsum: (O.rowsum(a), {a: (r, c)},
               lambda v, d: np.array([[math.fsum(v["a"][i, :])] for i in range(d[r])])),
    O.sumall: (O.sumall(a), {a: (r, c)}, lambda v, d: math.fsum(v["a"].ravel())),
    O.fill: (O.fill(s, r, c), {s: ()}, lambda v, d: np.full((d[r], d[c]), v["s"])),
    O.trace: (O.trace(a), {a: (n, n)}, lambda v, d: _trace(v["a"])),
    O.frob: (O.frob(a, b), {a: (r, c), b: (r, c)}, lambda v, d: math.fsum((v["a"] * v["b"]).ravel())),
    O.eye: (O.eye(n), {}, lambda v, d: _eye(d[n])),
    O.ones: (O.ones(r, c), {}, lambda v, d: np.full((d[r], d[c]), 1.0)),
    O.zeros: (O.zeros(r, c), {}, lambda v, d: np.full((d[r], d[c]), 0.0)),
    O.lse_rows: (O.lse_rows(a), {a: (r, c)}, lambda v, d: _lse(v["a"])),
    O.softmax_rows: (O.softmax_rows(a), {a: (r, c)}, lambda v, d: _softmax(v["a"])),
}

OP_IDS = [op.__name__ for op in O.MATRIX_OPS]


def test_every_registered_matrix_op_has_a_spec_here():
    """A new operation in MATRIX_OPS must get a spec (and so all the checks below)."""
    assert set(O.MATRIX_OPS) == set(SPECS)
    assert len(O.MATRIX_OPS) == len(set(O.MATRIX_OPS))


def _shape_table(arg_shapes, out_shape):
    t = {x: tuple(shp) for x, shp in arg_shapes.items() if shp}
    t.update({DOT[x]: tuple(shp) for x, shp in arg_shapes.items() if shp})
    if out_shape:
        t[g] = t[out] = tuple(out_shape)
    return t


def _shape_fn(table):
    """What sweeps passes to a vjp: the shape of any IR expression."""
    return lambda e: O.shape_of(e, lambda x: table.get(x, ()))


def _array_positions(op, expr):
    return [i for i in range(len(expr.args)) if i in op.linear_args or op.kind == "custom"]


def _rules_of(op):
    """(expr, {arg: shape}, out shape, [(i, vjp_i)], jvp) for op's spec, built symbolically."""
    expr, arg_shapes, _ = SPECS[op]
    out_shape = O.shape_of(expr, lambda x: arg_shapes.get(x, ()))
    table = _shape_table(arg_shapes, out_shape)
    vjps = [(i, op.vjp(expr.args, i, g, out, _shape_fn(table))) for i in _array_positions(op, expr)]
    tangent = O.jvp(expr, {x: DOT[x] for x in arg_shapes}, out)
    return expr, arg_shapes, out_shape, table, vjps, tangent


NAMES = {x: x.name for x in (a, b, s, g, out, r, c, k, n, *DOT.values())}


def _walk_registered(e):
    """Assert every operation in ``e`` is a registered MatOp or an elementwise op with a rule."""
    for x in sp.preorder_traversal(e):
        if isinstance(x, (sp.logic.boolalg.BooleanAtom, sp.core.relational.Relational,
                          sp.logic.boolalg.BooleanFunction, sp.functions.elementary.piecewise.ExprCondPair)):
            continue  # a Piecewise's branch pairs and conditions (compared, never differentiated)
        if x.is_Atom:
            assert x.is_Symbol or x.is_Number or x.is_NumberSymbol, (x, type(x))
            continue
        if isinstance(x, O.MatOp):
            assert type(x) in O.MATRIX_OPS, "%s (%s) is not in MATRIX_OPS" % (x, type(x).__name__)
            continue
        assert isinstance(x, sp.Expr), "%s (%s) is neither an expression nor a MatOp" % (x, type(x).__name__)
        assert not x.has(sp.Derivative, sp.Subs), x
        rule = rules.rule_for(x)  # raises UnsupportedError for an operation without a rule
        assert rule.matches(x)


@pytest.mark.parametrize("op", O.MATRIX_OPS, ids=OP_IDS)
def test_rules_emit_only_registered_operations_and_print(op):
    expr, arg_shapes, out_shape, table, vjps, tangent = _rules_of(op)
    shape = _shape_fn(table)
    printer = CodePrinter(NAMES)
    printer.doprint(expr)
    if op.kind == "constant":
        assert not vjps and tangent is None and op.linear_args == ()
        return
    assert vjps, "an operation with array arguments states no transpose rule"
    for i, v in vjps:
        _walk_registered(v)
        # the adjoint contribution has the argument's shape (NumPy-broadcast scalars are ())
        assert shape(v) == tuple(arg_shapes[expr.args[i]]), (op.__name__, i, v, shape(v))
        assert isinstance(printer.doprint(v), str)
    assert tangent is not None
    _walk_registered(tangent)
    assert shape(tangent) == tuple(out_shape), (op.__name__, tangent, shape(tangent))
    assert isinstance(printer.doprint(tangent), str)


def _namespace():
    ns = {"np": np}
    for src in HELPERS.values():
        exec(src, ns)  # noqa: S102 - symgrad's own helper source
    return ns


def _evaluate(e, values):
    """Print ``e`` with CodePrinter and evaluate the NumPy text, as generated code is."""
    ns = _namespace()
    ns.update({NAMES[x]: v for x, v in values.items()})
    return eval(CodePrinter(NAMES).doprint(e), ns)  # noqa: S307 - symgrad's own printed expression


def _draw(rng, shp, scale=1.0):
    shp = tuple(int(d.subs(DIMS)) if isinstance(d, sp.Basic) else int(d) for d in shp)
    return rng.standard_normal(shp) * scale if shp else float(rng.standard_normal() * scale)


@pytest.mark.parametrize("op", O.MATRIX_OPS, ids=OP_IDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_value_matches_hand_formula(op, seed):
    expr, arg_shapes, _ = SPECS[op]
    rng = np.random.default_rng(seed)
    values = {x: _draw(rng, shp, 3.0) for x, shp in arg_shapes.items()}
    values.update(DIMS)
    got = _evaluate(expr, values)
    want = SPECS[op][2]({x.name: v for x, v in values.items() if x in arg_shapes}, DIMS)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_lse_and_softmax_values_are_stable_at_huge_logits():
    values = {a: np.array([[1000.0, 999.0, -1000.0], [-800.0, -801.0, -802.0]]), **DIMS}
    lse = _evaluate(O.lse_rows(a), values)
    np.testing.assert_allclose(lse, _lse(values[a]), rtol=1e-15)
    sm = _evaluate(O.softmax_rows(a), values)
    np.testing.assert_allclose(sm, _softmax(values[a]), rtol=1e-14, atol=1e-300)
    assert np.isfinite(lse).all() and np.isfinite(sm).all()


def _point(op, seed):
    """Random values of the arguments, tangents and a cotangent, with the node's output."""
    expr, arg_shapes, out_shape, table, vjps, tangent = _rules_of(op)
    rng = np.random.default_rng(seed)
    values = {x: _draw(rng, shp) for x, shp in arg_shapes.items()}
    values.update(DIMS)
    values[out] = _evaluate(expr, values)
    dots = {DOT[x]: _draw(rng, shp) for x, shp in arg_shapes.items()}
    u = _draw(rng, out_shape)
    return expr, arg_shapes, out_shape, vjps, tangent, values, dots, u


NONCONSTANT = [op for op in O.MATRIX_OPS if op.kind != "constant"]


@pytest.mark.parametrize("op", NONCONSTANT, ids=[op.__name__ for op in NONCONSTANT])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vjp_is_the_transpose_of_jvp(op, seed):
    """⟨u, J v⟩ = Σ_i ⟨J_iᵀ u, v_i⟩ with the printed rules evaluated by NumPy."""
    expr, arg_shapes, out_shape, vjps, tangent, values, dots, u = _point(op, seed)
    Jv = _evaluate(tangent, {**values, **dots})
    assert np.shape(Jv) == np.shape(values[out])
    lhs = float(np.sum(np.multiply(u, Jv)))
    rhs = 0.0
    for i, v in vjps:
        x = expr.args[i]
        JTu = _evaluate(v, {**values, g: u})
        assert np.shape(JTu) == np.shape(values[x]), (op.__name__, i, np.shape(JTu))
        rhs += float(np.sum(np.multiply(JTu, dots[DOT[x]])))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("op", NONCONSTANT, ids=[op.__name__ for op in NONCONSTANT])
@pytest.mark.parametrize("seed", [0, 1])
def test_jvp_matches_central_differences_of_the_hand_formula(op, seed):
    """The tangent rule against the hand formula itself (so vjp and jvp are not both wrong)."""
    expr, arg_shapes, out_shape, vjps, tangent, values, dots, u = _point(op, seed)
    Jv = _evaluate(tangent, {**values, **dots})
    ref = SPECS[op][2]
    eps = 1e-6

    def at(t):
        return np.asarray(ref({x.name: values[x] + t * dots[DOT[x]] for x in arg_shapes}, DIMS), dtype=float)

    fd = (at(eps) - at(-eps)) / (2 * eps)
    np.testing.assert_allclose(Jv, fd, rtol=1e-6, atol=1e-8)


# Networks whose every derivative statement must also use only registered, printable operations.
_B = sp.Symbol("B", integer=True, positive=True)


def _total(M):
    return sp.Trace(sp.OneMatrix(1, M.shape[0]) * M * sp.OneMatrix(M.shape[1], 1))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "leaky_relu", "softplus"])
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse", "l1", "huber", "binary_cross_entropy"])
def test_every_statement_of_network_programs_is_registered(activation, loss):
    net = nn.mlp([3, 4, 2], activation=activation, loss=loss)
    f = sg.compile(net.loss, wrt=list(net.params), args=[net.inputs, net.targets])
    for a_ in f.sweeps.values + f.sweeps.forward + f.sweeps.reverse:
        _walk_registered(a_.expr)
    for e in f.sweeps.adjoint.values():
        _walk_registered(e)


# ------------------------------------------------------------------------------------------
# shared helpers for compiled networks
# ------------------------------------------------------------------------------------------


def central_gradient(f, values, name, eps=1e-6):
    """Entry-by-entry central differences of the compiled value function (no transpose rule)."""
    base = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in values.items()}
    p = base[name]
    out = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        old = p[idx]
        p[idx] = old + eps
        hi = f(**base)
        p[idx] = old - eps
        lo = f(**base)
        p[idx] = old
        out[idx] = (hi - lo) / (2 * eps)
    return out


# ------------------------------------------------------------------------------------------
# 2. The checker catches a deliberately wrong rule
# ------------------------------------------------------------------------------------------

Xq, Yq = sp.MatrixSymbol("X", _B, 3), sp.MatrixSymbol("Y", _B, 4)
W1q, W2q = sp.MatrixSymbol("W1", 3, 4), sp.MatrixSymbol("W2", 4, 4)     # W2 square: mm(g, W2) has a shape
LOSS_Q = sp.Trace(Yq.T * ((Xq * W1q).applyfunc(sp.tanh) * W2q).applyfunc(sp.tanh))


def _square_values(seed=3):
    rng = np.random.default_rng(seed)
    return {"X": rng.standard_normal((5, 3)), "Y": rng.standard_normal((5, 4)),
            "W1": rng.standard_normal((3, 4)) * 0.5, "W2": rng.standard_normal((4, 4)) * 0.5}


def _compiled_square():
    return sg.compile(LOSS_Q, wrt=[W1q, W2q], args=[Xq, Yq])


def _wrong_mm_vjp(cls, args, i, g, out, shapes):
    a_, b_ = args
    return O.mm(g, b_) if i == 0 else O.mm(O.T(a_), g)   # the left adjoint forgets its transpose


def test_real_mm_rule_agrees_with_central_differences():
    f = _compiled_square()
    v = _square_values()
    grads = f.grad(**v)
    for name in ("W1", "W2"):
        np.testing.assert_allclose(grads[name], central_gradient(f, v, name), rtol=1e-6, atol=1e-8)


def test_wrong_mm_rule_is_caught_by_central_differences(monkeypatch):
    monkeypatch.setattr(O.mm, "vjp", classmethod(_wrong_mm_vjp))
    f = _compiled_square()
    assert "W2.T" not in f.sources["reverse"]       # the patched rule is the one that was used
    v = _square_values()
    grads = f.grad(**v)
    _, vg = f.value_and_grad(**v)
    fd1 = central_gradient(f, v, "W1")
    # W1's adjoint flows through the left argument of ξ@W2: wrong; W2's own gradient is not
    assert np.max(np.abs(grads["W1"] - fd1)) > 1e-2
    assert not np.allclose(vg["W1"], fd1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grads["W2"], central_gradient(f, v, "W2"), rtol=1e-6, atol=1e-8)
    # forward mode (derived from linearity, not from vjp) still agrees, so ⟨u, Jv⟩ ≠ ⟨Jᵀu, v⟩
    rng = np.random.default_rng(9)
    t = {"W1": rng.standard_normal((3, 4)), "W2": np.zeros((4, 4))}
    _, jv = f.jvp(t, **v)
    assert jv == pytest.approx(float(np.sum(fd1 * t["W1"])), rel=1e-6)
    assert abs(jv - float(np.sum(grads["W1"] * t["W1"]))) > 1e-3
    monkeypatch.undo()
    good = _compiled_square().grad(**v)
    np.testing.assert_allclose(good["W1"], fd1, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------------------
# 4. Golden generated source for the README network
# ------------------------------------------------------------------------------------------


def readme_network():
    """Exactly the network of README.md, "Networks: plain SymPy matrix expressions"."""
    B = sp.Symbol("B", integer=True, positive=True)          # batch size stays symbolic
    X, Y = sp.MatrixSymbol("X", B, 64), sp.MatrixSymbol("Y", B, 10)
    W1, b1 = sp.MatrixSymbol("W1", 64, 128), sp.MatrixSymbol("b1", 1, 128)
    W2, b2 = sp.MatrixSymbol("W2", 128, 10), sp.MatrixSymbol("b2", 1, 10)
    A1 = (X*W1 + sp.OneMatrix(B, 1)*b1).applyfunc(sp.tanh)
    Z2 = A1*W2 + sp.OneMatrix(B, 1)*b2
    L = (sp.Trace(sp.OneMatrix(1, B)*(Z2.applyfunc(sp.exp)*sp.OneMatrix(10, 1)).applyfunc(sp.log))
         - sp.Trace(Y.T*Z2)) / B                              # softmax cross-entropy, written naively
    return sg.compile(L, wrt=[W1, b1, W2, b2], args=[X, Y])


GOLDEN_README_REVERSE = '''\
def value_and_grad(X, Y, W1, b1, W2, b2):
    B = X.shape[0]  # dimension
    xi1 = 1/B  # 1/B
    xi2 = X @ W1  # X*W1
    xi4 = xi2  # X*W1 + 1*b1 (in place)
    xi4 += b1
    xi5 = np.tanh(xi4, out=xi4)  # tanh(X*W1 + 1*b1) (in place)
    xi6 = xi5 @ W2  # tanh(X*W1 + 1*b1)*W2
    xi8 = xi6  # tanh(X*W1 + 1*b1)*W2 + 1*b2 (in place)
    xi8 += b2
    xi9 = np.vdot(Y, xi8)  # Trace(Y.T*(tanh(X*W1 + 1*b1)*W2 + 1*b2))
    xi10 = _lse_rows(xi8)  # log(exp(tanh(X*W1 + 1*b1)*W2 + 1*b2)*1)
    xi11 = np.sum(xi10)  # Trace(1*log(exp(tanh(X*W1 + 1*b1)*W2 + 1*b2)*1))
    xi12 = xi11 - xi9  # Trace(1*log(exp(tanh(X*W1 + 1*b1)*W2 + 1*b2)*1)) - Trace(Y.T*(tanh(...
    xi13 = xi1*xi12  # (Trace(1*log(exp(tanh(X*W1 + 1*b1)*W2 + 1*b2)*1)) - Trace(Y.T*(tanh...
    xi9_bar = -xi1  # ∂ξ12/∂ξ9
    xi8_bar = xi1*np.exp(-xi10 + xi8) + Y*xi9_bar  # ∂ξ10/∂ξ8, ∂ξ9/∂ξ8
    b2_bar = np.ones((1, xi8_bar.shape[0]), xi8_bar.dtype) @ xi8_bar  # ∂ξ7/∂b2
    xi5_bar = xi8_bar @ W2.T  # ∂ξ6/∂ξ5
    W2_bar = xi5.T @ xi8_bar  # ∂ξ6/∂W2
    xi4_bar = xi5_bar  # ∂ξ5/∂ξ4 (in place)
    np.square(xi5, out=xi5)
    np.subtract(1, xi5, out=xi5)
    xi4_bar *= xi5
    b1_bar = np.ones((1, xi4_bar.shape[0]), xi4_bar.dtype) @ xi4_bar  # ∂ξ3/∂b1
    W1_bar = X.T @ xi4_bar  # ∂ξ2/∂W1
    return xi13, (W1_bar, b1_bar, W2_bar, b2_bar,)
'''


@pytest.fixture(scope="module")
def readme_f():
    return readme_network()


def _readme_values(seed=0, batch=16):
    rng = np.random.default_rng(seed)
    params = {"W1": rng.standard_normal((64, 128)) * 0.1, "b1": rng.standard_normal((1, 128)) * 0.1,
              "W2": rng.standard_normal((128, 10)) * 0.1, "b2": rng.standard_normal((1, 10)) * 0.1}
    X = rng.standard_normal((batch, 64))
    Y = np.eye(10)[rng.integers(0, 10, batch)]
    return params, X, Y


def test_readme_network_reverse_source_is_golden(readme_f):
    assert readme_f.sources["reverse"] == GOLDEN_README_REVERSE


def test_readme_shows_the_generated_reverse_source(readme_f):
    """README.md's listing under ``print(f.sources["reverse"])`` is what the network compiles to."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    after = readme[readme.index('print(f.sources["reverse"])'):]
    m = re.search(r"```\n(def value_and_grad\(X, Y, W1, b1, W2, b2\):\n.*?)```", after, re.S)
    assert m, "README no longer shows the network's reverse source"
    assert m.group(1) == readme_f.sources["reverse"] == GOLDEN_README_REVERSE


def test_readme_network_source_compiles_and_runs_standalone(readme_f):
    code = builtins.compile(readme_f.source, "<readme-network>", "exec")
    ns: dict = {}
    exec(code, ns)  # noqa: S102 - symgrad's generated module
    assert {"value", "value_and_grad", "grad", "jvp"} <= set(ns)
    # the golden text itself, run with only NumPy and the helper it calls, is correct too
    golden_ns = _namespace()
    exec(builtins.compile(GOLDEN_README_REVERSE, "<golden>", "exec"), golden_ns)  # noqa: S102
    params, X, Y = _readme_values(1)
    ref_loss, ref = reference.mlp_value_and_grad({k: v.copy() for k, v in params.items()}, X, Y)
    loss, grads = golden_ns["value_and_grad"](X, Y, params["W1"], params["b1"], params["W2"], params["b2"])
    assert float(loss) == pytest.approx(ref_loss, rel=1e-12)
    for name, gr in zip(("W1", "b1", "W2", "b2"), grads):
        np.testing.assert_allclose(gr, ref[name], rtol=1e-12, atol=1e-12 * np.abs(ref[name]).max())


@pytest.mark.parametrize("seed", [0, 1])
def test_readme_network_gradient_matches_hand_backprop(readme_f, seed):
    params, X, Y = _readme_values(seed)
    ref_loss, ref = reference.mlp_value_and_grad({k: v.copy() for k, v in params.items()}, X.copy(), Y.copy())
    loss, grads = readme_f.value_and_grad(X=X, Y=Y, **params)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    only = readme_f.grad(X=X, Y=Y, **params)
    assert readme_f(X=X, Y=Y, **params) == pytest.approx(ref_loss, rel=1e-12)
    for name in ("W1", "b1", "W2", "b2"):
        assert grads[name].shape == params[name].shape
        tol = 1e-12 * np.abs(ref[name]).max()
        np.testing.assert_allclose(grads[name], ref[name], rtol=1e-12, atol=tol)
        np.testing.assert_allclose(only[name], ref[name], rtol=1e-12, atol=tol)


# ------------------------------------------------------------------------------------------
# 5. No call writes into its input arrays (or tangents), even when arguments alias each other
# ------------------------------------------------------------------------------------------

Bm = sp.Symbol("B", integer=True, positive=True)
N = 4
Xs, Ys = sp.MatrixSymbol("X", N, N), sp.MatrixSymbol("Y", N, N)
W1s, W2s = sp.MatrixSymbol("W1", N, N), sp.MatrixSymbol("W2", N, N)
M_TRANSPOSED = (Xs * W1s).applyfunc(sp.tanh) + (Xs * W2s).applyfunc(sp.tanh).T
Xt, Wt, bt = sp.MatrixSymbol("X", Bm, 4), sp.MatrixSymbol("W", 4, 3), sp.MatrixSymbol("b", 1, 3)
_tied = ((Xt * Wt + sp.OneMatrix(Bm, 1) * bt).applyfunc(sp.tanh) * Wt.T) - Xt      # tied autoencoder residual


def _mlp(activation, loss):
    net = nn.mlp([4, 5, 4], activation=activation, loss=loss)
    return sg.compile(net.loss, wrt=list(net.params), args=[net.inputs, net.targets])


NETWORKS = {
    "tanh_mlp": lambda: _mlp("tanh", "softmax_cross_entropy"),
    "sigmoid_mlp": lambda: _mlp("sigmoid", "mse"),
    "transposed_activation_loss": lambda: sg.compile(sp.Trace(Ys.T * M_TRANSPOSED) + _total(sp.HadamardPower(M_TRANSPOSED, 2)),
                                                     wrt=[W1s, W2s], args=[Xs, Ys]),
    # a matrix-valued output: grad differentiates the sum of its entries only when asked to
    "transposed_activation_matrix": lambda: sg.compile(M_TRANSPOSED, wrt=[W1s, W2s], args=[Xs], reduce="sum"),
    "weight_tying": lambda: sg.compile(sp.Trace(_tied.T * _tied) / Bm, wrt=[Wt, bt], args=[Xt]),
}


def _network_values(name, rng):
    if name in ("tanh_mlp", "sigmoid_mlp"):
        v = {"X": rng.standard_normal((6, 4)), "Y": np.eye(4)[rng.integers(0, 4, 6)],
             "W1": rng.standard_normal((4, 5)) * 0.5, "b1": rng.standard_normal((1, 5)) * 0.5,
             "W2": rng.standard_normal((5, 4)) * 0.5, "b2": rng.standard_normal((1, 4)) * 0.5}
    elif name.startswith("transposed"):
        v = {"X": rng.standard_normal((N, N)), "Y": rng.standard_normal((N, N)),
             "W1": rng.standard_normal((N, N)) * 0.5, "W2": rng.standard_normal((N, N)) * 0.5}
        if name.endswith("matrix"):
            del v["Y"]
    else:
        v = {"X": rng.standard_normal((6, 4)), "W": rng.standard_normal((4, 3)) * 0.5,
             "b": rng.standard_normal((1, 3)) * 0.5}
    return v


# Which arguments may share one array object (same shape): (name, name) pairs per network.
ALIASES = {
    "tanh_mlp": [("X", "Y")],
    "sigmoid_mlp": [("X", "Y")],
    "transposed_activation_loss": [("X", "Y"), ("W1", "W2"), ("X", "W1")],
    "transposed_activation_matrix": [("W1", "W2"), ("X", "W1")],
    "weight_tying": [],
}


@pytest.fixture(scope="module")
def compiled_networks():
    return {name: make() for name, make in NETWORKS.items()}


def _snapshot(arrays):
    return [(x, x.copy(), x.tobytes()) for x in arrays]


def _assert_unchanged(snap, what):
    for x, copy, raw in snap:
        assert np.array_equal(x, copy) and x.tobytes() == raw, "%s changed an input array" % what


def _variants(name, rng):
    """(label, values): distinct arrays, then each alias pair sharing one array object."""
    base = _network_values(name, rng)
    out = [("distinct", base)]
    for left, right in ALIASES[name]:
        v = dict(base)
        v[right] = v[left]
        out.append(("%s is %s" % (right, left), v))
    return out


@pytest.mark.parametrize("name", list(NETWORKS))
def test_no_call_writes_into_inputs_or_tangents(compiled_networks, name):
    f = compiled_networks[name]
    rng = np.random.default_rng(5)
    wrt = [w.name for w in f.wrt]
    for label, v in _variants(name, rng):
        x0 = next(iter(v.values()))  # the data array X
        tangent_sets = [{w: rng.standard_normal(v[w].shape) for w in wrt},
                        {wrt[0]: v[wrt[0]]},                   # a tangent that is the parameter's own array
                        {w: v[w] for w in wrt},
                        {w: x0 for w in wrt if v[w].shape == x0.shape}]   # the data array as a tangent
        tangent_sets = [t for t in tangent_sets if t]
        arrays = list({id(x): x for x in v.values()}.values())
        for call in ("value", "grad", "value_and_grad", "jvp"):
            snap = _snapshot(arrays)
            if call == "value":
                f(**v)
            elif call == "grad":
                f.grad(**v)
            elif call == "value_and_grad":
                f.value_and_grad(**v)
            else:
                for t in tangent_sets:
                    tsnap = _snapshot(list({id(x): x for x in t.values()}.values()))
                    f.jvp(t, **v)
                    _assert_unchanged(tsnap, "%s: f.jvp (%s) on its tangents" % (name, label))
            _assert_unchanged(snap, "%s: %s (%s)" % (name, call, label))


@pytest.mark.parametrize("name", list(NETWORKS))
def test_aliased_arguments_give_the_same_results_as_copies(compiled_networks, name):
    """Passing one array object as two arguments computes what two equal copies compute."""
    f = compiled_networks[name]
    rng = np.random.default_rng(6)
    for label, v in _variants(name, rng)[1:]:
        copies = {k: x.copy() for k, x in v.items()}
        val_a, g_a = f.value_and_grad(**v)
        val_c, g_c = f.value_and_grad(**copies)
        np.testing.assert_array_equal(val_a, val_c)
        for w in g_c:
            np.testing.assert_array_equal(g_a[w], g_c[w], err_msg="%s (%s): %s" % (name, label, w))
            np.testing.assert_array_equal(f.grad(**v)[w], f.grad(**copies)[w])
        t = {w: np.ones_like(copies[w]) for w in g_c}
        np.testing.assert_array_equal(f.jvp(t, **v)[1], f.jvp(t, **copies)[1])


def _assert_own_arrays(grads, inputs, what):
    """No gradient shares memory with an input or with another parameter's gradient, and each
    can be updated in place (clipping, scaling) without touching anything else."""
    names = list(grads)
    for w in names:
        gr = grads[w]
        assert not any(np.shares_memory(gr, x) for x in inputs), "%s: the gradient of %s aliases an input" % (what, w)
        for u in names[names.index(w) + 1:]:
            assert not np.shares_memory(gr, grads[u]), "%s: the gradients of %s and %s are one array" % (what, w, u)
        if isinstance(gr, np.ndarray):
            assert gr.flags.writeable, "%s: the gradient of %s is read-only" % (what, w)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_returned_gradients_are_arrays_of_their_own(compiled_networks, name):
    """An optimiser updates ``W -= lr * g`` in place: a gradient must be an array of its own."""
    f = compiled_networks[name]
    for label, v in _variants(name, np.random.default_rng(7)):
        inputs = list(v.values())
        _assert_own_arrays(f.grad(**v), inputs, "%s (%s) grad" % (name, label))
        _assert_own_arrays(f.value_and_grad(**v)[1], inputs, "%s (%s) value_and_grad" % (name, label))


Xr, V1, V2 = sp.MatrixSymbol("X", Bm, 3), sp.MatrixSymbol("V1", 3, 3), sp.MatrixSymbol("V2", 3, 3)


def test_parameters_added_before_use_get_gradients_of_their_own():
    """X*(V1 + V2) (a residual or low-rank update added to a weight): V1 and V2 have equal
    gradients, but as two arrays; one array for both lets an in-place update of one change the other."""
    f = sg.compile(_total((Xr * (V1 + V2)).applyfunc(sp.tanh)), wrt=[V1, V2], args=[Xr])
    rng = np.random.default_rng(0)
    v = {"X": rng.standard_normal((5, 3)), "V1": rng.standard_normal((3, 3)) * 0.5,
         "V2": rng.standard_normal((3, 3)) * 0.5}
    for grads in (f.grad(**v), f.value_and_grad(**v)[1]):
        np.testing.assert_allclose(grads["V1"], central_gradient(f, v, "V1"), rtol=1e-6, atol=1e-8)
        np.testing.assert_array_equal(grads["V1"], grads["V2"])
        _assert_own_arrays(grads, list(v.values()), "X*(V1 + V2)")


def test_scalar_expression_array_parameters_get_gradients_of_their_own():
    """The same contract for an elementwise (scalar) expression over arrays: tanh(w1 + w2)."""
    w1, w2 = sp.symbols("w1 w2")
    f = sg.compile(sp.tanh(w1 + w2), wrt=[w1, w2])
    v = {"w1": np.array([0.1, -0.4, 0.7]), "w2": np.array([0.3, 0.2, -0.1])}
    for grads in (f.grad(**v), f.value_and_grad(**v)[1]):
        np.testing.assert_allclose(grads["w1"], 1 - np.tanh(v["w1"] + v["w2"]) ** 2, rtol=1e-14)
        _assert_own_arrays(grads, list(v.values()), "tanh(w1 + w2)")


@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_gradients_match_central_differences(compiled_networks, name):
    """The networks above are differentiated correctly (so the no-mutation checks test real code)."""
    f = compiled_networks[name]
    if f._out_size is not None:  # a matrix output: check its sum through the directional derivative
        v = _network_values(name, np.random.default_rng(8))
        t = {w.name: np.random.default_rng(1).standard_normal(v[w.name].shape) for w in f.wrt}
        eps = 1e-6
        hi = f(**{k: x + eps * t.get(k, 0) for k, x in v.items()})
        lo = f(**{k: x - eps * t.get(k, 0) for k, x in v.items()})
        value, dot = f.jvp(t, **v)
        np.testing.assert_allclose(value, f(**v), rtol=1e-14)
        assert f.value_and_grad(**v)[0] == pytest.approx(float(np.sum(f(**v))), rel=1e-13)
        np.testing.assert_allclose(dot, (hi - lo) / (2 * eps), rtol=1e-6, atol=1e-8)
        grads = f.grad(**v)
        assert float(np.sum(dot)) == pytest.approx(sum(float(np.sum(grads[w] * t[w])) for w in t), rel=1e-10)
        return
    v = _network_values(name, np.random.default_rng(8))
    grads = f.grad(**v)
    value, vg = f.value_and_grad(**v)
    assert value == pytest.approx(f(**v), rel=1e-13)
    assert f.jvp({f.wrt[0].name: np.ones(v[f.wrt[0].name].shape)}, **v)[0] == pytest.approx(value, rel=1e-13)
    for w in f.wrt:
        np.testing.assert_allclose(vg[w.name], grads[w.name], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(grads[w.name], central_gradient(f, v, w.name), rtol=1e-6, atol=1e-8)
