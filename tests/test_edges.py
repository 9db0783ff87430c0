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
