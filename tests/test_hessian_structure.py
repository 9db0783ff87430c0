"""Hessians and their diagonals of matrix expressions from the program's structure
(symgrad.second.generate_hessian): closed forms by hand in NumPy (logistic regression XᵀSX and
(X∘X)ᵀs, with a bias and an L2 penalty, sums of losses), central differences of the gradient
for MLPs (matrix and row parameters) and a scalar parameter, symmetry, row blocks, float32
inputs, and the documented fallback."""

import re

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.functions import softplus

n, d = sp.symbols("n d", integer=True, positive=True)


def logistic_loss(X, w, y, b=None):
    z = X * w if b is None else X * w + b * sp.OneMatrix(X.shape[0], 1)
    return sp.Trace(sp.OneMatrix(1, X.shape[0]) * (z.applyfunc(softplus) - sp.HadamardProduct(y, z)))


def data(rng, N=60, D=7):
    X = rng.normal(size=(N, D))
    y = (rng.random((N, 1)) < 0.5).astype(float)
    return X, y


def weights(X, w, b=0.0):
    s = 1 / (1 + np.exp(-(X @ w + b)))
    return s * (1 - s)


def flat(block, p_size):
    return np.asarray(block).reshape(-1, p_size)


def bodies(source):
    """The lines of the generated functions' bodies (after each def and its docstring)."""
    out, inside = [], False
    for line in source.splitlines():
        if line.startswith("def "):
            inside = True
            continue
        if inside and line.startswith("    ") and not line.strip().startswith('"""'):
            out.append(line)
    return out


def test_logistic_regression_is_the_closed_form_program():
    X_, w_, y_ = sp.MatrixSymbol("X", n, d), sp.MatrixSymbol("w", d, 1), sp.MatrixSymbol("y", n, 1)
    f = sg.compile(logistic_loss(X_, w_, y_), wrt=[w_], args=[X_, y_])
    rng = np.random.default_rng(0)
    X, y = data(rng)
    w = rng.normal(size=(7, 1)) * 0.5
    Xc = X.copy()
    c = weights(X, w)
    H = X.T @ (c * X)
    got = f.hessian(X=X, y=y, w=w)["w"]["w"]
    assert got.shape == (7, 1, 7, 1)
    assert np.allclose(got.reshape(7, 7), H, rtol=1e-12, atol=1e-13)
    assert np.allclose(got.reshape(7, 7), got.reshape(7, 7).T, rtol=1e-13, atol=1e-14)
    diag = f.hessian_diag(X=X, y=y, w=w)["w"]
    assert diag.shape == (7, 1) and np.allclose(diag, (X * X).T @ c, rtol=1e-12)
    v = rng.normal(size=(7, 1))
    assert np.allclose(f.hvp({"w": v}, X=X, y=y, w=w)["w"], H @ v, rtol=1e-12)
    assert np.array_equal(X, Xc)
    assert got.flags.writeable and not np.may_share_memory(got, X)
    # the structure is the program: Xᵀ·(s·X) by one product; the diagonal by (X∘X)ᵀs, no d × d work
    assert f.hessian_diag_paths == {"w": "structure"}
    assert "X.T @ " in f.hessian_source and "X[:, _r0:_r1, None]" in f.hessian_source
    diag_body = bodies(f.hessian_diag_source)
    assert any("(X[:, _r0:_r1] * X[:, _r0:_r1]).T @ " in line for line in diag_body)
    assert len(diag_body) <= 3 and "einsum" not in f.hessian_diag_source
    for line in bodies(f.hessian_source) + diag_body:  # one statement per line, each with provenance
        assert ";" not in line.split("#")[0]
        if " = " in line.split("#")[0]:
            assert "  # " in line


