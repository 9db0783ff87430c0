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
