"""Compiled functions on other array libraries (symgrad.portable): PyTorch, JAX (eager and jit),
Dask (from memory-mapped files), array-api-strict. References: SymPy's own derivative
(lambdified, summed over the batch), hand-written backprop for a network, and NumPy's result
of the same call (1e-12 in float64, as the issue asks). Each library skips cleanly when absent.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad import nn, train
from symgrad.errors import InputError, UnsupportedError
from symgrad.functions import sigmoid

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib keeps tests/ off sys.path
from catalogue import CATALOGUE, params  # noqa: E402

SCIPY_FREE = [n for n in CATALOGUE if not CATALOGUE[n].needs_scipy]
_compiled = {}


def compiled(name):
    if name not in _compiled:
        c = CATALOGUE[name]
        _compiled[name] = sg.compile(c.expr, wrt=list(c.wrt), args=c.args)
    return _compiled[name]


def sympy_reference(case):
    """Value summed over the batch and d/dw summed over the batch, by SymPy (not symgrad)."""
    syms = sorted(case.expr.free_symbols, key=lambda s: s.name)
    vals = [np.asarray(case.at[s], dtype=float) for s in syms]
    modules = ["scipy", "numpy"] if case.needs_scipy else ["numpy"]
    real = {s: sp.Symbol(s.name, real=True) for s in syms}  # d|u|/du = sign(u) over the reals
    expr, syms = case.expr.xreplace(real), [real[s] for s in syms]
    value = np.sum(sp.lambdify(syms, expr, modules=modules)(*vals))
    full = np.broadcast_shapes(*(np.shape(v) for v in vals))
    grads = {}
    for w in case.wrt:
        d = np.broadcast_to(sp.lambdify(syms, sp.diff(expr, real[w]).doit(), modules=modules)(*vals), full)
        shape = np.shape(case.at[w])
        lead = len(full) - len(shape)  # summed over the batch axes the parameter does not have
        d = d.sum(axis=tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1), keepdims=False)
        grads[w.name] = np.reshape(d, shape)
    return float(value), grads


def to_lib(values, asarray):
    """Arrays (and, with every_value, numbers) of the case as the library's arrays."""
    return {k: asarray(np.asarray(v, dtype=float)) for k, v in values.items()}


def close(a, b, rtol=1e-12):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