def test_bias_and_l2_penalty_blocks():
    X_, w_, y_ = sp.MatrixSymbol("X", n, d), sp.MatrixSymbol("w", d, 1), sp.MatrixSymbol("y", n, 1)
    b, lam = sp.symbols("b lam")
    loss = logistic_loss(X_, w_, y_, b) + lam * sp.Trace(w_.T * w_)
    f = sg.compile(loss, wrt=[w_, b], args=[X_, y_, lam])
    rng = np.random.default_rng(1)
    X, y = data(rng, 50, 5)
    w = rng.normal(size=(5, 1))
    vals = dict(X=X, y=y, w=w, b=0.3, lam=0.7)
    c = weights(X, w, 0.3)
    H = f.hessian(**vals)
    assert np.allclose(H["w"]["w"].reshape(5, 5), X.T @ (c * X) + 1.4 * np.eye(5), rtol=1e-12)
    assert H["b"]["b"] == pytest.approx(float(c.sum()), rel=1e-12)
    assert np.allclose(H["w"]["b"].ravel(), (c * X).sum(axis=0), rtol=1e-12)
    assert H["w"]["b"].shape == (5, 1) and H["b"]["w"].shape == (5, 1)
    assert np.allclose(H["b"]["w"], H["w"]["b"], rtol=1e-13)
    D = f.hessian_diag(**vals)
    assert np.allclose(D["w"], (X * X).T @ c + 1.4, rtol=1e-12)
    assert D["b"] == pytest.approx(float(c.sum()), rel=1e-12)
    assert f.hessian_diag_paths == {"w": "structure", "b": "structure"}


def test_a_sum_of_two_losses_keeps_the_structure():
    X1, X2 = sp.MatrixSymbol("X1", n, d), sp.MatrixSymbol("X2", 2 * n, d)
    y1, y2 = sp.MatrixSymbol("y1", n, 1), sp.MatrixSymbol("y2", 2 * n, 1)
    w_ = sp.MatrixSymbol("w", d, 1)
    f = sg.compile(logistic_loss(X1, w_, y1) + 3 * logistic_loss(X2, w_, y2), wrt=[w_], args=[X1, X2, y1, y2])
    rng = np.random.default_rng(2)
    A, ya = data(rng, 20, 4)
    B, yb = data(rng, 40, 4)
    w = rng.normal(size=(4, 1))
    vals = dict(X1=A, X2=B, y1=ya, y2=yb, w=w)
    H = A.T @ (weights(A, w) * A) + 3 * B.T @ (weights(B, w) * B)
    assert np.allclose(f.hessian(**vals)["w"]["w"].reshape(4, 4), H, rtol=1e-12)
    assert np.allclose(f.hessian_diag(**vals)["w"].ravel(), np.diag(H), rtol=1e-12)
    assert f.hessian_diag_paths == {"w": "structure"}


def gradient_differences(f, vals, wrt, h=1e-5):
    """{a: {b: ∂²L/∂a∂b}} by central differences of f.grad, one column per entry of b."""
    out = {a: {} for a in wrt}
    for b in wrt:
        base = np.asarray(vals[b], dtype=float)
        cols = {a: [] for a in wrt}
        for k in range(base.size):
            e = np.zeros(base.size)
            e[k] = h
            e = e.reshape(base.shape)
            gp = f.grad(**{**vals, b: base + e if base.shape else float(base + e)})
            gm = f.grad(**{**vals, b: base - e if base.shape else float(base - e)})
            for a in wrt:
                cols[a].append((np.asarray(gp[a]) - np.asarray(gm[a])) / (2 * h))
        for a in wrt:
            out[a][b] = np.stack(cols[a], axis=-1).reshape(np.shape(vals[a]) + np.shape(vals[b]))
    return out


@pytest.mark.parametrize("activation, loss", [("tanh", "softmax_cross_entropy"), ("sigmoid", "mse"),
                                              ("softplus", "binary_cross_entropy"), ("relu", "mse")])
