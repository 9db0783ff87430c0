"""Stability rewrites: what fires, values at extreme inputs, agreement with the literal chain."""

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.functions import expm1, log1p, logsumexp, sigmoid, softplus
from symgrad.rewrite import PATTERNS, Pattern, stabilize

x, y, w, z, a, b = sp.symbols("x y w z a b")
LITERAL_SIGMOID = 1 / (1 + sp.exp(-w * x))
LOSS_SIGMOID = -y * sp.log(sigmoid(w * x)) - (1 - y) * sp.log(1 - sigmoid(w * x))
LOSS_LITERAL = -y * sp.log(LITERAL_SIGMOID) - (1 - y) * sp.log(1 - LITERAL_SIGMOID)

# name -> (expression, its stable form, the rules that fire)
CATALOGUE = {
    "sigmoid": (1 / (1 + sp.exp(-z)), sigmoid(z), ["sigmoid"]),
    "one-minus-sigmoid": (1 - sigmoid(z), sigmoid(-z), ["one-minus-sigmoid"]),
    "log-sigmoid": (sp.log(sigmoid(z)), -softplus(-z), ["log-sigmoid"]),
    "log-literal-sigmoid": (sp.log(1 / (1 + sp.exp(-z))), -softplus(-z), ["sigmoid", "log-sigmoid"]),
    "log-one-minus-sigmoid": (sp.log(1 - sigmoid(z)), -softplus(z), ["one-minus-sigmoid", "log-sigmoid"]),
    "log-one-minus-literal": (sp.log(1 - 1 / (1 + sp.exp(-z))), -softplus(z),
                              ["sigmoid", "one-minus-sigmoid", "log-sigmoid"]),
    "softplus": (sp.log(1 + sp.exp(z)), softplus(z), ["softplus"]),
    "log-exp": (sp.log(sp.exp(z)), z, ["log-exp"]),
    "logsumexp": (sp.log(sp.exp(a) + sp.exp(b)), logsumexp(a, b), ["logsumexp"]),
    "logsumexp-const": (sp.log(1 + sp.exp(a) + sp.exp(b)), logsumexp(0, a, b), ["logsumexp"]),
    "log1p": (sp.log(1 + z), log1p(z), ["log1p"]),
    "expm1": (sp.exp(z) - 1, expm1(z), ["expm1"]),
    "one-minus-exp": (1 - sp.exp(z), -expm1(z), ["expm1"]),
    "expm1-in-sum": (sp.exp(z) - 1 + a, expm1(z) + a, ["expm1"]),
}


@pytest.mark.parametrize("name", CATALOGUE)
def test_rewrite_fires_and_is_reported(name):
    expr, stable, rules = CATALOGUE[name]
    out, report = stabilize(expr)
    assert out == stable
    assert [r.rule for r in report] == rules
    assert report[-1].after == stable
    assert str(report[-1]).startswith(rules[-1] + ": ")


def test_nothing_to_rewrite_returns_the_same_object():
    e = sp.sin(w * x) ** 2 + sp.log(2 + x ** 2)
    out, report = stabilize(e)
    assert out is e and report == ()


def test_pattern_names_are_unique_and_described():
    names = [p.name for p in PATTERNS]
    assert len(set(names)) == len(names)
    assert all(p.description for p in PATTERNS)


def test_custom_patterns_extend_the_pass():
    double_tanh = Pattern("tanh-via-sigmoid", lambda e: 2 * sigmoid(2 * e.args[0]) - 1 if isinstance(e, sp.tanh) else None)
    out, report = stabilize(sp.tanh(x) + 1, patterns=(double_tanh,))
    assert out == 2 * sigmoid(2 * x) and [r.rule for r in report] == ["tanh-via-sigmoid"]


def test_shared_subexpressions_are_rewritten_once_and_deep_chains_are_linear():
    e = x
    for _ in range(100):  # every level shares the previous one twice: a tree of 2**100 paths
        e = sp.log(1 + sp.exp(e)) * e
    out, report = stabilize(e)
    assert len(report) == 100
    seen, stack = set(), [out]  # walk the DAG: out.has(log) would walk all 2**100 paths
    while stack:
        t = stack.pop()
        if t not in seen:
            seen.add(t)
            assert not isinstance(t, sp.log)
            stack.extend(t.args)
    assert len(seen) < 500


# -- compiled: the lecture's logistic loss at w·x = ±800 --------------------------------