# ---- PyTorch: the whole catalogue, against SymPy and against NumPy ------------------------------
@pytest.mark.parametrize("name", params())
def test_torch_catalogue_matches_sympy_and_numpy(name):
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    case, f = CATALOGUE[name], compiled(name)
    lib = to_lib(case.values, torch.asarray)
    value, grads = f.value_and_grad(**lib)
    assert isinstance(value, torch.Tensor) and all(isinstance(g, torch.Tensor) for g in grads.values())
    ref_value, ref_grads = sympy_reference(case)
    close(value, ref_value, 1e-9)
    np_value, np_grads = f.value_and_grad(**case.values)
    close(value, np_value)
    for k in ref_grads:
        close(grads[k], ref_grads[k], 1e-8)
        close(grads[k], np_grads[k])
        close(f.grad(**lib)[k], np_grads[k])
    direction = {w.name: 0.5 + i for i, w in enumerate(case.wrt)}
    _, dot = f.jvp({k: torch.asarray(v, dtype=torch.float64) for k, v in direction.items()}, **lib)
    _, np_dot = f.jvp(direction, **case.values)
    np.testing.assert_allclose(dot.numpy(), np_dot, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(f(**lib).numpy(), f(**case.values), rtol=1e-12, atol=1e-300)


# ---- array-api-strict: only what the standard has --------------------------------------------
@pytest.mark.parametrize("name", params(SCIPY_FREE))
def test_array_api_strict_catalogue(name):
    xps = pytest.importorskip("array_api_strict")
    case, f = CATALOGUE[name], compiled(name)
    lib = to_lib(case.values, xps.asarray)
    value, grads = f.value_and_grad(**lib)
    np_value, np_grads = f.value_and_grad(**case.values)
    close(value, np_value)
    for k in np_grads:
        close(grads[k], np_grads[k])


def test_a_function_the_library_lacks_is_named():
    xps = pytest.importorskip("array_api_strict")
    x, w = sp.symbols("x w")
    f = sg.compile(sp.erf(w * x), wrt=[w])
    with pytest.raises(UnsupportedError, match=r"array_api_strict has no erf"):
        f.grad(x=xps.asarray([0.5, 1.0]), w=0.3)


# ---- JAX: eager and under jax.jit ------------------------------------------------------------
@pytest.fixture
def jnp():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    return jnp


@pytest.mark.parametrize("name", ["lecture_full_logistic_loss", "tanh", "softplus", "relu", "max_three",
                                  "piecewise_three_branches", "erf", "batch_array_parameter", "shared_diamond"])
def test_jax_jit_grad_matches_sympy(jnp, name):
    import jax

    if name not in CATALOGUE:
        pytest.skip("not in the catalogue")
    case, f = CATALOGUE[name], compiled(name)
    names = [s.name for s in f.params]
    g = jax.jit(lambda *a: f.grad(**dict(zip(names, a))))
    grads = g(*[jnp.asarray(np.asarray(case.values[n], dtype=float)) for n in names])
    _, ref = sympy_reference(case)
    np_grads = f.grad(**case.values)
    for k in ref:
        assert isinstance(grads[k], jax.Array)
        close(grads[k], ref[k], 1e-8)
        close(grads[k], np_grads[k])


# ---- a network at matrix level: torch, JAX jit, Dask, array-api-strict, float32 ----------------
def _mlp():
    net = nn.mlp([5, 7, 3], activation="tanh", loss="softmax_cross_entropy")
    f = sg.compile(net.loss, wrt=net.params)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(11, 5))
    Y = train.one_hot(rng.integers(0, 3, 11), 3)
    return f, {"X": X, "Y": Y, **nn.init_params(net, seed=1)}


def hand_backprop(v):
    """Hand-written backprop of mean softmax cross-entropy of tanh MLP (written in nn.mlp's layout)."""
    X, Y, W1, b1, W2, b2 = (v[k] for k in ("X", "Y", "W1", "b1", "W2", "b2"))
    H = np.tanh(X @ W1 + b1)
    Z = H @ W2 + b2
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    n = X.shape[0]
    loss = -np.sum(Y * np.log(P)) / n
    dZ = (P - Y) / n
    dH = dZ @ W2.T * (1 - H ** 2)
    return loss, {"W1": X.T @ dH, "b1": dH.sum(axis=0, keepdims=True), "W2": H.T @ dZ,
                  "b2": dZ.sum(axis=0, keepdims=True)}


def test_network_layout_is_the_hand_backprop():
    f, v = _mlp()
    loss, grads = hand_backprop(v)
    value, g = f.value_and_grad(**v)
    close(value, loss)
    for k in grads:
        np.testing.assert_allclose(g[k], grads[k], rtol=1e-10, atol=1e-14)


