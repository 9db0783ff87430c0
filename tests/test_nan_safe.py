"""NaN-safe branches: a Piecewise derivative evaluates only the branch that is taken.

The generated functions are called directly, with warnings as errors and NumPy's
floating-point errors raising, so nothing is hidden by CompiledFunction's errstate.
"""

import warnings

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.sweeps import branch_conditions
from symgrad.graph import decompose

x, y = sp.symbols("x y")

# name -> (expression, points, derivative d/dx at each point)
CASES = {
    "sqrt or identity": (sp.Piecewise((sp.sqrt(x), x > 0), (x, True)), [-1.0, 4.0, 0.0], [1.0, 0.25, 1.0]),
    "log branch": (sp.Piecewise((sp.log(x) * x, x > 0), (0, True)), [-2.0, 0.0, np.e], [0.0, 0.0, 2.0]),
    "shifted sqrt": (sp.Piecewise((sp.sqrt(x - 1), x > 1), (x ** 2, True)), [1.0, -3.0, 5.0], [2.0, -6.0, 0.25]),
    "exp overflow": (sp.Piecewise((sp.exp(x), x < 0), (1 + x, True)), [1000.0, -1.0, 0.0], [1.0, np.exp(-1), 1.0]),
    "reciprocal": (sp.Piecewise((1 / x, sp.Ne(x, 0)), (0, True)), [0.0, 2.0], [0.0, -0.25]),
    "acosh": (sp.Piecewise((sp.acosh(x), x >= 2), (x / 2, True)), [0.5, -7.0, 3.0], [0.5, 0.5, 1 / np.sqrt(8)]),
    "nested": (sp.Piecewise((sp.Piecewise((sp.log(x), x > 1), (sp.sqrt(x), True)), x > 0), (x, True)),
               [-1.0, 0.25, 4.0], [1.0, 1.0, 0.25]),
    "power": (sp.Piecewise((x ** sp.Rational(3, 2) + x ** -2, x > 0), (-x, True)), [-1.0, 0.0, 1.0], [-1.0, -1.0, -0.5]),
}


def call_raw(f, kind, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            return f.functions[kind](*args)


@pytest.mark.parametrize("name", CASES)
def test_scalar_calls_have_no_nan_and_no_warning(name):
    expr, points, slopes = CASES[name]
    f = sg.compile(expr, wrt=[x], args=[])
    for p, s in zip(points, slopes):
        value, (g,) = call_raw(f, "reverse", p)
        _, dot = call_raw(f, "forward", p, 1.0)
        assert np.isfinite(value) and g == pytest.approx(s) and dot == pytest.approx(s)
        assert call_raw(f, "value", p) == value


@pytest.mark.parametrize("name", CASES)
def test_batched_calls_with_mixed_branches(name):
    expr, points, slopes = CASES[name]
    f = sg.compile(expr, wrt=[x], args=[])
    X = np.array(points)  # one batch mixing the branches
    value, (g,) = call_raw(f, "reverse", X)
    _, dot = call_raw(f, "forward", X, np.ones_like(X))
    assert np.isfinite(value).all() and list(g) == pytest.approx(slopes) and list(dot) == pytest.approx(slopes)
    h = sg.compile(expr * y, wrt=[x], args=[y])  # a scalar parameter, gradient summed over the batch
    for p, s in zip(points, slopes):
        value, (g,) = call_raw(h, "reverse", np.ones(3), p)
        assert value.shape == (3,) and g == pytest.approx(3 * s)


def test_the_required_example_through_the_public_api():
    f = sg.compile(sp.Piecewise((sp.sqrt(x), x > 0), (x, True)), wrt=[x], args=[])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f.grad(x=-1.0) == {"x": 1.0}
        assert list(f.grad(x=np.array([-1.0, 4.0, -9.0]))["x"]) == [1.0, 0.25, 1.0]


@pytest.mark.parametrize("name", ["sqrt or identity", "shifted sqrt", "nested", "acosh"])
def test_check_grads_in_every_branch(name):
    expr, points, _ = CASES[name]
    for p in points:
        if p not in (0.0, 1.0, 2.0):  # away from the boundaries, where finite differences straddle
            sg.check_grads(expr, wrt=[x], at={x: p})


def test_tables_evaluate_the_taken_branch_only():
    t = sg.table(sp.Piecewise((sp.sqrt(x), x > 0), (x, True)), wrt=x, at={x: -1})
    assert t.gradient["x"] == 1 and t.value == -1


def test_only_nodes_under_a_branch_are_guarded():
    g = decompose(sp.Piecewise((sp.sqrt(x), x > 0), (x, True)) + sp.exp(x))
    assert list(branch_conditions(g).values()) == [x > 0]
    shared = decompose(sp.Piecewise((sp.sqrt(x), x > 0), (x, True)) + sp.sqrt(x))
    assert branch_conditions(shared) == {}  # sqrt(x) is also needed outside the branch
    f = sg.compile(sp.exp(x) * sp.log(y), wrt=[x], args=[y])
    assert "np.where" not in f.source  # no branches, no guards


class _pole(sp.Function):
    """A user function with a pole at 0 and no safe point symgrad knows: f(t) = 1/t."""

    def fdiff(self, argindex=1):
        return -1 / self.args[0] ** 2

    def _numpycode(self, printer):
        return "(1/(%s))" % printer._print(self.args[0])


# functions without a known safe input: the untaken branch's derivative is masked, never 0*nan
NO_SAFE_POINT = {
    "atan2 at the origin": (sp.Piecewise((sp.atan2(y, x), x > 0), (y, True)), {x: 0.0, y: 0.0}, {x: 0.0, y: 1.0}),
    "polygamma at -1": (sp.Piecewise((sp.polygamma(1, x), x > 0), (x, True)), {x: -1.0, y: 0.0}, {x: 1.0, y: 0.0}),
    "user pole at 0": (sp.Piecewise((_pole(x) * y, x > 0), (x * y, True)), {x: 0.0, y: 3.0}, {x: 3.0, y: 0.0}),
    "product with a nan value": (sp.Piecewise((sp.atan2(y, x) * y, x > 0), (2 * y, True)), {x: 0.0, y: 0.0},
                                 {x: 0.0, y: 2.0}),
}


@pytest.mark.parametrize("name", NO_SAFE_POINT)
def test_branches_without_a_safe_point_are_masked(name):
    expr, point, truth = NO_SAFE_POINT[name]
    wrt = [x, y]
    f = sg.compile(expr, wrt=wrt, args=[])
    vals = {s.name: v for s, v in point.items()}
    g = f.grad(**vals)
    for s in wrt:  # the taken branch's derivative, by hand
        assert g[s.name] == pytest.approx(truth[s], abs=1e-12), (s, g)
    _, dot = f.jvp({"x": 1.0, "y": 1.0}, **vals)
    assert dot == pytest.approx(truth[x] + truth[y], abs=1e-12)
    # batched: the same point next to one where the other branch is taken, checked by central differences
    xs, ys = np.array([point[x], 1.5]), np.array([point[y], 0.5])
    gb = f.grad(x=xs, y=ys)
    assert np.all(np.isfinite(gb["x"])) and gb["x"][0] == pytest.approx(truth[x], abs=1e-12)
    h = 1e-6
    fd = (f(x=xs[1] + h, y=ys[1]) - f(x=xs[1] - h, y=ys[1])) / (2 * h)
    assert gb["x"][1] == pytest.approx(fd, rel=1e-6)