@pytest.mark.parametrize("loss", [LOSS_SIGMOID, LOSS_LITERAL], ids=["sigmoid", "literal"])
@pytest.mark.parametrize("xv, yv, value", [(800.0, 1.0, 0.0), (800.0, 0.0, 800.0),
                                           (-800.0, 1.0, 800.0), (-800.0, 0.0, 0.0)])
def test_logistic_loss_at_extreme_inputs(loss, xv, yv, value):
    f = sg.compile(loss, wrt=[w], args=[x, y])
    v, g = f.value_and_grad(x=xv, y=yv, w=1.0)
    assert v == pytest.approx(value, abs=1e-12)
    wrong = value > 0
    assert g["w"] == pytest.approx(xv if wrong and yv == 0 else (-xv if wrong else 0.0), abs=1e-12)
    _, dot = f.jvp({"w": 1.0}, x=xv, y=yv, w=1.0)
    assert dot == pytest.approx(g["w"], abs=1e-12)
    literal = sg.compile(loss, wrt=[w], args=[x, y], rewrite=False)
    assert not np.isfinite(literal.value_and_grad(x=xv, y=yv, w=1.0)[1]["w"])  # what the rewrite fixes


def test_logistic_loss_batch_with_both_labels():
    f = sg.compile(LOSS_LITERAL, wrt=[w], args=[x, y])
    X, Y = np.array([800.0, 800.0, -800.0, 0.5]), np.array([1.0, 0.0, 1.0, 1.0])
    v, g = f.value_and_grad(x=X, y=Y, w=1.0)
    ref = np.log1p(np.exp(-0.5))
    assert v == pytest.approx(1600 + ref) and g["w"] == pytest.approx(800 + 800 - 0.5 / (1 + np.exp(0.5)))


def test_report_is_kept_on_the_compiled_function():
    f = sg.compile(LOSS_LITERAL, wrt=[w], args=[x, y])
    assert [r.rule for r in f.rewrites] == ["sigmoid", "log-sigmoid", "one-minus-sigmoid", "log-sigmoid", "bce-logits"]
    assert "softplus" in f.source and "np.exp(-w*x)" not in f.source
    off = sg.compile(LOSS_LITERAL, wrt=[w], args=[x, y], rewrite=False)
    assert off.rewrites == () and "softplus" not in off.source


def test_tables_show_the_literal_chain():
    t = sg.table(-y * sp.log(LITERAL_SIGMOID), wrt=w, at={x: 3, y: 1, w: 3})
    assert [r.op for r in t.rows] == ["mul", "exp", "add", "reciprocal", "log", "mul"]


# -- every rewrite at an extreme input: (expression, point, value, gradient wrt z) -------

EXTREME = {
    "softplus at 800": (sp.log(1 + sp.exp(z)), 800.0, 800.0, 1.0),
    "softplus at -800": (sp.log(1 + sp.exp(z)), -800.0, 0.0, 0.0),
    "sigmoid at -800": (1 / (1 + sp.exp(-z)), -800.0, 0.0, 0.0),
    "sigmoid at 800": (1 / (1 + sp.exp(-z)), 800.0, 1.0, 0.0),
    "one-minus-sigmoid at 40": (1 - sigmoid(z), 40.0, np.exp(-40.0), -np.exp(-40.0)),
    "log-sigmoid at -800": (sp.log(sigmoid(z)), -800.0, -800.0, 1.0),
    "log-exp at 1000": (sp.log(sp.exp(z)), 1000.0, 1000.0, 1.0),
    "log1p at 1e-17": (sp.log(1 + z), 1e-17, 1e-17, 1.0),
    "expm1 at 1e-12": (sp.exp(z) - 1, 1e-12, 1.0000000000005e-12, np.exp(1e-12)),
    "one-minus-exp at -1e-15": (1 - sp.exp(z), -1e-15, 1e-15, -1.0),
    "logsumexp at 1000": (sp.log(sp.exp(z) + sp.exp(z - 1)), 1000.0, 1000 + np.log1p(np.exp(-1.0)), 1.0),
}


@pytest.mark.parametrize("name", EXTREME)
def test_rewrite_at_extreme_input(name):
    expr, point, value, slope = EXTREME[name]
    f = sg.compile(expr, wrt=[z], args=[])
    v, g = f.value_and_grad(z=point)
    assert v == pytest.approx(value, rel=1e-14, abs=1e-300)
    assert g["z"] == pytest.approx(slope, rel=1e-12, abs=1e-300)
    assert f.rewrites


