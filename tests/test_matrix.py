"""Plain SymPy matrix networks compile; gradients equal hand-written backprop and finite differences."""

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad import nn, reference

B = sp.Symbol("B", integer=True, positive=True)


def network(n_in=6, n_hidden=5, n_out=3, act=sp.tanh):
    X, Y = sp.MatrixSymbol("X", B, n_in), sp.MatrixSymbol("Y", B, n_out)
    W1, b1 = sp.MatrixSymbol("W1", n_in, n_hidden), sp.MatrixSymbol("b1", 1, n_hidden)
    W2, b2 = sp.MatrixSymbol("W2", n_hidden, n_out), sp.MatrixSymbol("b2", 1, n_out)
    A1 = (X * W1 + sp.OneMatrix(B, 1) * b1).applyfunc(act)
    Z2 = A1 * W2 + sp.OneMatrix(B, 1) * b2
    return (X, Y), (W1, b1, W2, b2), Z2


def values(seed=0, batch=7, n_in=6, n_hidden=5, n_out=3):
    rng = np.random.default_rng(seed)
    v = dict(X=rng.standard_normal((batch, n_in)), W1=rng.standard_normal((n_in, n_hidden)) * 0.5,
             b1=rng.standard_normal((1, n_hidden)), W2=rng.standard_normal((n_hidden, n_out)) * 0.5,
             b2=rng.standard_normal((1, n_out)))
    v["Y"] = np.eye(n_out)[rng.integers(0, n_out, batch)]
    return v


def test_mse_network_matches_hand_backprop():
    (X, Y), params, Z2 = network()
    L = sp.Trace((Z2 - Y).T * (Z2 - Y)) / B
    f = sg.compile(L, wrt=list(params), args=[X, Y])
    v = values()
    loss, grads = f.value_and_grad(**v)
    H = v["X"] @ v["W1"] + v["b1"]
    A = np.tanh(H)
    D = A @ v["W2"] + v["b2"] - v["Y"]
    n = len(v["X"])
    dZ = 2 * D / n
    dH = (dZ @ v["W2"].T) * (1 - A ** 2)
    expected = {"W1": v["X"].T @ dH, "b1": dH.sum(0, keepdims=True), "W2": A.T @ dZ, "b2": dZ.sum(0, keepdims=True)}
    assert loss == pytest.approx(np.sum(D * D) / n, rel=1e-13)
    for k, g in expected.items():
        assert grads[k].shape == v[k].shape
        np.testing.assert_allclose(grads[k], g, rtol=1e-12, atol=1e-14)


def test_naive_softmax_cross_entropy_matches_reference_and_is_stable():
    (X, Y), params, Z2 = network()
    C = 3
    L = (sp.Trace(sp.OneMatrix(1, B) * (Z2.applyfunc(sp.exp) * sp.OneMatrix(C, 1)).applyfunc(sp.log))
         - sp.Trace(Y.T * Z2)) / B
    f = sg.compile(L, wrt=list(params), args=[X, Y])
    v = values(1)
    loss, grads = f.value_and_grad(**v)
    ref_loss, ref = reference.mlp_value_and_grad({k: v[k] for k in ("W1", "b1", "W2", "b2")}, v["X"], v["Y"])
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in ref:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-10, atol=1e-13)
    big = dict(v, b2=v["b2"] + 1000.0)  # logits near 1000: the max-shifted node keeps it finite
    loss_big, grads_big = f.value_and_grad(**big)
    assert np.isfinite(loss_big) and loss_big == pytest.approx(loss, rel=1e-9)
    np.testing.assert_allclose(grads_big["W1"], grads["W1"], rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("act", [sp.tanh, sg.sigmoid, sg.softplus], ids=lambda a: a.__name__)
def test_directional_derivative_matches_finite_differences_and_forward_mode(act):
    (X, Y), params, Z2 = network(act=act)
    L = sp.Trace(sp.OneMatrix(1, B) * sp.HadamardProduct(Z2 - Y, Z2 - Y) * sp.OneMatrix(3, 1)) / B
    f = sg.compile(L, wrt=list(params), args=[X, Y])
    v = values(2)
    _, grads = f.value_and_grad(**v)
    rng = np.random.default_rng(3)
    d = {p.name: rng.standard_normal(v[p.name].shape) for p in params}
    eps = 1e-6
    plus = f(**{k: (v[k] + eps * d[k] if k in d else v[k]) for k in v})
    minus = f(**{k: (v[k] - eps * d[k] if k in d else v[k]) for k in v})
    fd = (plus - minus) / (2 * eps)
    analytic = sum(np.sum(grads[k] * d[k]) for k in d)
    assert analytic == pytest.approx(fd, rel=1e-6)
    _, jv = f.jvp(d, **v)
    assert jv == pytest.approx(analytic, rel=1e-11)


def test_transposes_pushed_inward_share_one_chain():
    (X, Y), params, Z2 = network()
    L = sp.Trace((Z2 - Y).T * (Z2 - Y)) / B
    f = sg.compile(L, wrt=list(params), args=[X, Y])
    assert f.sources["value"].count("np.tanh(") == 1  # SymPy's W1.T*X.T copy is not recomputed


def test_shape_errors_name_the_symbol():
    (X, Y), params, Z2 = network()
    L = sp.Trace((Z2 - Y).T * (Z2 - Y)) / B
    f = sg.compile(L, wrt=list(params), args=[X, Y])
    v = values()
    with pytest.raises(sg.InputError, match=r"W1 has shape \(5, 5\) but the expression needs \(6, 5\)"):
        f.value_and_grad(**dict(v, W1=np.zeros((5, 5))))
    with pytest.raises(sg.InputError, match=r"Y has shape \(4, 3\) but the expression needs \(B, 3\) with B = 7"):
        f.value_and_grad(**dict(v, Y=np.zeros((4, 3))))
    with pytest.raises(sg.InputError, match="b1 must be a 2-D array"):
        f.value_and_grad(**dict(v, b1=np.zeros(5)))
    with pytest.raises(sg.InputError, match="missing value for 'W2'"):
        f.value_and_grad(**{k: x for k, x in v.items() if k != "W2"})
    with pytest.raises(sg.InputError, match="contains nan or inf"):
        f.value_and_grad(**dict(v, X=np.full((7, 6), np.nan)))


def test_nn_mlp_builder_compiles():
    net = nn.mlp([6, 5, 3], activation="tanh", loss="softmax_cross_entropy")
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    v = values(4)
    params = {p.name: v[p.name] for p in net.params}
    loss, grads = f.value_and_grad(**{net.inputs.name: v["X"], net.targets.name: v["Y"]}, **params)
    ref_loss, ref = reference.mlp_value_and_grad(params, v["X"], v["Y"])
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in ref:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-10, atol=1e-13)


