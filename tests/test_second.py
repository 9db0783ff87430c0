"""Second order (hvp, hessian, hessian_diag) against independent references: sympy.hessian at 30
digits for the scalar catalogue, closed forms (logistic regression XᵀSX), and second-order central
differences of the 30-digit matrix reference for the network catalogue."""

import os
import sys

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.errors import InputError, UnsupportedError

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib keeps tests/ off sys.path
from catalogue import CATALOGUE, params  # noqa: E402
import test_matrix_catalogue as M  # noqa: E402

DIGITS = 30


def sympy_hessian(case):
    """{a: {b: ∂²/∂a∂b}} of the case's value summed over its batch, by sympy.hessian at 30 digits."""
    real = {s: sp.Symbol(s.name, real=True) for s in case.expr.free_symbols}  # |u|'' over the reals
    wrt = [real[w] for w in case.wrt]
    H = sp.hessian(case.expr.xreplace(real), wrt)
    n = max([np.size(v) for v in case.at.values()] + [1])
    out = {}
    for k in range(n):
        point = {real[s]: sp.Float(float(np.ravel(v)[k] if np.size(v) > 1 else np.ravel(v)[0]), DIGITS)
                 for s, v in case.at.items()}
        Hk = H.xreplace(point).evalf(DIGITS)
        for i, a in enumerate(wrt):
            for j, b in enumerate(wrt):
                out.setdefault(a.name, {}).setdefault(b.name, 0.0)
                out[a.name][b.name] += float(Hk[i, j])
    return out


SCALAR = [p for p in params() if not getattr(p, "marks", None)]


@pytest.mark.parametrize("name", SCALAR)
def test_scalar_hessian_matches_sympy_hessian(name):
    case = CATALOGUE[name]
    if case.needs_scipy:
        pytest.importorskip("scipy")
    if any(np.size(v) > 1 for s, v in case.at.items() if s in case.wrt):
        pytest.skip("array-valued parameters: covered by the diagonal test")
    f = sg.compile(case.expr, wrt=case.wrt, args=case.args)
    want = sympy_hessian(case)
    got = f.hessian(**case.values)
    for a in want:
        for b in want[a]:
            assert got[a][b] == pytest.approx(want[a][b], rel=1e-8, abs=1e-10), (a, b)
            assert got[a][b] == pytest.approx(got[b][a], rel=1e-10, abs=1e-12)  # symmetric without symmetrising
    diag = f.hessian_diag(**case.values)
    for a in want:
        assert diag[a] == pytest.approx(want[a][a], rel=1e-8, abs=1e-10)
    # one HVP along a direction is the Hessian times it
    v = {a: 0.5 + i for i, a in enumerate(want)}
    hv = f.hvp(v, **case.values)
    for a in want:
        assert hv[a] == pytest.approx(sum(want[a][b] * v[b] for b in want), rel=1e-8, abs=1e-10)


def test_array_parameter_diagonal_and_full_hessian():
    x, w = sp.symbols("x w")
    f = sg.compile(sp.sin(w * x) + w**3, wrt=[w], args=[x])
    W = np.array([0.3, -1.2, 2.0])
    X = np.array([0.7, 1.1, -0.4])
    truth = -X**2 * np.sin(W * X) + 6 * W  # each entry of w meets one sample: a diagonal Hessian
    assert np.allclose(f.hessian_diag(x=X, w=W)["w"], truth, rtol=1e-12)
    H = f.hessian(x=X, w=W)["w"]["w"]
    assert H.shape == (3, 3) and np.allclose(H, np.diag(truth), rtol=1e-12, atol=1e-15)


def test_mean_reduction_divides_by_the_batch():
    x, w = sp.symbols("x w")
    X = np.array([0.5, 1.0, 2.0, 3.0])
    f = sg.compile(sp.exp(w * x), wrt=[w], args=[x], reduce="mean")
    assert f.hessian(x=X, w=0.2)["w"]["w"] == pytest.approx(np.mean(X**2 * np.exp(0.2 * X)), rel=1e-13)


def logistic():
    n, d = sp.symbols("n d", integer=True, positive=True)
    X, w, y = sp.MatrixSymbol("X", n, d), sp.MatrixSymbol("w", d, 1), sp.MatrixSymbol("y", n, 1)
    z = X * w
    loss = sp.Trace(sp.OneMatrix(1, n) * (z.applyfunc(sg.functions.softplus) - sp.HadamardProduct(y, z)))
    return sg.compile(loss, wrt=[w], args=[X, y])