def test_mlp_hessian_matches_central_differences_of_the_gradient(activation, loss):
    sizes = [3, 5, 1] if loss == "binary_cross_entropy" else [3, 5, 4]
    net = sg.nn.mlp(sizes, activation=activation, loss=loss)
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    rng = np.random.default_rng(3)
    p = sg.nn.init_params(net, seed=4)
    p = {k: v + 0.3 * rng.normal(size=v.shape) for k, v in p.items()}  # biases off zero
    X = rng.normal(size=(9, 3))
    Y = (np.eye(4)[rng.integers(0, 4, 9)] if loss == "softmax_cross_entropy" else
         (rng.random((9, 1)) < 0.5).astype(float) if loss == "binary_cross_entropy" else rng.normal(size=(9, 4)))
    vals = {"X": X, "Y": Y, **p}
    names = list(p)
    want = gradient_differences(f, vals, names)
    H = f.hessian(**vals)
    D = f.hessian_diag(**vals)
    for a in names:
        for b in names:
            assert H[a][b].shape == p[a].shape + p[b].shape
            assert np.allclose(H[a][b], want[a][b], rtol=1e-6, atol=1e-7), (a, b)
            sa, sb = p[a].size, p[b].size
            assert np.allclose(flat(H[a][b], sb), flat(H[b][a], sa).T, rtol=1e-12, atol=1e-14), (a, b)  # symmetric
        assert np.allclose(D[a], np.diagonal(flat(H[a][a], p[a].size)).reshape(p[a].shape), rtol=1e-12, atol=1e-14)
    paths = f.hessian_diag_paths
    assert paths["W2"] == "structure" and paths["b2"] == "structure"  # the last layer: no stacked product
    assert paths["W1"] == "stacked"  # its directions pass through W2 first


def test_row_blocks_give_the_same_results():
    net = sg.nn.mlp([4, 6, 3], activation="tanh", loss="softmax_cross_entropy")
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    rng = np.random.default_rng(5)
    vals = {"X": rng.normal(size=(8, 4)), "Y": np.eye(3)[rng.integers(0, 3, 8)], **sg.nn.init_params(net, seed=6)}
    H, D = f.hessian(**vals), f.hessian_diag(**vals)
    f.stack_budget = 1  # one row of each parameter per call
    H1, D1 = f.hessian(**vals), f.hessian_diag(**vals)
    for a in H:
        assert np.allclose(D[a], D1[a], rtol=1e-13, atol=1e-15)
        for b in H[a]:
            assert np.allclose(H[a][b], H1[a][b], rtol=1e-13, atol=1e-15)


def test_a_scalar_parameter_of_a_matrix_expression():
    B = sp.Symbol("B", integer=True, positive=True)
    X_, W_, b_ = sp.MatrixSymbol("X", B, 3), sp.MatrixSymbol("W", 3, 2), sp.MatrixSymbol("b", 1, 2)
    alpha = sp.Symbol("alpha")
    Z = X_ * W_ + sp.OneMatrix(B, 1) * b_
    loss = sp.Trace(sp.OneMatrix(1, B) * Z.applyfunc(lambda t: sp.tanh(alpha * t)) * sp.OneMatrix(2, 1))
    f = sg.compile(loss, wrt=[W_, b_, alpha], args=[X_])
    rng = np.random.default_rng(7)
    vals = {"X": rng.normal(size=(6, 3)), "W": rng.normal(size=(3, 2)), "b": rng.normal(size=(1, 2)), "alpha": 0.8}
    want = gradient_differences(f, vals, ["W", "b", "alpha"])
    H = f.hessian(**vals)
    for a in want:
        for b in want:
            assert np.allclose(H[a][b], want[a][b], rtol=1e-6, atol=1e-7), (a, b)
    assert isinstance(H["alpha"]["alpha"], float) and H["W"]["alpha"].shape == (3, 2)
    D = f.hessian_diag(**vals)
    assert D["alpha"] == pytest.approx(H["alpha"]["alpha"], rel=1e-12)
    assert np.allclose(D["W"], np.diagonal(H["W"]["W"].reshape(6, 6)).reshape(3, 2), rtol=1e-12)
    assert f.hessian_diag_paths == {"W": "structure", "b": "structure", "alpha": "structure"}