def test_matrix_table_values_and_adjoints_match_numpy():
    (X, Y), params, Z2 = network(n_in=3, n_hidden=2, n_out=2)
    L = sp.Trace((Z2 - Y).T * (Z2 - Y)) / B
    v = values(5, batch=4, n_in=3, n_hidden=2, n_out=2)
    t = sg.table(L, wrt=list(params), at={sp.MatrixSymbol(k, 1, 1).name: x for k, x in v.items()})
    f = sg.compile(L, wrt=list(params), args=[X, Y])
    loss, grads = f.value_and_grad(**v)
    assert t.value == pytest.approx(loss, rel=1e-13)
    for k in grads:
        np.testing.assert_allclose(t.gradient[k], grads[k], rtol=1e-12)
    rows = {r[2]: r for r in t.rows}
    tanh_row = next(r for r in t.rows if r[1] == "elementwise" and r[2].startswith("tanh"))
    np.testing.assert_allclose(tanh_row[4], np.tanh(v["X"] @ v["W1"] + v["b1"]), rtol=1e-14)
    assert tanh_row[3] == (4, 2)
    data = __import__("json").loads(t.to_json())
    assert {"value", "gradient", "nodes"} <= set(data) and any(n["shape"] == [4, 2] for n in data["nodes"])
    text = str(t)
    assert "‖·‖" in text and "ξ1" in text and rows  # large values as norms, small in full
    assert t.to_markdown().count("\n| ξ") == len(t.rows) and "<table>" in t.to_html()


def test_matrix_chain_is_multiplied_in_the_cheap_order():
    X, w = sp.MatrixSymbol("X", B, 50), sp.MatrixSymbol("w", 50, 1)
    f = sg.compile(sp.Trace(w.T * X.T * X * w), wrt=[w], args=[X])
    assert "X.T @ X" not in f.source and "np.vdot(xi1, xi1)" in f.sources["value"]
    rng = np.random.default_rng(0)
    Xv, wv = rng.standard_normal((20, 50)), rng.standard_normal((50, 1))
    np.testing.assert_allclose(f.grad(X=Xv, w=wv)["w"], 2 * Xv.T @ (Xv @ wv), rtol=1e-12)


def test_two_identical_applyfuncs_share_one_node_and_abs_works():
    X, w = sp.MatrixSymbol("X", B, 3), sp.MatrixSymbol("w", 3, 1)
    a = (X * w).applyfunc(sp.tanh)
    b = (X * w).applyfunc(sp.tanh)  # a fresh Lambda dummy, same function
    L = sp.Trace(a.T * b) + sp.Trace(sp.OneMatrix(1, B) * (X * w).applyfunc(sp.Abs))
    f = sg.compile(L, wrt=[w], args=[X])
    assert f.sources["value"].count("np.tanh(") == 1
    rng = np.random.default_rng(1)
    Xv, wv = rng.standard_normal((5, 3)), rng.standard_normal((3, 1))
    z = Xv @ wv
    expected = Xv.T @ (2 * np.tanh(z) * (1 - np.tanh(z) ** 2) + np.sign(z))
    np.testing.assert_allclose(f.grad(X=Xv, w=wv)["w"], expected, rtol=1e-12)


