"""Edge points where a naive partial is 0/0 or 0·inf but the truth is finite, and constants
that are not real: right numbers or a clear error, checked against sympy limits and closed forms."""

import numpy as np
import pytest
import sympy as sp

import symgrad as sg

x, y, h = sp.symbols("x y h")


@pytest.mark.parametrize("point", [(0.0, 2.0), (0.0, 3.5), (2.0, 3.0), (0.5, -1.5)])
def test_power_with_a_variable_exponent(point):
    xv, yv = point
    g = sg.compile(x ** y, wrt=[x, y]).grad(x=xv, y=yv)
    # the truth: limits of sympy.diff at the point (at x = 0, y > 1 both partials are 0)
    for s, v in ((x, g["x"]), (y, g["y"])):
        d = sp.diff(x ** y, s)
        truth = sp.limit(d.subs(y, sp.nsimplify(yv)), x, sp.nsimplify(xv), "+") if xv == 0 else d.subs({x: xv, y: yv})
        assert v == pytest.approx(float(truth), rel=1e-12, abs=1e-300)


def test_sinc_at_zero_and_elsewhere():
    f = sg.compile(sp.sinc(x), wrt=[x])
    assert f.grad(x=0.0)["x"] == 0.0 == float(sp.limit(sp.diff(sp.sin(x) / x, x), x, 0))
    xs = np.array([0.0, 0.5, -2.0])
    np.testing.assert_allclose(f.grad(x=xs)["x"], [0.0] + [float(sp.diff(sp.sin(x) / x, x).subs(x, v)) for v in xs[1:]],
                               rtol=1e-13)


def test_heaviside_value_argument_at_the_jump():
    f = sg.compile(sp.Heaviside(x, h), wrt=[x, h])
    assert f(x=0.0, h=0.3) == 0.3
    assert f.grad(x=0.0, h=0.3) == {"x": 0.0, "h": 1.0}  # Heaviside(0, h) = h
    assert f.grad(x=2.0, h=0.3) == {"x": 0.0, "h": 0.0}


@pytest.mark.parametrize("constant", [(-8) ** sp.Rational(1, 3), sp.sqrt(-2), sp.I * 0 + sp.log(-1)])
def test_a_complex_constant_is_refused_by_name(constant):
    with pytest.raises(sg.InputError, match="not a real number"):
        sg.compile(x + constant, wrt=[x])


def test_real_constants_are_accepted():
    assert sg.compile(x * sp.real_root(-8, 3) + sp.sqrt(2) + sp.pi, wrt=[x]).grad(x=1.0)["x"] == -2.0


def test_evaluation_order_keeps_intermediates_in_range():
    f = sg.compile(x / y, wrt=[x, y])
    g = f.grad(x=1e-300, y=1e-300)
    assert g["y"] == pytest.approx(-1e300, rel=1e-12)  # -x/y**2, not -inf from (1/y)**2
    _, dot = f.jvp({"x": 1.0, "y": 0.0}, x=1.0, y=1e-200)
    assert dot == pytest.approx(1e200, rel=1e-12)  # the zero tangent of y times inf is not nan


def test_hypot_rewrite_at_huge_magnitudes():
    f = sg.compile(sp.sqrt(x ** 2 + y ** 2), wrt=[x, y])
    assert [r.rule for r in f.rewrites] == ["hypot"]
    assert f(x=1e200, y=1e200) == pytest.approx(np.sqrt(2) * 1e200, rel=1e-15)
    g = f.grad(x=3e200, y=4e200)
    assert g["x"] == pytest.approx(0.6, rel=1e-14) and g["y"] == pytest.approx(0.8, rel=1e-14)


B = sp.Symbol("B", integer=True, positive=True)


def test_naive_binary_cross_entropy_in_a_network_at_logit_40():
    X, Y, w = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("Y", B, 1), sp.MatrixSymbol("w", 2, 1)
    P, ones = (X * w).applyfunc(sg.sigmoid), sp.OneMatrix(B, 1)
    L = -(sp.Trace(Y.T * P.applyfunc(sp.log)) + sp.Trace((ones - Y).T * (ones - P).applyfunc(sp.log))) / B
    f = sg.compile(L, wrt=[w], args=[X, Y])
    Xv, Yv, wv = np.array([[40.0, 1.0], [-40.0, 2.0]]), np.array([[0.0], [1.0]]), np.array([[1.0], [0.0]])
    loss, g = f.value_and_grad(X=Xv, Y=Yv, w=wv)
    z = (Xv @ wv).ravel()  # the truth from the stable closed form softplus(z) - y z, d/dz = sigmoid(z) - y
    assert loss == pytest.approx(np.mean(np.logaddexp(0, z) - Yv.ravel() * z), rel=1e-14)
    dz = (1 / (1 + np.exp(-z)) - Yv.ravel()) / 2
    np.testing.assert_allclose(g["w"].ravel(), Xv.T @ dz, rtol=1e-13)


def test_log_of_a_softmax_at_a_logit_spread_of_800():
    Z, Y = sp.MatrixSymbol("Z", B, 3), sp.MatrixSymbol("Y", B, 3)
    f = sg.compile(sp.Trace(Y.T * sg.nn.softmax(Z).applyfunc(sp.log)), wrt=[Z], args=[Y])
    Zv, Yv = np.array([[0.0, 800.0, -5.0]]), np.array([[1.0, 0.0, 0.0]])
    loss, g = f.value_and_grad(Z=Zv, Y=Yv)
    lse = 800.0 + np.log1p(np.exp(-800.0) + np.exp(-805.0))
    assert loss == pytest.approx(0.0 - lse, rel=1e-15)
    soft = np.exp(Zv - lse)
    np.testing.assert_allclose(g["Z"], Yv - soft, atol=1e-15)
