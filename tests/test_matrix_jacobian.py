"""Matrix-valued outputs of matrix expressions: jacobian, vjp, jvp (symgrad.matjac), and grad's refusal
to sum them silently.

References are independent of symgrad: every MatrixSymbol becomes an explicit ``sp.Matrix`` of
fresh symbols, SymPy multiplies the expression out (``.doit()``) and ``Matrix.jacobian`` gives
every derivative; and central differences of the compiled value (the value program only).
"""

import functools

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.errors import InputError

X = sp.MatrixSymbol("X", 4, 3)
Xs = sp.MatrixSymbol("X", 2, 3)
W = sp.MatrixSymbol("W", 3, 2)
x = sp.MatrixSymbol("x", 2, 1)
Wl = sp.MatrixSymbol("W", 3, 2)
b = sp.MatrixSymbol("b", 3, 1)
c = sp.MatrixSymbol("c", 1, 2)
a = sp.Symbol("a")

# name -> (expression, wrt, args): outputs 4×2, 2×2, 3×1, 2×3, 2×1 ...
CASES = {
    "X*W": (X * W, [W], [X]),
    "tanh(X*W)": ((Xs * W).applyfunc(sp.tanh), [W], [Xs]),
    "W*x + b": (Wl * x + b, [Wl, b], [x]),
    "tanh(a*(X*W + 1*c))": ((X * W + sp.OneMatrix(4, 1) * c).applyfunc(lambda t: sp.tanh(a * t)), [W, c, a], [X]),
    "(X*W)∘(X*W) transposed times X": (sp.HadamardProduct(Xs * W, Xs * W).T * Xs, [W], [Xs]),
    "Trace(W.T*W)*X*W": (sp.Trace(W.T * W) * (Xs * W), [W], [Xs]),
    "row-wise log-sum-exp": (((X * W).applyfunc(sp.exp) * sp.OneMatrix(2, 1)).applyfunc(sp.log), [W], [X]),
    "X*W*W.T*W + (X*W)^2": (Xs * W * W.T * W + sp.HadamardPower(Xs * W, 2), [W], [Xs]),
    "sigmoid(X*W) with X a parameter too": ((Xs * W).applyfunc(sg.sigmoid), [Xs, W], []),
}