def test_generated_network_code_is_identical_across_hash_seeds():
    import os
    import subprocess
    import sys

    code = ("import symgrad as sg\n"
            "net = sg.nn.mlp([4, 3, 2], activation='sigmoid', loss='softmax_cross_entropy')\n"
            "print(sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets]).source)\n")
    outs = {subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONHASHSEED=seed),
                           capture_output=True, text=True, check=True).stdout for seed in ("0", "7")}
    assert len(outs) == 1 and "def value_and_grad" in outs.pop()


def test_naive_softmax_is_one_stable_node():
    Z, Y = sp.MatrixSymbol("Z", B, 3), sp.MatrixSymbol("Y", B, 3)
    f = sg.compile(sp.Trace(Y.T * nn.softmax(Z)), wrt=[Z], args=[Y])
    assert "softmax_rows" in str(f.graph)
    rng = np.random.default_rng(0)
    Zv, Yv = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    for shift in (0.0, 1000.0):  # logits near 1000: exp would overflow without the shift
        S = np.exp(Zv) / np.exp(Zv).sum(1, keepdims=True)
        value, grads = f.value_and_grad(Z=Zv + shift, Y=Yv)
        assert value == pytest.approx(np.sum(Yv * S), rel=1e-12)
        np.testing.assert_allclose(grads["Z"], S * (Yv - (S * Yv).sum(1, keepdims=True)), atol=1e-14)
    d = rng.standard_normal((4, 3))
    assert f.jvp({"Z": d}, Z=Zv, Y=Yv)[1] == pytest.approx(np.sum(grads["Z"] * d), rel=1e-12)


# ---------------------------------------------------------------------------- the tangent column of matrix tables


def _moved(at, direction, h):
    return {k: (x + h * np.asarray(direction[k]) if k in direction else x) for k, x in at.items()}


def _assert_tangents_are_central_differences(L, wrt, at, direction=None, eps=1e-6):
    """Every node's tangent equals the central difference of that node's value along the table's
    direction, the values at p ± εv read off the table itself."""
    t = sg.table(L, wrt=wrt, at=at, direction=direction)
    v = t.direction
    plus = sg.table(L, wrt=wrt, at=_moved(at, v, eps), direction=v)
    minus = sg.table(L, wrt=wrt, at=_moved(at, v, -eps), direction=v)
    assert len(t.rows) == len(plus.rows) == len(minus.rows)
    for r, p, m in zip(t.rows, plus.rows, minus.rows):
        assert r.name == p.name == m.name and r.definition == p.definition
        fd = (np.asarray(p.value, float) - np.asarray(m.value, float)) / (2 * eps)
        assert np.shape(r.tangent) == np.shape(r.value), r.name
        np.testing.assert_allclose(r.tangent, fd, rtol=1e-6, atol=1e-7, err_msg="%s = %s" % (r.name, r.definition))
    return t


def test_matrix_table_tangents_are_central_differences_of_every_node():
    (X, Y), params, Z2 = network(n_in=3, n_hidden=4, n_out=3)
    L = (sp.Trace(sp.OneMatrix(1, B) * (Z2.applyfunc(sp.exp) * sp.OneMatrix(3, 1)).applyfunc(sp.log))
         - sp.Trace(Y.T * Z2)) / B
    at = values(9, batch=5, n_in=3, n_hidden=4, n_out=3)
    t = _assert_tangents_are_central_differences(L, list(params), at)
    # the default direction: seeded, random, of unit length over all parameters together
    assert t.direction_note == "a random unit direction (seed 0)"
    assert set(t.direction) == {"W1", "b1", "W2", "b2"}
    assert sum(float(np.sum(np.square(d))) for d in t.direction.values()) == pytest.approx(1.0, rel=1e-12)
    again = sg.table(L, wrt=list(params), at=at)
    for k in t.direction:
        np.testing.assert_array_equal(again.direction[k], t.direction[k])
    # the output's tangent is the slope of L along v: ⟨∇L, v⟩, and what jvp says
    slope = sum(float(np.vdot(t.gradient[k], t.direction[k])) for k in t.direction)
    assert float(t.rows[-1].tangent) == pytest.approx(slope, rel=1e-12)
    f = sg.compile(L, wrt=list(params), args=[X, Y])
    assert f.jvp(t.direction, **at)[1] == pytest.approx(slope, rel=1e-12)
    assert "lse_rows" in [r.op for r in t.rows]
    # nodes v does not move have tangent zero (1/B here)
    assert np.all(np.asarray(next(r for r in t.rows if r.definition == "1/B").tangent) == 0)