def test_float32_inputs():
    net = sg.nn.mlp([3, 4, 2], activation="tanh", loss="softmax_cross_entropy")
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    rng = np.random.default_rng(8)
    vals = {"X": rng.normal(size=(5, 3)), "Y": np.eye(2)[rng.integers(0, 2, 5)], **sg.nn.init_params(net, seed=9)}
    v32 = {k: np.asarray(v, dtype=np.float32) for k, v in vals.items()}
    H, H32 = f.hessian(**vals), f.hessian(**v32)
    D, D32 = f.hessian_diag(**vals), f.hessian_diag(**v32)
    for a in H:
        assert D32[a].dtype == np.float64 and np.allclose(D32[a], D[a], rtol=1e-4, atol=1e-5)
        for b in H[a]:
            assert H32[a][b].dtype == np.float64
            assert np.allclose(H32[a][b], H[a][b], rtol=1e-4, atol=1e-5)


def test_the_fallback_is_named_and_still_the_diagonal():
    B = sp.Symbol("B", integer=True, positive=True)
    X_, W_ = sp.MatrixSymbol("X", B, 3), sp.MatrixSymbol("W", 3, 2)
    R = (X_ * W_).applyfunc(sp.tanh) * W_.T - X_  # a tied autoencoder: W on both sides
    f = sg.compile(sp.Trace(R.T * R), wrt=[W_], args=[X_])
    rng = np.random.default_rng(10)
    vals = {"X": rng.normal(size=(5, 3)), "W": rng.normal(size=(3, 2))}
    assert f.hessian_diag_paths == {"W": "columns"}
    assert "(columns)" in f.hessian_diag_source and "einsum('aabb->ab'" in f.hessian_diag_source
    H = f.hessian(**vals)["W"]["W"].reshape(6, 6)
    want = gradient_differences(f, vals, ["W"])["W"]["W"].reshape(6, 6)
    assert np.allclose(H, want, rtol=1e-6, atol=1e-7)
    assert np.allclose(f.hessian_diag(**vals)["W"].ravel(), np.diag(H), rtol=1e-12)


def test_a_matrix_valued_output_averaged():
    B = sp.Symbol("B", integer=True, positive=True)
    X_, W_ = sp.MatrixSymbol("X", B, 3), sp.MatrixSymbol("W", 3, 2)
    f = sg.compile((X_ * W_).applyfunc(sp.tanh), wrt=[W_], args=[X_], reduce="mean")
    rng = np.random.default_rng(11)
    X, W = rng.normal(size=(4, 3)), rng.normal(size=(3, 2))
    t = np.tanh(X @ W)
    c = -2 * t * (1 - t * t) / t.size  # d²/dz² of tanh, averaged over the 4 × 2 entries
    H = np.zeros((3, 2, 3, 2))
    for j in range(2):  # column j of W meets column j of Z only
        H[:, j, :, j] = X.T @ (c[:, j:j + 1] * X)
    assert np.allclose(f.hessian(X=X, W=W)["W"]["W"], H, rtol=1e-12, atol=1e-14)
    assert np.allclose(f.hessian_diag(X=X, W=W)["W"], np.einsum("ajaj->aj", H), rtol=1e-12)


def test_sources_say_what_each_function_computes():
    net = sg.nn.mlp([3, 4, 2], activation="tanh", loss="softmax_cross_entropy")
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    src = f.hessian_source
    assert [m for m in re.findall(r"^def (\w+)\(", src, re.M) if not m.startswith("_")] == \
        ["columns_W1", "columns_b1", "columns_W2", "columns_b2"]
    assert "∂²L/∂(W2, b2)∂W2" in src  # the blocks before W2 are transposes of those computed
    assert re.findall(r"^def diagonal_(\w+)\(", f.hessian_diag_source, re.M) == ["W1", "b1", "W2", "b2"]
    assert "hvp" in sg.compile(sp.Symbol("x") ** 3, wrt=[sp.Symbol("x")]).hessian_diag_paths.values()