def _values(f, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for p in f.params:
        if isinstance(p, sp.MatrixSymbol):
            out[p.name] = rng.standard_normal(tuple(int(d) for d in p.shape)) * 0.7
        else:
            out[p.name] = 0.8
    return out


def sympy_jacobian(expr, wrt, values):
    """{name: out.shape + param.shape} by SymPy on explicit matrices (nothing of symgrad)."""
    subs, point = {}, {}
    for p in sorted(expr.free_symbols, key=str):
        v = values[p.name]
        if isinstance(p, sp.MatrixSymbol):
            m = sp.Matrix(*p.shape, lambda i, j: sp.Symbol("%s_%d_%d" % (p.name, i, j), real=True))
            subs[p] = m
            point.update({m[i, j]: v[i, j] for i in range(m.rows) for j in range(m.cols)})
        else:
            s = sp.Symbol(p.name + "_", real=True)
            subs[p] = s
            point[s] = v
    out = sp.Matrix(expr.subs(subs).doit())
    flat = out.reshape(len(out), 1)
    jac = {}
    for w in wrt:
        entries = list(subs[w]) if isinstance(w, sp.MatrixSymbol) else [subs[w]]
        J = flat.jacobian(entries).xreplace({k: sp.Float(float(val), 30) for k, val in point.items()}).evalf(30)
        pshape = tuple(int(d) for d in w.shape) if isinstance(w, sp.MatrixSymbol) else ()
        jac[w.name] = np.array(J.tolist(), dtype=float).reshape(tuple(out.shape) + pshape)
    return jac


def central_jacobian(f, values, eps=1e-6):
    """{name: out.shape + param.shape} by central differences of the compiled value."""
    jac = {}
    for w in f.wrt:
        v0 = np.asarray(values[w.name], dtype=float)
        cols = []
        for k in range(v0.size):
            e = np.zeros(v0.size)
            e[k] = eps
            e = e.reshape(v0.shape)
            hi = f(**dict(values, **{w.name: v0 + e if v0.shape else float(v0 + e)}))
            lo = f(**dict(values, **{w.name: v0 - e if v0.shape else float(v0 - e)}))
            cols.append((hi - lo) / (2 * eps))
        out_shape = np.shape(cols[0])
        jac[w.name] = np.stack(cols, axis=-1).reshape(out_shape + v0.shape)
    return jac


@pytest.fixture(scope="module")
def compiled():
    return {name: sg.compile(e, wrt=wrt, args=args) for name, (e, wrt, args) in CASES.items()}


@functools.lru_cache(maxsize=None)
def reference(name):
    """(values, SymPy's Jacobian) of case ``name`` at its point (computed once)."""
    expr, wrt, args = CASES[name]
    v = _values(sg.compile(expr, wrt=wrt, args=args))
    return v, sympy_jacobian(expr, wrt, v)


@pytest.mark.parametrize("mode", [None, "reverse", "forward"])
@pytest.mark.parametrize("name", list(CASES))
def test_jacobian_matches_sympy_and_central_differences(compiled, name, mode):
    f = compiled[name]
    wrt = CASES[name][1]
    v, ref = reference(name)
    f.jacobian_mode = mode
    try:
        J = f.jacobian(**v)
    finally:
        f.jacobian_mode = None
    fd = central_jacobian(f, v)
    out_shape = np.shape(f(**v))
    for w in wrt:
        pshape = np.shape(v[w.name])
        assert J[w.name].shape == out_shape + pshape
        np.testing.assert_allclose(J[w.name], ref[w.name], rtol=1e-12, atol=1e-13, err_msg=name + " " + w.name)
        np.testing.assert_allclose(J[w.name], fd[w.name], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", list(CASES))
def test_vjp_against_sympy_and_the_transpose_identity(compiled, name):
    """vjp(u) = Σ u∘J by SymPy, and ⟨u, J v⟩ (central differences along v) = ⟨Jᵀu, v⟩."""
    f = compiled[name]
    wrt = CASES[name][1]
    v, ref = reference(name)
    rng = np.random.default_rng(3)
    out = f(**v)
    u = rng.standard_normal(out.shape)
    got = f.vjp(u, **v)
    for w in wrt:
        want = np.tensordot(u, ref[w.name], axes=u.ndim)
        np.testing.assert_allclose(got[w.name], want, rtol=1e-12, atol=1e-13)
        assert np.shape(got[w.name]) == np.shape(v[w.name])
    t = {w.name: rng.standard_normal(np.shape(v[w.name])) for w in wrt}
    eps = 1e-6
    hi = f(**{k: val + eps * t[k] if k in t else val for k, val in v.items()})
    lo = f(**{k: val - eps * t[k] if k in t else val for k, val in v.items()})
    u_jv = float(np.vdot(u, (hi - lo) / (2 * eps)))
    jtu_v = sum(float(np.vdot(got[k], t[k])) for k in t)
    assert jtu_v == pytest.approx(u_jv, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("name", list(CASES))
def test_jvp_gives_the_output_tangent_shaped_like_the_output(compiled, name):
    f = compiled[name]
    wrt = CASES[name][1]
    v, ref = reference(name)
    rng = np.random.default_rng(4)
    t = {w.name: rng.standard_normal(np.shape(v[w.name])) if np.shape(v[w.name]) else 0.3 for w in wrt}
    value, dot = f.jvp(t, **v)
    np.testing.assert_allclose(value, f(**v), rtol=1e-14)
    want = sum(np.tensordot(ref[k], np.asarray(t[k]), axes=np.ndim(t[k])) for k in t)
    assert isinstance(dot, np.ndarray) and dot.shape == value.shape
    np.testing.assert_allclose(dot, want, rtol=1e-12, atol=1e-13)


def test_symbolic_batch_dimension_both_paths_and_chunks():
    """X: n×3 with n bound at call time; rows, columns and one direction per call agree."""
    n = sp.Symbol("n", integer=True, positive=True)
    Xn, cn = sp.MatrixSymbol("X", n, 3), sp.MatrixSymbol("c", 1, 2)
    e = (Xn * W + sp.OneMatrix(n, 1) * cn).applyfunc(lambda t: sp.tanh(a * t))
    f = sg.compile(e, wrt=[W, cn, a], args=[Xn])
    rng = np.random.default_rng(5)
    v = {"X": rng.standard_normal((7, 3)), "W": rng.standard_normal((3, 2)), "c": rng.standard_normal((1, 2)),
         "a": 0.6}
    fd = central_jacobian(f, v)
    results = []
    for mode in ("reverse", "forward"):
        for budget in (2 ** 24, 1, 40):
            f.jacobian_mode, f.jacobian_budget = mode, budget
            results.append(f.jacobian(**v))
    f.jacobian_mode, f.jacobian_budget = None, 2 ** 24
    for J in results:
        assert J["W"].shape == (7, 2, 3, 2) and J["c"].shape == (7, 2, 1, 2) and J["a"].shape == (7, 2)
        for k in J:
            np.testing.assert_allclose(J[k], results[0][k], rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(J[k], fd[k], rtol=1e-6, atol=1e-8)


def test_jacobian_takes_the_cheaper_sweep(compiled, monkeypatch):
    """Output entries vs parameter entries: X*W (8 outputs, 6 weights) by columns, tanh(X*W) (4 outputs) by rows."""
    calls = []
    for kind in ("_jacobian_rows", "_jacobian_columns"):
        original = getattr(type(compiled["X*W"]), kind)
        monkeypatch.setattr(type(compiled["X*W"]), kind,
                            lambda self, *a, _o=original, _k=kind: calls.append(_k) or _o(self, *a))
    compiled["X*W"].jacobian(**_values(compiled["X*W"]))
    compiled["tanh(X*W)"].jacobian(**_values(compiled["tanh(X*W)"]))
    assert calls == ["_jacobian_columns", "_jacobian_rows"]


def test_grad_refuses_a_matrix_output_unless_reduce_is_given():
    f = sg.compile(X * W, wrt=[W], args=[X])
    v = _values(f)
    for call in (lambda: f.grad(**v), lambda: f.value_and_grad(**v), lambda: f.hvp({"W": v["W"]}, **v),
                 lambda: f.hessian(**v), lambda: f.hessian_diag(**v)):
        with pytest.raises(InputError, match=r"the output X\*W is a 4×2 matrix; use f\.jacobian\(\.\.\.\).*"
                                             r"f\.vjp\(cotangent, \.\.\.\).*reduce='sum'"):
            call()
    assert f.reduce == "sum"  # the default is still called "sum"
    total = sg.compile(X * W, wrt=[W], args=[X], reduce="sum")
    mean = sg.compile(X * W, wrt=[W], args=[X], reduce="mean")
    ones = f.vjp(np.ones((4, 2)), **v)["W"]
    np.testing.assert_allclose(total.grad(**v)["W"], ones, rtol=1e-14)
    np.testing.assert_allclose(mean.grad(**v)["W"], ones / 8, rtol=1e-14)
    value, grads = total.value_and_grad(**v)
    assert value == pytest.approx(float(np.sum(f(**v))), rel=1e-14)
    np.testing.assert_allclose(grads["W"], ones, rtol=1e-14)


def test_a_one_by_one_output_and_a_scalar_loss_are_one_number():
    v1 = sp.MatrixSymbol("v", 3, 1)
    f = sg.compile(v1.T * W * x, wrt=[W], args=[v1, x])  # 1×1: grad as before
    vals = {"v": np.array([[1.0], [2.0], [3.0]]), "x": np.array([[1.0], [-1.0]]), "W": np.ones((3, 2))}
    g = f.grad(**vals)["W"]
    np.testing.assert_allclose(g, vals["v"] @ vals["x"].T)
    np.testing.assert_allclose(f.jacobian(**vals)["W"], g.reshape(1, 1, 3, 2))
    np.testing.assert_allclose(f.vjp(np.array([[2.0]]), **vals)["W"], 2 * g)
    loss = sg.compile(sp.Trace(W.T * W), wrt=[W])  # a scalar loss: its Jacobian is its gradient
    w0 = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(loss.jacobian(W=w0)["W"], 2 * w0)
    np.testing.assert_allclose(loss.vjp(3.0, W=w0)["W"], 6 * w0)


def test_wrong_cotangent_shapes_name_both_shapes(compiled):
    f = compiled["X*W"]
    v = _values(f)
    for bad, shape in ((np.ones((2, 4)), r"\(2, 4\)"), (np.ones(8), r"\(8,\)"), (1.0, r"\(\)"),
                       (np.ones((1, 4, 2)), r"\(1, 4, 2\)"), ([[1.0, 2.0]], r"\(1, 2\)")):
        with pytest.raises(InputError, match=r"the cotangent has shape %s but the output X\*W has shape \(4, 2\); "
                                             r"pass one weight per output entry" % shape):
            f.vjp(bad, **v)
    with pytest.raises(InputError, match=r"'cotangent' contains nan"):
        f.vjp(np.full((4, 2), np.nan), **v)
    with pytest.raises(InputError, match=r"the cotangent has shape \(2, 2\) but the output"):
        sg.compile(sp.Trace(W.T * W), wrt=[W]).vjp(np.ones((2, 2)), W=np.ones((3, 2)))


def test_jacobian_and_vjp_are_for_matrix_expressions():
    w = sp.Symbol("w")
    f = sg.compile(sp.exp(w), wrt=[w])
    for call in (lambda: f.jacobian(w=1.0), lambda: f.vjp(1.0, w=1.0)):
        with pytest.raises(InputError, match=r"is for matrix expressions.*reduce=None.*sympy\.Matrix"):
            call()


def test_results_are_arrays_of_their_own():
    """jvp of the output W is not the tangent passed in; vjp of W is not the cotangent."""
    f = sg.compile(W, wrt=[W])
    w0, t, u = np.ones((3, 2)), np.arange(6.0).reshape(3, 2), np.arange(6.0).reshape(3, 2) + 1
    value, dot = f.jvp({"W": t}, W=w0)
    np.testing.assert_array_equal(dot, t)
    assert not np.shares_memory(dot, t) and dot.flags.writeable
    g = f.vjp(u, W=w0)["W"]
    np.testing.assert_array_equal(g, u)
    assert not np.shares_memory(g, u) and g.flags.writeable
    J = f.jacobian(W=w0)["W"]
    np.testing.assert_array_equal(J.reshape(6, 6), np.eye(6))
    g2 = sg.compile(X * W, wrt=[W], args=[X])
    v = _values(g2)
    value, dot = g2.jvp({}, **v)  # no tangent given: zero, still shaped like the output
    assert dot.shape == (4, 2) and not dot.any()


def test_check_grads_sums_a_matrix_output_explicitly():
    rng = np.random.default_rng(9)
    sg.check_grads((Xs * W).applyfunc(sp.tanh), wrt=[W], at={Xs: rng.standard_normal((2, 3)),
                                                             W: rng.standard_normal((3, 2))})