def test_matrix_table_tangents_with_a_scalar_parameter_and_a_given_direction():
    X, Y = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("Y", B, 2)
    W, b, alpha = sp.MatrixSymbol("W", 2, 2), sp.MatrixSymbol("b", 1, 2), sp.Symbol("alpha")
    A = (X * W + sp.OneMatrix(B, 1) * b).applyfunc(lambda s: sp.tanh(alpha * s))
    L = sp.Trace((A - Y).T * (A - Y)) / B + alpha ** 2
    rng = np.random.default_rng(4)
    at = {"X": rng.standard_normal((3, 2)), "Y": rng.standard_normal((3, 2)), "W": rng.standard_normal((2, 2)),
          "b": rng.standard_normal((1, 2)), "alpha": 0.8}
    _assert_tangents_are_central_differences(L, [W, b, alpha], at)
    t = _assert_tangents_are_central_differences(L, [W, b, alpha], at, direction={alpha: 1.0})
    assert t.direction == {"W": pytest.approx(np.zeros((2, 2))), "b": pytest.approx(np.zeros((1, 2))), "alpha": 1.0}
    # along alpha alone the output's tangent is dL/dalpha, and nodes alpha does not reach stay 0
    assert float(t.rows[-1].tangent) == pytest.approx(t.gradient["alpha"], rel=1e-12)
    xw = next(r for r in t.rows if r.op == "mm")
    assert np.all(np.asarray(xw.tangent) == 0)
    assert "the given direction v: v_W = [[0., 0.], [0., 0.]], v_b = [[0., 0.]], v_alpha = 1" in t.to_text(width=0)


def test_matrix_table_renders_the_tangent_column_everywhere():
    X, w = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("w", 2, 1)
    t = sg.table(sp.Trace((X * w).T * (X * w)), wrt=[w], at={X: np.eye(2), w: np.array([[1.0], [2.0]])},
                 direction={"w": [[1.0], [0.0]]})
    assert [np.asarray(r.tangent).tolist() for r in t.rows] == [[[1.0], [0.0]], 2.0]
    assert t.rows[1][4] == 5 and t.rows[1].value == 5  # rows are still tuples: row[4] is the value
    md = t.to_markdown()
    assert md.splitlines()[0] == "| ξ | definition | shape | value | dξ/dv | dL/dξ |"
    assert "| ξ2 | frob(ξ1, ξ1) | () | 5 | 2 | 1 |" in md
    assert "dξ/dv: tangents along the given direction v: v\\_w = [[1.], [0.]]; dL/dv = ⟨∇L, v⟩ = 2" in md
    text = str(t)
    assert text.splitlines()[0].split() == ["ξ", "definition", "shape", "value", "dξ/dv", "dL/dξ"]
    assert "dL/dv = ⟨∇L, v⟩ = 2" in text
    html = t.to_html()
    assert "<th>dξ/dv</th>" in html and "<td>[[1.], [0.]]</td>" in html and "given direction" in html
    latex = t.to_latex()
    assert r"\begin{tabular}{llllll}" in latex and r"d$\xi$/dv" in latex
    data = __import__("json").loads(t.to_json())
    assert [n["tangent"] for n in data["nodes"]] == [[[1.0], [0.0]], 2.0]
    assert data["direction"] == {"w": [[1.0], [0.0]]} and data["direction_note"] == "the given direction v"


def test_matrix_table_direction_errors():
    X, w = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("w", 2, 1)
    L, at = sp.Trace((X * w).T * (X * w)), {X: np.eye(2), w: np.array([[1.0], [2.0]])}
    with pytest.raises(sg.InputError, match=r"direction given for 'X', which is not a parameter; parameters: w"):
        sg.table(L, wrt=[w], at=at, direction={X: np.eye(2)})
    with pytest.raises(sg.InputError, match=r"the direction of 'w' has shape \(2,\) but 'w' has shape \(2, 1\)"):
        sg.table(L, wrt=[w], at=at, direction={"w": [1.0, 0.0]})
    with pytest.raises(sg.InputError, match="direction must be a dict"):
        sg.table(L, wrt=[w], at=at, direction=[1.0, 0.0])
    with pytest.raises(sg.InputError, match="contains nan or inf"):
        sg.table(L, wrt=[w], at=at, direction={"w": [[np.nan], [0.0]]})
    x = sp.Symbol("x")
    with pytest.raises(sg.InputError, match="direction is for matrix-level tables"):
        sg.table(x ** 2, wrt=[x], at={x: 1}, direction={"x": 1.0})