def _check_network(value, grads, to_numpy, rtol=1e-12):
    _, v = _mlp()
    loss, ref = hand_backprop(v)
    close(to_numpy(value), loss, 1e-10)
    f, _ = _mlp()
    _, np_grads = f.value_and_grad(**v)
    for k in ref:
        np.testing.assert_allclose(to_numpy(grads[k]), ref[k], rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(to_numpy(grads[k]), np_grads[k], rtol=rtol, atol=1e-15)


def test_network_on_torch_and_inputs_untouched():
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    f, v = _mlp()
    lib = {k: torch.asarray(a) for k, a in v.items()}
    before = {k: t.clone() for k, t in lib.items()}
    value, grads = f.value_and_grad(**lib)
    assert isinstance(grads["W1"], torch.Tensor) and grads["W1"].shape == (5, 7)
    _check_network(value, grads, lambda t: np.asarray(t))
    for k in lib:
        assert torch.equal(lib[k], before[k])
    # jvp of the loss along every parameter's ones
    t = {k: torch.ones_like(lib[k]) for k in ("W1", "b1", "W2", "b2")}
    _, dot = f.jvp(t, **lib)
    _, np_dot = f.jvp({k: np.ones_like(v[k]) for k in t}, **v)
    close(dot, np_dot)


def test_network_under_jax_jit(jnp):
    import jax

    f, v = _mlp()
    step = jax.jit(lambda d: f.value_and_grad(**d))
    value, grads = step({k: jnp.asarray(a) for k, a in v.items()})
    assert isinstance(grads["W2"], jax.Array)
    _check_network(value, grads, np.asarray)


def test_network_on_dask_is_lazy_and_right():
    da = pytest.importorskip("dask.array")
    pytest.importorskip("array_api_compat")
    import dask

    f, v = _mlp()
    lib = {k: (da.from_array(a, chunks=(4, -1)) if k in ("X", "Y") else a) for k, a in v.items()}
    value, grads = f.value_and_grad(**lib)
    assert isinstance(grads["W1"], da.Array)  # nothing computed yet
    value, grads = dask.compute(value, grads)
    _check_network(value, grads, np.asarray, rtol=1e-11)  # chunked sums round differently


def test_network_on_array_api_strict_and_float32():
    xps = pytest.importorskip("array_api_strict")
    f, v = _mlp()
    value, grads = f.value_and_grad(**{k: xps.asarray(a) for k, a in v.items()})
    _check_network(value, grads, lambda a: np.asarray(a))
    value32, grads32 = f.value_and_grad(**{k: xps.asarray(a.astype(np.float32)) for k, a in v.items()})
    assert grads32["W1"].dtype == xps.float32 and value32.dtype == xps.float32
    _, ref = hand_backprop(v)
    for k in ref:
        np.testing.assert_allclose(np.asarray(grads32[k]), ref[k], rtol=2e-4, atol=2e-6)


# ---- Dask over a memory-mapped file -----------------------------------------------------------
def test_logistic_loss_over_a_memmap_with_dask(tmp_path):
    da = pytest.importorskip("dask.array")
    pytest.importorskip("array_api_compat")
    import dask

    x, y, w, b = sp.symbols("x y w b")
    p = sigmoid(w * x + b)
    f = sg.compile(-y * sp.log(p) - (1 - y) * sp.log(1 - p), wrt=[w, b], args=[x, y], reduce="mean")
    rng = np.random.default_rng(0)
    n = 20_000
    X = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=(n,))
    Y = np.lib.format.open_memmap(tmp_path / "y.npy", mode="w+", dtype=np.float64, shape=(n,))
    X[:] = rng.normal(size=n)
    Y[:] = rng.random(n) < 1 / (1 + np.exp(-(2 * X - 0.5)))
    X.flush(), Y.flush()
    xs = da.from_array(np.load(tmp_path / "x.npy", mmap_mode="r"), chunks=3000)
    ys = da.from_array(np.load(tmp_path / "y.npy", mmap_mode="r"), chunks=3000)
    value, grads = dask.compute(*f.value_and_grad(x=xs, y=ys, w=0.7, b=0.1))
    # closed form of the mean logistic loss and its gradient
    Xa, Ya = np.asarray(X), np.asarray(Y)
    s = 1 / (1 + np.exp(-(0.7 * Xa + 0.1)))
    close(value, np.mean(-Ya * np.log(s) - (1 - Ya) * np.log(1 - s)), 1e-12)
    close(grads["w"], np.mean((s - Ya) * Xa), 1e-11)
    close(grads["b"], np.mean(s - Ya), 1e-11)


