"""One derivative convention at kinks, whatever the spelling (symgrad.functions.KINK)."""

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.functions import KINKS, leaky_relu, relu
from symgrad.rules import kink, kink_note

x, y = sp.symbols("x y")
A = sp.Rational(1, 10)

RELU = {"Max(x, 0)": sp.Max(x, 0), "Max(0, x)": sp.Max(0, x),
        "Piecewise": sp.Piecewise((x, x > 0), (0, True)), "relu": relu(x)}
LEAKY = {"leaky_relu": leaky_relu(x, A), "Max(a*x, x)": sp.Max(A * x, x), "Max(x, a*x)": sp.Max(x, A * x),
         "Piecewise": sp.Piecewise((x, x > 0), (A * x, True)), "float alpha": sp.Max(0.1 * x, x)}
ABS = {"Abs": sp.Abs(x), "Max(x, -x)": sp.Max(x, -x)}
MIN = {"Min(x, 0)": sp.Min(x, 0), "-relu(-x)": -relu(-x), "Min(x, a*x)": sp.Min(x, A * x)}


def slope(expr, at):
    f = sg.compile(expr, wrt=[x], args=[])
    g = f.grad(x=at)["x"]
    _, dot = f.jvp({"x": 1.0}, x=at)
    assert g == pytest.approx(dot)  # forward and reverse agree at the kink too
    return g


@pytest.mark.parametrize("name", RELU)
def test_relu_is_0_at_0_in_every_spelling(name):
    assert slope(RELU[name], 0.0) == 0.0
    assert slope(RELU[name], 1.0) == 1.0 and slope(RELU[name], -1.0) == 0.0


@pytest.mark.parametrize("name", LEAKY)
def test_leaky_relu_is_alpha_at_0_in_every_spelling(name):
    assert slope(LEAKY[name], 0.0) == pytest.approx(0.1)
    assert slope(LEAKY[name], 2.0) == 1.0 and slope(LEAKY[name], -2.0) == pytest.approx(0.1)


@pytest.mark.parametrize("name", ABS)
def test_abs_is_0_at_0(name):
    assert slope(ABS[name], 0.0) == 0.0
    assert slope(ABS[name], -3.0) == -1.0 and slope(ABS[name], 3.0) == 1.0


@pytest.mark.parametrize("name", MIN)
def test_min_spellings_follow_the_same_rule(name):
    # Min(x, 0): one-sided slopes 1 and 0 -> 0; Min(x, x/10): 1/10 (the slope closest to 0).
    assert slope(MIN[name], 0.0) == pytest.approx(0.1 if "a*x" in name else 0.0)


def test_tables_use_the_same_convention():
    for expr in list(RELU.values()) + list(ABS.values()):
        assert sg.table(expr, wrt=x, at={x: 0}).gradient["x"] == 0
    for expr in LEAKY.values():
        assert float(sg.table(expr, wrt=x, at={x: 0}).gradient["x"]) == pytest.approx(0.1)


def test_batched_call_with_the_kink_inside():
    f = sg.compile(sp.Max(A * x, x) + relu(x), wrt=[x], args=[])
    X = np.array([-1.0, 0.0, 1.0])
    _, dot = f.jvp({"x": np.ones(3)}, x=X)
    assert list(dot) == pytest.approx([0.1, 0.1, 2.0])


def test_ties_between_unrelated_arguments_split_the_derivative():
    f = sg.compile(sp.Max(x, y), wrt=[x, y], args=[])
    assert f.grad(x=1.0, y=1.0) == {"x": 0.5, "y": 0.5}
    g = sg.compile(sp.Max(x, y, 0), wrt=[x, y], args=[])
    assert g.grad(x=0.0, y=0.0) == {"x": 0.0, "y": 0.0}  # the constant 0 is tied: min-norm is 0
    assert g.grad(x=2.0, y=2.0) == {"x": 0.5, "y": 0.5}
    assert g.grad(x=2.0, y=1.0) == {"x": 1.0, "y": 0.0}


@pytest.mark.parametrize("name, relu0, leaky0, abs0", [("mean", 0.5, 0.55, 0.0), ("right", 1.0, 1.0, 1.0),
                                                       ("min-norm", 0.0, 0.1, 0.0)])
def test_other_conventions_are_one_setting(name, relu0, leaky0, abs0):
    with kink(name):
        for e in (sp.Max(x, 0), sp.Max(0, x), relu(x)):
            assert slope(e, 0.0) == pytest.approx(relu0)
        for e in (leaky_relu(x, A), sp.Max(A * x, x)):
            assert slope(e, 0.0) == pytest.approx(leaky0)
        for e in ABS.values():
            assert slope(e, 0.0) == pytest.approx(abs0)
    assert slope(relu(x), 0.0) == 0.0  # restored


def test_unknown_convention_is_refused():
    with pytest.raises(ValueError, match="unknown kink convention 'left'; use one of min-norm"):
        with kink("left"):
            pass


