"""Numbers that symgrad's own evaluation order used to get wrong, against high-precision SymPy."""

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.functions import sigmoid

x, y, a = sp.symbols("x y a")


def truth(expr, var, at):
    """d expr/d var at ``at`` from sympy.diff, evaluated with 50 digits (sigmoid spelled out)."""
    e = expr.replace(sigmoid, lambda u: 1 / (1 + sp.exp(-u)))
    d = sp.diff(e, var)
    return float(d.subs({k: sp.Float(v, 60) for k, v in at.items()}).evalf(50))


@pytest.mark.parametrize("at", [40.0, 100.0, 700.0, -40.0, -700.0])
def test_sigmoid_derivative_keeps_its_tail(at):
    f = sg.compile(sigmoid(x), wrt=[x])
    want = truth(sigmoid(x), x, {x: at})
    assert f.grad(x=at)["x"] == pytest.approx(want, rel=1e-12)
    assert f.jvp({"x": 1.0}, x=at)[1] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("at", [5e-324, 1e-310, 1e-300, 1e-5])
def test_x_log_x_in_forward_mode_at_tiny_x(at):
    f = sg.compile(x * sp.log(x), wrt=[x])
    want = truth(x * sp.log(x), x, {x: at})
    assert f.jvp({"x": 1.0}, x=at)[1] == pytest.approx(want, rel=1e-12)
    assert f.grad(x=at)["x"] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("expr", [sp.sqrt(x**2), sp.sqrt(x**4), (x**2)**sp.Rational(3, 2), (x**6)**sp.Rational(1, 3)])
def test_roots_of_even_powers_are_finite_at_0(expr):
    f = sg.compile(expr, wrt=[x])
    assert f.grad(x=0.0)["x"] == 0.0  # |x|'s kink rule; x**2, |x|**3: the derivative is 0
    for at in (-1.5, 2.0):
        assert f.grad(x=at)["x"] == pytest.approx(truth(expr.subs(x, sp.Symbol("t", real=True)), sp.Symbol("t", real=True),
                                                        {sp.Symbol("t", real=True): at}), rel=1e-12)


def test_hypot_at_the_origin_is_the_min_norm_subgradient():
    f = sg.compile(sp.sqrt(x**2 + y**2), wrt=[x, y])
    assert [r.rule for r in f.rewrites] == ["hypot"]
    assert f.grad(x=0.0, y=0.0) == {"x": 0.0, "y": 0.0}
    assert f.grad(x=3e200, y=4e200) == {"x": pytest.approx(0.6), "y": pytest.approx(0.8)}


def test_a_rewrite_never_cancels_a_batched_input():
    X = np.arange(4.0)
    f = sg.compile(sp.log(sp.exp(a - x)) + x, wrt=[a, x])
    v = f(a=1.5, x=X)
    assert np.shape(v) == (4,) and np.allclose(v, 1.5)  # log(exp(1.5 - x)) + x, elementwise
    g = f.grad(a=1.5, x=X)
    assert g["a"] == pytest.approx(4.0)  # the sum over the batch of d/da = 1
    assert g["x"].shape == (4,) and g["x"].dtype == np.float64 and np.all(g["x"] == 0.0)
    h = sg.compile(2 * (sp.log(sp.exp(a - x)) + x) * sp.log(1 + sp.exp(a)), wrt=[a, x])
    assert "softplus" in [r.rule for r in h.rewrites]  # the rest still rewrites
    assert np.shape(h(a=800.0, x=X)) == (4,) and np.all(np.isfinite(h(a=800.0, x=X)))