def test_fit_streams_batches_from_a_memmap_and_from_dask(tmp_path):
    da = pytest.importorskip("dask.array")
    pytest.importorskip("array_api_compat")
    net = nn.mlp([4, 3], activation="tanh", loss="mse")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(64, 4))
    Y = rng.normal(size=(64, 3))
    mx = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=X.shape)
    mx[:] = X
    mx.flush()
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    p0 = nn.init_params(net, seed=0)
    kw = dict(epochs=3, batch_size=10, optimizer=train.SGD(0.05), seed=2)
    ref = train.fit(train.gradient_fn(net), p0, {"X": X, "Y": Y}, **kw)
    from_mm = train.fit(train.gradient_fn(net), p0, {"X": mm, "Y": Y}, **kw)
    from_dask = train.fit(train.gradient_fn(net), p0, {"X": da.from_array(mm, chunks=16), "Y": Y}, **kw)
    for h in (from_mm, from_dask):
        assert h.loss == pytest.approx(ref.loss, rel=1e-13)
        for k in ref.params:
            np.testing.assert_allclose(h.params[k], ref.params[k], rtol=1e-12)


def test_fit_names_a_nonfinite_sample_in_dask_data():
    da = pytest.importorskip("dask.array")
    net = nn.mlp([2, 1], activation="tanh", loss="mse")
    X = np.ones((20, 2))
    X[13, 1] = np.nan
    with pytest.raises(InputError, match="sample 13"):
        train.fit(train.gradient_fn(net), nn.init_params(net), {"X": da.from_array(X, chunks=5),
                                                               "Y": np.zeros((20, 1))}, epochs=1, batch_size=7)


# ---- errors ----------------------------------------------------------------------------------
def test_mixed_libraries_and_bad_values_are_named():
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    jnp = pytest.importorskip("jax.numpy")
    x, w = sp.symbols("x w")
    f = sg.compile(sp.tanh(w * x), wrt=[w])
    with pytest.raises(InputError, match="mix arrays of jax and torch"):
        f.grad(x=torch.ones(3, dtype=torch.float64), w=jnp.asarray(0.5))
    with pytest.raises(InputError, match="'x' contains nan"):
        f.grad(x=torch.tensor([1.0, float("nan")], dtype=torch.float64), w=0.5)
    with pytest.raises(InputError, match="complex"):
        f.grad(x=torch.ones(2, dtype=torch.complex128), w=0.5)
    with pytest.raises(InputError, match="runs on NumPy arrays only"):
        f.hessian(x=torch.ones(3, dtype=torch.float64), w=0.5)


def test_torch_float32_and_integer_inputs():
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    x, w = sp.symbols("x w")
    f = sg.compile(sp.log(1 + sp.exp(w * x)), wrt=[w])
    g32 = f.grad(x=torch.tensor([1.0, 2.0], dtype=torch.float32), w=0.5)["w"]
    assert g32.dtype == torch.float32
    ref = sum(xv / (1 + np.exp(-0.5 * xv)) for xv in (1.0, 2.0))  # d/dw log(1 + e^{wx}) = x σ(wx)
    assert abs(float(g32) - ref) < 1e-5
    g64 = f.grad(x=torch.tensor([1, 2]), w=torch.tensor(0.5, dtype=torch.float64))["w"]
    assert g64.dtype == torch.float64 and abs(float(g64) - ref) < 1e-13


def test_numpy_path_is_unchanged():
    """NumPy inputs never touch the array-API module (its cache stays empty)."""
    x, w = sp.symbols("x w")
    f = sg.compile(sp.tanh(w * x), wrt=[w])
    f.grad(x=np.array([0.5, 1.0]), w=0.2)
    f.value_and_grad(x=[0.5, 1.0], w=0.2)
    f.jvp({"w": 1.0}, x=np.array([0.5, 1.0]), w=0.2)
    assert not f.__dict__.get("_xp_modules")