def test_kink_note_names_the_convention():
    for expr in [sp.Max(x, 0), relu(x), sp.Abs(x), leaky_relu(x, A), sp.Min(x, 0)]:
        assert kink_note(expr) == "kink convention min-norm: " + KINKS["min-norm"]
    assert "relu'(0) = 0" in kink_note(relu(x))
    assert kink_note(sp.exp(x)) == ""
    assert "branch" in kink_note(RELU["Piecewise"])


# Kinks in every spelling, against the one-sided derivatives measured by one-sided differences
# of the plain function (SymPy's own lambdify): min-norm picks the point of [left, right] nearest 0.

def one_sided(expr, var, at, h=1e-7):
    fn = sp.lambdify([var], expr, "math")
    left = (fn(at) - fn(at - h)) / h
    right = (fn(at + h) - fn(at)) / h
    return left, right


def min_norm(left, right):
    lo, hi = min(left, right), max(left, right)
    return 0.0 if lo <= 0 <= hi else (lo if lo > 0 else hi)


SPELLINGS = [
    (sp.Piecewise((x, x >= 0), (0, True)), 0.0),
    (sp.Piecewise((0, x < 0), (x, True)), 0.0),
    (sp.Piecewise((0, x <= 0), (x, True)), 0.0),
    (sp.Piecewise((x, x >= 0), (A * x, True)), 0.0),
    (sp.Piecewise((-x, x < 0), (x, True)), 0.0),
    (sp.Piecewise((0, x < 0), (x, x < 1), (1, True)), 0.0),
    (sp.Piecewise((0, x < 0), (x, x < 1), (1, True)), 1.0),
    (sp.Piecewise((x**2, x >= 0), (x, True)), 0.0),
    (sp.Piecewise((x - 2, x >= 2), (0, True)), 2.0),
    (sp.Max(x, x**2), 0.0), (sp.Max(x, x**2), 1.0), (sp.Min(x, x**2), 0.0), (sp.Min(x, x**2), 1.0),
    (sp.Max(x, 2 * x**2), 0.0), (sp.Max(x, x**3), 0.0), (sp.Max(sp.sin(x), x / 2), 0.0),
    (sp.Max(-x, x**2), 0.0), (sp.Max(x, sp.tanh(x)), 0.0),
    (sp.Max(*[k * x for k in range(1, 8)]), 0.0), (sp.Min(*[k * x for k in range(-3, 5) if k]), 0.0),
    (sp.Max(*[k * x for k in range(1, 8)], 0), 0.0),
]


@pytest.mark.parametrize("expr, at", SPELLINGS, ids=[f"{sp.sstr(e)}@{a}" for e, a in SPELLINGS])
def test_min_norm_holds_for_every_spelling(expr, at):
    expected = min_norm(*one_sided(expr, x, at))
    assert slope(expr, at) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("n", [3, 4, 6, 8, 12])
def test_max_of_many_arguments_tied_with_a_constant_is_0(n):
    zs = sp.symbols("z0:%d" % n)
    f = sg.compile(sp.Max(*zs, 0), wrt=list(zs), args=[])
    assert set(f.grad(**{str(z): 0.0 for z in zs}).values()) == {0.0}
    # tied among themselves above the constant: unrelated arguments split the derivative equally
    g = f.grad(**{str(z): (1.0 if k < 2 else -1.0) for k, z in enumerate(zs)})
    assert [g[str(z)] for z in zs] == [0.5, 0.5] + [0.0] * (n - 2)
    g = f.grad(**{str(z): float(k) for k, z in enumerate(zs)})  # one strictly largest
    assert [g[str(z)] for z in zs] == [0.0] * (n - 1) + [1.0]


def test_many_argument_max_compiles_in_linear_time():
    import time
    zs = sp.symbols("z0:16")
    t0 = time.perf_counter()
    sg.compile(sp.Max(*zs, 0), wrt=list(zs), args=[])
    assert time.perf_counter() - t0 < 20  # the enumerated tie patterns would be 2**15 per argument


def test_a_jump_is_not_a_kink():
    # Piecewise((2*y, x >= 0), (0, True)) at x = 0, y = 0: the branch values meet, but the kink is
    # in x and the derivative in y is that of the branch that holds: 2
    f = sg.compile(sp.Piecewise((2 * y, x >= 0), (0, True)), wrt=[x, y], args=[])
    assert f.grad(x=0.0, y=0.0) == {"x": 0.0, "y": 2.0}
    # a real jump at the boundary keeps the branch as written
    f = sg.compile(sp.Piecewise((x + 1, x >= 0), (x, True)), wrt=[x], args=[])
    assert f.grad(x=0.0)["x"] == 1.0


def test_kinks_inside_a_batch():
    e = sp.Piecewise((x, x >= 0), (0, True)) + sp.Max(x, x**2)
    f = sg.compile(e, wrt=[x], args=[])
    X = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    _, dot = f.jvp({"x": np.ones(5)}, x=X)
    assert list(dot) == pytest.approx([-2.0, 0.0, 2.0, 2.0, 5.0])
