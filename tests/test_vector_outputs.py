"""Vector outputs (Jacobians, vjp, jvp) and per-sample gradients, against sympy.diff per entry and
per sample (independent of symgrad's sweeps)."""

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.errors import InputError

x, y, w, b = sp.symbols("x y w b")


def sym_grad(expr, var, point):
    return float(sp.diff(expr, var).xreplace({s: sp.Float(v, 30) for s, v in point.items()}).evalf(30))


def test_jacobian_of_a_vector_matches_sympy_diff():
    M = sp.Matrix([sp.sin(w * x) + b, sp.exp(b) * w**2, sp.log(1 + w**2) * b])
    f = sg.compile(M, wrt=[w, b], args=[x])
    point = {x: 0.7, w: 1.3, b: -0.4}
    J = f.jacobian(x=0.7, w=1.3, b=-0.4)
    assert J["w"].shape == (3, 1) and J["b"].shape == (3, 1)
    for i, e in enumerate(M):
        assert J["w"][i, 0] == pytest.approx(sym_grad(e, w, point), rel=1e-12)
        assert J["b"][i, 0] == pytest.approx(sym_grad(e, b, point), rel=1e-12)
    v = f(x=0.7, w=1.3, b=-0.4)
    assert v.shape == (3, 1) and v[1, 0] == pytest.approx(np.exp(-0.4) * 1.3**2)
    c = np.array([[1.0], [-2.0], [0.5]])
    g = f.vjp(c, x=0.7, w=1.3, b=-0.4)
    assert g["w"] == pytest.approx(float(c[:, 0] @ J["w"][:, 0]), rel=1e-12)
    val, dot = f.jvp({"w": 1.0, "b": 2.0}, x=0.7, w=1.3, b=-0.4)
    assert np.allclose(dot[:, 0], J["w"][:, 0] + 2 * J["b"][:, 0], rtol=1e-12)


def test_matrix_output_shape_and_batch():
    M = sp.Matrix([[w * x, b], [x**2 * w, w * b]])
    f = sg.compile(M, wrt=[w, b], args=[x])
    X = np.array([1.0, 2.0, 3.0])
    v = f(x=X, w=2.0, b=0.5)
    assert v.shape == (2, 2, 3)
    assert np.allclose(v[1, 0], X**2 * 2.0) and np.allclose(v[0, 1], 0.5)
    J = f.jacobian(x=X, w=2.0, b=0.5)  # of the outputs summed over the batch
    assert J["w"].shape == (2, 2)
    assert J["w"][1, 0] == pytest.approx(np.sum(X**2)) and J["b"][0, 1] == pytest.approx(3.0)


def test_grad_of_a_vector_is_refused_with_advice():
    f = sg.compile(sp.Matrix([w, w**2]), wrt=[w])
    with pytest.raises(InputError, match="jacobian"):
        f.grad(w=1.0)
    with pytest.raises(InputError, match="cotangent has shape"):
        f.vjp([1.0, 2.0, 3.0], w=1.0)


def test_per_sample_gradients_match_sympy_per_sample():
    e = sp.log(1 + sp.exp(-y * (w * x + b)))
    f = sg.compile(e, wrt=[w, b], args=[x, y], reduce=None)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=6), np.sign(rng.normal(size=6))
    Xc = X.copy()
    g = f.grad(x=X, y=Y, w=0.3, b=-0.2)
    assert g["w"].shape == (6,) and g["b"].shape == (6,)
    for k in range(6):
        point = {x: X[k], y: Y[k], w: 0.3, b: -0.2}
        assert g["w"][k] == pytest.approx(sym_grad(e, w, point), rel=1e-12)
        assert g["b"][k] == pytest.approx(sym_grad(e, b, point), rel=1e-12)
    assert np.array_equal(X, Xc)
    total = sg.compile(e, wrt=[w, b], args=[x, y]).grad(x=X, y=Y, w=0.3, b=-0.2)
    assert g["w"].sum() == pytest.approx(total["w"], rel=1e-12)


def test_per_sample_with_an_array_parameter():
    # w has one entry per feature; x is (samples, features): per-sample gradients are (5, 3)
    f = sg.compile(sp.exp(w * x), wrt=[w], args=[x], reduce=None)
    X = np.arange(15.0).reshape(5, 3) / 10
    W = np.array([0.1, -0.2, 0.3])
    g = f.grad(x=X, w=W)["w"]
    assert g.shape == (5, 3) and np.allclose(g, X * np.exp(W * X), rtol=1e-13)


def test_per_sample_of_a_network_is_a_clear_error():
    net = sg.nn.mlp([2, 3, 1], activation="tanh", loss="mse")
    with pytest.raises(InputError, match="reduce=None"):
        sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets], reduce=None)