def test_logsumexp_gradient_is_the_softmax():
    f = sg.compile(sp.log(sp.exp(a) + sp.exp(b) + sp.exp(z)), wrt=[a, b, z], args=[])
    v, g = f.value_and_grad(a=1000.0, b=999.0, z=-1000.0)
    p = np.exp(np.array([1000.0, 999.0, -1000.0]) - v)
    assert np.isfinite(v) and [g["a"], g["b"], g["z"]] == pytest.approx(list(p), rel=1e-14)


# -- rewritten values equal the literal ones on moderate inputs ---------------------------

MODERATE = [LOSS_SIGMOID, LOSS_LITERAL, sp.log(1 + sp.exp(w * x)) * y, sp.exp(w * x) - 1 + sp.log(1 + w ** 2),
            sp.log(sp.exp(w) + sp.exp(x * w) + 2 * sp.exp(y)), 1 - sp.exp(-w * x * y),
            sp.log(1 - 1 / (1 + sp.exp(w - x))) * sp.log(1 + x * x * w * w)]


@pytest.mark.parametrize("expr", MODERATE, ids=range(len(MODERATE)))
def test_rewritten_values_match_literal_and_sympy_diff(expr):
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-2, 2, 7), rng.uniform(0, 1, 7)
    on = sg.compile(expr, wrt=[w], args=[x, y])
    off = sg.compile(expr, wrt=[w], args=[x, y], rewrite=False)
    assert on.rewrites
    for wv in (-1.3, 0.4, 2.0):
        np.testing.assert_allclose(on(x=X, y=Y, w=wv), off(x=X, y=Y, w=wv), rtol=1e-12, atol=1e-13)
        sg.check_grads(expr, wrt=[w], at={x: X, y: Y, w: wv}, fn=on)


def test_bce_logits_fuses_the_two_softplus_terms():
    f = sg.compile(LOSS_LITERAL, wrt=[w], args=[x, y])
    fused = [r for r in f.rewrites if r.rule == "bce-logits"]
    assert len(fused) == 1 and sp.expand(fused[0].after - (sg.softplus(w * x) - w * x * y)) == 0
    assert f.sources["grad"].count("np.exp(") == 1  # σ(wx) once, not once per softplus
    X = np.array([800.0, -800.0, 0.3, -2.0])
    Y = np.array([0.0, 1.0, 1.0, 0.0])
    s = 1 / (1 + np.exp(-0.5 * X))
    value, grads = f.value_and_grad(x=X, y=Y, w=0.5)
    assert grads["w"] == pytest.approx(np.sum((s - Y) * X), rel=1e-13)  # the hand formula Σ(σ(wx) - y)·x
    assert value == pytest.approx(400 + 400 + np.log1p(np.exp(-0.15)) + np.log1p(np.exp(-1.0)), rel=1e-13)


# Overflowing spellings whose truth is finite: value and gradient against sympy at 30 digits.
_OVERFLOW = {
    "sigmoid as a ratio": (lambda x, y: sp.exp(x) / (1 + sp.exp(x)), {"x": 800.0, "y": 0.0}),
    "two-class softmax": (lambda x, y: sp.exp(x) / (sp.exp(x) + sp.exp(y)), {"x": 1000.0, "y": 999.0}),
    "three-class softmax": (lambda x, y: sp.exp(x) / (sp.exp(x) + sp.exp(y) + 2 * sp.exp(-x)),
                            {"x": 900.0, "y": 901.0}),
    "log cosh, large": (lambda x, y: sp.log(sp.cosh(x)) * y, {"x": 1000.0, "y": 2.0}),
    "log cosh, negative": (lambda x, y: sp.log(sp.cosh(x)) + y, {"x": -750.0, "y": 1.0}),
    "log cosh, small": (lambda x, y: sp.log(sp.cosh(x)), {"x": 0.3, "y": 0.0}),
}


@pytest.mark.parametrize("name", _OVERFLOW)
def test_overflowing_ratios_and_log_cosh_are_rewritten(name):
    X, Y = sp.symbols("x y")
    build, point = _OVERFLOW[name]
    e = build(X, Y)
    f = sg.compile(e, wrt=[X, Y])
    assert f.rewrites, "a rewrite should have fired"
    value, grads = f.value_and_grad(**point)
    at = {X: sp.Float(point["x"], 30), Y: sp.Float(point["y"], 30)}
    assert value == pytest.approx(float(e.subs(at).evalf(30)), rel=1e-12, abs=1e-300)
    for s in (X, Y):
        truth = float(sp.diff(e, s).subs(at).evalf(30))
        assert grads[s.name] == pytest.approx(truth, rel=1e-9, abs=1e-12), s
