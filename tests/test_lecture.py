"""The lecture's worked examples, every expected number recomputed here with SymPy."""

import json
import math

import numpy as np
import pytest
import sympy as sp

import symgrad as sg

x, y, w = sp.symbols("x y w")
LOGISTIC = -y * sp.log(1 / (1 + sp.exp(-w * x)))
POINT = {x: 3, y: 1, w: 3}


def test_logistic_chain_is_the_lecture_chain():
    g = sg.decompose(LOGISTIC)
    xi = [n.symbol for n in g.nodes]
    expected = [-w * x, sp.exp(xi[0]), 1 + xi[1], 1 / xi[2], sp.log(xi[3]), -y * xi[4]]
    assert [n.expr for n in g.nodes] == expected
    assert [repr(n) for n in g.nodes] == [
        "ξ1 = -w*x", "ξ2 = exp(ξ1)", "ξ3 = 1 + ξ2", "ξ4 = 1/ξ3", "ξ5 = log(ξ4)", "ξ6 = -y*ξ5"]


def test_logistic_table_values_against_sympy():
    t = sg.table(LOGISTIC, wrt=w, at=POINT)
    subexprs = [-w * x, sp.exp(-w * x), 1 + sp.exp(-w * x), 1 / (1 + sp.exp(-w * x)),
                sp.log(1 / (1 + sp.exp(-w * x))), LOGISTIC]
    for row, sub in zip(t.rows, subexprs):
        assert sp.simplify(row.value - sub.subs(POINT)) == 0
        # forward tangent column: d(subexpression)/dw at the point
        assert sp.simplify(row.tangents[0] - sp.diff(sub, w).subs(POINT)) == 0
        # backward adjoint column: dL/dξ, from L written as a function of this subexpression
        z = sp.Symbol("z")
        outer = LOGISTIC.subs(sub, z)
        assert sp.simplify(row.adjoint - sp.diff(outer, z).subs(z, sub).subs(POINT)) == 0
    truth = sp.diff(LOGISTIC, w).subs(POINT)
    assert sp.simplify(t.gradient["w"] - truth) == 0
    assert float(truth) == pytest.approx(-3.70183727959e-4, rel=1e-11)
    # The slide's partial value for ξ4 has the wrong sign: -1/ξ3² is negative.
    assert float(t.rows[3].partials[0][3]) == pytest.approx(-1 / (1 + math.exp(-9)) ** 2)


def test_logistic_json_contract():
    data = json.loads(sg.table(LOGISTIC, wrt=w, at=POINT).to_json())
    assert data["gradient"]["w"] == pytest.approx(-3 / (1 + math.exp(9)), rel=1e-13)
    assert data["value"] == pytest.approx(math.log1p(math.exp(-9)), rel=1e-13)
    assert [n["name"] for n in data["nodes"]] == ["ξ%d" % k for k in range(1, 7)]
    for n in data["nodes"]:
        assert {"name", "expr", "value", "tangent", "adjoint"} <= set(n)
    assert data["nodes"][0]["value"] == -9.0 and data["nodes"][0]["tangent"] == -3.0


def test_one_neuron_gradient_and_step():
    x1, x2, w1, w2, b = sp.symbols("x1 x2 w1 w2 b")
    h = w1 * x1 + w2 * x2 + b
    loss = -y * sp.log(sg.sigmoid(h)) - (1 - y) * sp.log(1 - sg.sigmoid(h))
    ref_loss = -y * sp.log(1 / (1 + sp.exp(-h))) - (1 - y) * sp.log(1 - 1 / (1 + sp.exp(-h)))
    pt = {x1: sp.Rational(1, 10), x2: sp.Rational(7, 10), y: 1, w1: sp.Rational(4, 5), w2: sp.Rational(1, 5),
          b: sp.Rational(1, 10)}
    f = sg.compile(loss, wrt=[w1, w2, b], args=[x1, x2, y])
    vals = {s.name: float(v) for s, v in pt.items()}
    value, grads = f.value_and_grad(**vals)
    assert value == pytest.approx(float(ref_loss.subs(pt)), rel=1e-13)
    for p in (w1, w2, b):
        assert grads[p.name] == pytest.approx(float(sp.diff(ref_loss, p).subs(pt)), rel=1e-12)
    # σ(0.32) - 1 is dL/dh; one step at learning rate 0.5 moves b by -0.5·(σ(0.32) - 1)
    s = 1 / (1 + math.exp(-0.32))
    assert vals["b"] - 0.5 * grads["b"] == pytest.approx(0.1 - 0.5 * (s - 1), rel=1e-13)
    assert vals["w2"] - 0.5 * grads["w2"] == pytest.approx(0.2 - 0.5 * (s - 1) * 0.7, rel=1e-13)
    table = sg.table(loss, wrt=[w1, w2, b], at=pt)
    assert any(r.op == "sigmoid" for r in table.rows)  # σ is one node, as in the coarse table


def test_chain_rule_warm_up():
    h = (2 * (x + 1)) ** 2
    f = sg.compile(h, wrt=[x])
    assert f.grad(x=2.0)["x"] == 24.0
    assert f.jvp({"x": 1.0}, x=2.0) == (36.0, 24.0)
    assert sg.table(h, wrt=x, at={x: 2}).gradient["x"] == 24


def test_batched_logistic_gradient_is_summed():
    X = np.array([3.0, -1.0, 0.5, 2.0])
    Y = np.array([1.0, 0.0, 1.0, 0.0])
    f = sg.compile(LOGISTIC, wrt=[w], args=[x, y])
    expected = sum(float(sp.diff(LOGISTIC, w).subs({x: xv, y: yv, w: 3})) for xv, yv in zip(X, Y))
    assert f.grad(x=X, y=Y, w=3.0)["w"] == pytest.approx(expected, rel=1e-12)
    assert isinstance(f.grad(x=X, y=Y, w=3.0)["w"], float)
    mean = sg.compile(LOGISTIC, wrt=[w], args=[x, y], reduce="mean")
    assert mean.grad(x=X, y=Y, w=3.0)["w"] == pytest.approx(expected / 4, rel=1e-12)