def test_symbols_named_like_the_namespaces_do_not_shadow_them():
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    xp, xsp, w = sp.symbols("xp xsp w")
    f = sg.compile(sp.tanh(w * xp) + xsp * w, wrt=[w])
    X = np.array([0.5, 1.0])
    g = f.grad(xp=torch.asarray(X), xsp=2.0, w=0.3)["w"]
    ref = np.sum(X * (1 - np.tanh(0.3 * X) ** 2) + 2.0)  # d/dw tanh(w·xp) + xsp·w
    assert abs(float(g) - ref) < 1e-12


def test_a_compiled_sympy_matrix_refuses_other_libraries_by_name():
    torch = pytest.importorskip("torch")
    x, w = sp.symbols("x w")
    f = sg.compile(sp.Matrix([w * x, w ** 2]), wrt=[w])
    t = torch.tensor([2.0], dtype=torch.float64)
    for call in (lambda: f(x=t, w=0.5), lambda: f.jacobian(x=t, w=0.5), lambda: f.jvp({"w": 1.0}, x=t, w=0.5),
                 lambda: f.vjp(torch.ones(2, 1, dtype=torch.float64), x=np.array([2.0]), w=0.5)):
        with pytest.raises(InputError, match="runs on NumPy arrays only"):
            call()
    np.testing.assert_allclose(f.jacobian(x=np.array([2.0]), w=0.5)["w"], [[2.0], [1.0]])  # x and 2w: NumPy works


# ---- Hessian-vector products on other libraries ---------------------------------------------------
def test_hvp_on_torch_and_under_jax_jit_matches_central_differences(jnp):
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    import jax

    f, v = _mlp()
    rng = np.random.default_rng(9)
    direction = {k: rng.normal(size=np.shape(v[k])) for k in ("W1", "b1", "W2", "b2")}
    # central differences of the hand-written backprop's gradient along the direction
    eps = 1e-5
    plus = hand_backprop({**v, **{k: v[k] + eps * d for k, d in direction.items()}})[1]
    minus = hand_backprop({**v, **{k: v[k] - eps * d for k, d in direction.items()}})[1]
    ref = {k: (plus[k] - minus[k]) / (2 * eps) for k in plus}
    hv_torch = f.hvp({k: torch.asarray(d) for k, d in direction.items()}, **{k: torch.asarray(a) for k, a in v.items()})
    assert isinstance(hv_torch["W1"], torch.Tensor)
    hvp_jit = jax.jit(lambda d, vals: f.hvp(d, **vals))
    hv_jax = hvp_jit({k: jnp.asarray(d) for k, d in direction.items()}, {k: jnp.asarray(a) for k, a in v.items()})
    hv_np = f.hvp(direction, **v)
    for k in ref:
        np.testing.assert_allclose(np.asarray(hv_torch[k]), ref[k], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(np.asarray(hv_jax[k]), ref[k], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(np.asarray(hv_torch[k]), hv_np[k], rtol=1e-12, atol=1e-14)


def test_scalar_hvp_on_array_api_strict_matches_sympy():
    xps = pytest.importorskip("array_api_strict")
    x, y, w, b = sp.symbols("x y w b")
    p = sigmoid(w * x + b)
    loss = -y * sp.log(p) - (1 - y) * sp.log(1 - p)
    f = sg.compile(loss, wrt=[w, b], args=[x, y], reduce="mean")
    X, Y = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, 1.0])
    hv = f.hvp({"w": xps.asarray(1.0), "b": xps.asarray(-2.0)}, x=xps.asarray(X), y=xps.asarray(Y), w=0.3, b=0.1)
    H = sp.hessian(loss, (w, b))
    ref = np.zeros(2)
    for xv, yv in zip(X, Y):
        Hn = np.array(H.subs({x: xv, y: yv, w: 0.3, b: 0.1}).evalf(30), dtype=float)
        ref += Hn @ np.array([1.0, -2.0])
    ref /= len(X)
    np.testing.assert_allclose([float(hv["w"]), float(hv["b"])], ref, rtol=1e-12)