def test_logistic_regression_hessian_is_x_t_s_x():
    f = logistic()
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 5))
    y = (rng.random((40, 1)) < 0.5).astype(float)
    w = rng.normal(size=(5, 1)) * 0.5
    Xc, yc, wc = X.copy(), y.copy(), w.copy()
    s = 1 / (1 + np.exp(-X @ w))
    H = X.T @ (s * (1 - s) * X)
    got = f.hessian(X=X, y=y, w=w)["w"]["w"]
    assert got.shape == (5, 1, 5, 1)
    assert np.allclose(got.reshape(5, 5), H, rtol=1e-12, atol=1e-13)
    assert np.allclose(f.hessian_diag(X=X, y=y, w=w)["w"].ravel(), np.diag(H), rtol=1e-12)
    v = rng.normal(size=(5, 1))
    assert np.allclose(f.hvp({"w": v}, X=X, y=y, w=w)["w"], H @ v, rtol=1e-12, atol=1e-13)
    assert np.array_equal(X, Xc) and np.array_equal(y, yc) and np.array_equal(w, wc)  # inputs untouched
    # the program is the structure: a product, one elementwise line, a transposed product
    body = f.hvp_source[f.hvp_source.index("def hvp"):].splitlines()
    assert sum(" = " in line for line in body) <= 8


def second_difference(case, vals, u, v, h=1e-5):
    """uᵀ H v by central differences of the 30-digit reference value."""
    def at(p, q):
        return M.reference(case.expr, {k: (val + p * h * u.get(k, 0) + q * h * v.get(k, 0)) for k, val in vals.items()},
                           case.batch)
    return (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * h * h)


NETWORKS = ["act_tanh", "act_swish", "act_gauss", "mse", "softmax_xent_naive", "tied_x_w_wt", "residual"]


@pytest.mark.parametrize("name", [n for n in NETWORKS if n in M.CATALOGUE])
def test_network_hvp_matches_second_differences(name):
    case, f, vals, d = M.setup(name)
    rng = np.random.default_rng(7)
    u = {k: rng.standard_normal(np.shape(vals[k])) for k in d}
    hv = f.hvp(d, **vals)
    for k in d:
        assert np.shape(hv[k]) == np.shape(vals[k])
    got = sum(float(np.sum(hv[k] * u[k])) for k in d)
    want = second_difference(case, vals, u, d)
    assert got == pytest.approx(want, rel=1e-5, abs=1e-7)


def test_relu_network_hvp_is_finite_and_zero_curvature_from_the_kinks():
    net = sg.nn.mlp([3, 4, 1], activation="relu", loss="mse")
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    rng = np.random.default_rng(0)
    p = sg.nn.init_params(net, seed=1)
    data = {"X": rng.normal(size=(6, 3)), "Y": rng.normal(size=(6, 1))}
    v = {k: rng.normal(size=np.shape(a)) for k, a in p.items()}
    hv = f.hvp(v, **data, **p)
    assert all(np.all(np.isfinite(h)) for h in hv.values())
    # away from kinks relu is piecewise linear: finite differences of the gradient agree
    eps = 1e-6
    gp = f.grad(**data, **{k: p[k] + eps * v[k] for k in p})
    gm = f.grad(**data, **{k: p[k] - eps * v[k] for k in p})
    for k in p:
        assert np.allclose(hv[k], (gp[k] - gm[k]) / (2 * eps), rtol=1e-5, atol=1e-6)


def test_bad_directions_are_clear_errors():
    x, w, b = sp.symbols("x w b")
    f = sg.compile(sp.exp(w * x + b), wrt=[w, b])
    with pytest.raises(InputError, match="'q', which is not a parameter"):
        f.hvp({"q": 1.0}, x=1.0, w=0.0, b=0.0)
    g = logistic()
    with pytest.raises(InputError, match="direction for 'w' has shape"):
        g.hvp({"w": np.ones(3)}, X=np.ones((4, 2)), y=np.ones((4, 1)), w=np.ones((2, 1)))


def test_a_function_without_a_second_derivative_is_named():
    x = sp.Symbol("x")

    class unknown_prime(sp.Function):  # printable, but with no derivative of its own
        def _numpycode(self, printer):
            return "%s(%s)" % (printer._module_format("numpy.cos"), printer._print(self.args[0]))

    class once(sp.Function):
        def fdiff(self, argindex=1):
            return unknown_prime(self.args[0])

        def _numpycode(self, printer):
            return "%s(%s)" % (printer._module_format("numpy.sin"), printer._print(self.args[0]))

    f = sg.compile(once(x), wrt=[x])
    assert f.grad(x=0.5)["x"] == pytest.approx(np.cos(0.5))
    with pytest.raises(UnsupportedError, match="unknown_prime"):
        f.hvp({"x": 1.0}, x=0.5)