def test_a_parameter_on_the_left_of_a_product():
    B = sp.Symbol("B", integer=True, positive=True)
    X_, W_, c_ = sp.MatrixSymbol("X", 3, B), sp.MatrixSymbol("W", 2, 3), sp.MatrixSymbol("c", 2, 1)
    Z = W_ * X_ + c_ * sp.OneMatrix(1, B)  # samples in columns: W multiplies from the left
    f = sg.compile(sp.Trace(sp.OneMatrix(1, 2) * Z.applyfunc(sp.tanh) * sp.OneMatrix(B, 1)), wrt=[W_, c_], args=[X_])
    rng = np.random.default_rng(12)
    vals = {"X": rng.normal(size=(3, 7)), "W": rng.normal(size=(2, 3)), "c": rng.normal(size=(2, 1))}
    want = gradient_differences(f, vals, ["W", "c"])
    H = f.hessian(**vals)
    for a in want:
        for b in want:
            assert np.allclose(H[a][b], want[a][b], rtol=1e-6, atol=1e-7), (a, b)
    D = f.hessian_diag(**vals)
    assert np.allclose(D["W"], np.diagonal(H["W"]["W"].reshape(6, 6)).reshape(2, 3), rtol=1e-12)
    assert np.allclose(D["c"], np.diagonal(H["c"]["c"].reshape(2, 2)).reshape(2, 1), rtol=1e-12)


def _directional_gradient_difference(f, vals, v, h=1e-5):
    """(∇L(p + h·v) − ∇L(p − h·v)) / 2h: H·v by central differences of f.grad."""
    gp = f.grad(**{**vals, **{k: vals[k] + h * t for k, t in v.items()}})
    gm = f.grad(**{**vals, **{k: vals[k] - h * t for k, t in v.items()}})
    return {k: (np.asarray(gp[k]) - np.asarray(gm[k])) / (2 * h) for k in gp}


def test_hvp_program_matches_central_differences_of_the_gradient():
    """The HVP program (returns included: arrays of their own, shaped and typed like each
    parameter) against differences of the gradient, for logistic regression and an MLP."""
    rng = np.random.default_rng(11)
    X, y = data(rng)
    w = sp.MatrixSymbol("w", d, 1)
    f = sg.compile(logistic_loss(sp.MatrixSymbol("X", n, d), w, sp.MatrixSymbol("y", n, 1)), wrt=[w],
                   args=[sp.MatrixSymbol("X", n, d), sp.MatrixSymbol("y", n, 1)])
    vals = {"X": X, "y": y, "w": rng.normal(size=(7, 1))}
    v = {"w": rng.normal(size=(7, 1))}
    got = f.hvp(v, **vals)
    assert np.allclose(got["w"], _directional_gradient_difference(f, vals, v)["w"], rtol=1e-6, atol=1e-8)
    assert got["w"] is not v["w"] and not np.shares_memory(got["w"], v["w"]) and got["w"].dtype == np.float64

    net = sg.nn.mlp([3, 5, 4], activation="tanh", loss="softmax_cross_entropy")
    g = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    p = {k: t + 0.3 * rng.normal(size=t.shape) for k, t in sg.nn.init_params(net, seed=2).items()}
    vals = {"X": rng.normal(size=(9, 3)), "Y": np.eye(4)[rng.integers(0, 4, 9)], **p}
    v = {k: rng.normal(size=t.shape) for k, t in p.items()}
    got, want = g.hvp(v, **vals), _directional_gradient_difference(g, vals, v)
    for k in p:
        assert got[k].shape == p[k].shape and got[k].flags.owndata, k
        assert np.allclose(got[k], want[k], rtol=1e-6, atol=1e-8), k
    part = g.hvp({"W2": v["W2"]}, **vals)  # a missing direction is zero
    want = _directional_gradient_difference(g, vals, {"W2": v["W2"]})
    for k in p:
        assert np.allclose(part[k], want[k], rtol=1e-6, atol=1e-8), k
