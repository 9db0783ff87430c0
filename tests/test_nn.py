"""symgrad.nn builds the right expressions; symgrad.reference computes the right gradients.

The expressions are checked numerically with a tiny independent NumPy evaluator of SymPy
matrix expressions (below), against the hand-written reference; the reference is checked
against central finite differences in a seeded random direction and against sympy.diff
on the lecture's one-neuron logistic regression.
"""

import functools
import math

import numpy as np
import pytest
import sympy as sp

from symgrad import nn, reference, train
from symgrad.errors import InputError

# ---------------------------------------------------------------------------- evaluator


def evaluate(expr, values, dims=None):
    """Evaluate a SymPy matrix/scalar expression with NumPy; ``values`` maps symbol names to arrays."""
    dims = dims or {}
    ev = functools.partial(evaluate, values=values, dims=dims)

    def shape(M):
        return tuple(int(sp.sympify(n).subs(dims)) for n in M.shape)

    if isinstance(expr, sp.MatrixSymbol):
        return np.asarray(values[expr.name], dtype=float)
    if isinstance(expr, sp.OneMatrix):
        return np.ones(shape(expr))
    if isinstance(expr, sp.ZeroMatrix):
        return np.zeros(shape(expr))
    if isinstance(expr, sp.Identity):
        return np.eye(shape(expr)[0])
    if isinstance(expr, sp.MatMul):
        out = 1.0
        for a in expr.args:
            v = ev(a)
            out = out @ v if np.ndim(out) == 2 and np.ndim(v) == 2 else out * v
        return out
    if isinstance(expr, (sp.MatAdd, sp.Add)):
        return sum(ev(a) for a in expr.args)
    if isinstance(expr, sp.Transpose):
        return ev(expr.arg).T
    if isinstance(expr, sp.HadamardProduct):
        return functools.reduce(np.multiply, [ev(a) for a in expr.args])
    if isinstance(expr, sp.HadamardPower):
        return ev(expr.base) ** float(expr.exp)
    if isinstance(expr, sp.matrices.expressions.applyfunc.ElementwiseApplyFunction):
        (var,), body = expr.function.variables, expr.function.expr
        f = sp.lambdify(var, body, "numpy")
        arg = ev(expr.expr)
        return np.broadcast_to(f(arg), arg.shape).astype(float)
    if isinstance(expr, sp.Trace):
        return float(np.trace(ev(expr.arg)))
    if isinstance(expr, sp.Mul):
        return math.prod(ev(a) for a in expr.args)
    if isinstance(expr, sp.Pow):
        return ev(expr.base) ** ev(expr.exp)
    if isinstance(expr, sp.Symbol):
        return float(dims[expr])
    if expr.is_Number:
        return float(expr)
    raise TypeError(f"evaluator: unsupported {type(expr).__name__}: {expr}")


def canonical(expr):
    """``expr`` with every Lambda's bound variable renamed to one symbol (applyfunc makes fresh dummies)."""
    v = sp.Symbol("v")
    return expr.replace(lambda e: isinstance(e, sp.Lambda),
                        lambda e: sp.Lambda(v, e.expr.xreplace({e.variables[0]: v})))


def stable_softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


B = sp.Symbol("B", integer=True, positive=True)
rng0 = np.random.default_rng(1234)

ACTS = list(nn.ACTIVATIONS)
LOSSES = list(nn.LOSSES)


def problem(sizes, loss, seed=0, batch=7):
    """Random params, inputs and targets of the right kind for ``loss``."""
    rng = np.random.default_rng(seed)
    params = {}
    for k, (a, b) in enumerate(zip(sizes, sizes[1:]), start=1):
        params[f"W{k}"] = rng.normal(size=(a, b))
        params[f"b{k}"] = rng.normal(size=(1, b)) * 0.5
    X = rng.normal(size=(batch, sizes[0]))
    C = sizes[-1]
    if loss == "softmax_cross_entropy":
        Y = np.eye(C)[rng.integers(0, C, batch)]
    elif loss == "binary_cross_entropy":
        Y = rng.integers(0, 2, size=(batch, C)).astype(float)
    else:
        Y = rng.normal(size=(batch, C)) * 2
    return params, X, Y


# ---------------------------------------------------------------------------- expressions


def test_issue_network_shapes():
    net = nn.mlp([64, 128, 10])
    assert [p.name for p in net.params] == ["W1", "b1", "W2", "b2"]
    assert [p.shape for p in net.params] == [(64, 128), (1, 128), (128, 10), (1, 10)]
    assert net.inputs.shape == (net.batch, 64) and net.targets.shape == (net.batch, 10)
    assert net.output.shape == (net.batch, 10)
    assert net.loss.is_commutative and not isinstance(net.loss, sp.MatrixExpr)
    assert net.batch.is_integer and net.batch.is_positive
    assert net.shapes == {"W1": (64, 128), "b1": (1, 128), "W2": (128, 10), "b2": (1, 10)}


def test_mlp_matches_the_issue_user_code():
    """nn.mlp(..., loss='mse') is the issue's hand-written network, up to Lambda dummies."""
    X, Y = sp.MatrixSymbol("X", B, 64), sp.MatrixSymbol("Y", B, 10)
    W1, b1 = sp.MatrixSymbol("W1", 64, 128), sp.MatrixSymbol("b1", 1, 128)
    W2, b2 = sp.MatrixSymbol("W2", 128, 10), sp.MatrixSymbol("b2", 1, 10)
    A1 = (X * W1 + sp.OneMatrix(B, 1) * b1).applyfunc(sp.tanh)
    Z2 = A1 * W2 + sp.OneMatrix(B, 1) * b2
    L = sp.Trace((Z2 - Y).T * (Z2 - Y)) / B
    net = nn.mlp([64, 128, 10], loss="mse", batch=B)
    assert canonical(net.output) == canonical(Z2)
    assert canonical(net.loss) == canonical(L)


def test_softmax_cross_entropy_is_the_naive_form():
    Z, Y, C = sp.MatrixSymbol("Z", B, 10), sp.MatrixSymbol("Y", B, 10), 10
    naive = (sp.Trace(sp.OneMatrix(1, B) * (Z.applyfunc(sp.exp) * sp.OneMatrix(C, 1)).applyfunc(sp.log))
             - sp.Trace(Y.T * Z)) / B
    assert canonical(nn.softmax_cross_entropy(Z, Y)) == canonical(naive)


def test_same_activation_twice_is_one_expression():
    Z = sp.MatrixSymbol("Z", B, 3)
    assert nn.tanh(Z) == nn.tanh(Z) and nn.softmax(Z) == nn.softmax(Z)
    assert nn.mlp([3, 4, 2]).loss == nn.mlp([3, 4, 2]).loss


@pytest.mark.parametrize("name", ACTS)
def test_activation_values(name):
    Z = sp.MatrixSymbol("Z", 4, 3)
    z = rng0.normal(size=(4, 3)) * 3
    got = evaluate(nn.ACTIVATIONS[name](Z), {"Z": z})
    want = {
        "tanh": np.tanh(z),
        "sigmoid": 1 / (1 + np.exp(-z)),
        "relu": np.maximum(z, 0),
        "leaky_relu": np.where(z > 0, z, 0.01 * z),
        "softplus": np.log1p(np.exp(z)),
    }[name]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_leaky_relu_alpha_is_exact():
    Z = sp.MatrixSymbol("Z", 2, 2)
    assert nn.leaky_relu(Z, 0.2).function.expr.args[1] == sp.Rational(1, 5)
    np.testing.assert_allclose(evaluate(nn.leaky_relu(Z, 0.2), {"Z": np.array([[-1.0, 2], [3, -4]])}),
                               [[-0.2, 2], [3, -0.8]])


def test_softmax_rows():
    Z = sp.MatrixSymbol("Z", B, 5)
    z = rng0.normal(size=(6, 5))
    S = evaluate(nn.softmax(Z), {"Z": z}, {B: 6})
    np.testing.assert_allclose(S, stable_softmax(z), rtol=1e-12)
    np.testing.assert_allclose(S.sum(axis=1), 1.0)
    assert nn.softmax(Z).shape == (B, 5)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_loss_expression_equals_reference(act, loss):
    sizes = [3, 4, 2]
    net = nn.mlp(sizes, activation=act, loss=loss)
    params, X, Y = problem(sizes, loss)
    values = {"X": X, "Y": Y, **params}
    got = evaluate(net.loss, values, {net.batch: X.shape[0]})
    want, _ = reference.mlp_value_and_grad(params, X, Y, act, loss)
    assert got == pytest.approx(want, rel=1e-12)
    out = evaluate(net.output, values, {net.batch: X.shape[0]})
    np.testing.assert_allclose(out, reference.mlp_forward(params, X, act), rtol=1e-12)


def test_deeper_network_expression_equals_reference():
    sizes = [5, 4, 3, 3]
    net = nn.mlp(sizes, activation="relu", loss="softmax_cross_entropy")
    assert [p.name for p in net.params] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    params, X, Y = problem(sizes, "softmax_cross_entropy")
    got = evaluate(net.loss, {"X": X, "Y": Y, **params}, {net.batch: X.shape[0]})
    assert got == pytest.approx(reference.mlp_value_and_grad(params, X, Y, "relu")[0], rel=1e-12)


def test_fixed_batch():
    net = nn.mlp([3, 2], batch=5)
    assert net.inputs.shape == (5, 3) and net.batch == 5


def test_bce_probabilities_equals_logits():
    Z, Y = sp.MatrixSymbol("Z", B, 2), sp.MatrixSymbol("Y", B, 2)
    z = rng0.normal(size=(5, 2))
    y = rng0.integers(0, 2, size=(5, 2)).astype(float)
    p = 1 / (1 + np.exp(-z))
    a = evaluate(nn.binary_cross_entropy(Z, Y), {"Z": z, "Y": y}, {B: 5})
    b = evaluate(nn.binary_cross_entropy(Z, Y, logits=False), {"Z": p, "Y": y}, {B: 5})
    textbook = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) / 5
    assert a == pytest.approx(textbook, rel=1e-12) and b == pytest.approx(textbook, rel=1e-12)


def test_huber_delta():
    Z, Y = sp.MatrixSymbol("Z", 4, 1), sp.MatrixSymbol("Y", 4, 1)
    r = np.array([[-3.0], [-0.5], [1.0], [2.5]])
    got = evaluate(nn.huber(Z, Y, delta=2), {"Z": r, "Y": np.zeros((4, 1))})
    assert got == pytest.approx((2 * (3 - 1) + 0.125 + 0.5 + 2 * (2.5 - 1)) / 4)


def test_logistic_regression_network():
    net = nn.logistic_regression(30)
    assert [p.name for p in net.params] == ["w", "b"] and net.shapes == {"w": (30, 1), "b": (1, 1)}
    assert net.output.shape == (net.batch, 1) and net.kind == "logistic_regression"


# ---------------------------------------------------------------------------- init


def test_init_is_seeded_and_ordered():
    net = nn.mlp([64, 128, 10])
    a, b, c = nn.init_params(net, seed=3), nn.init_params(net, seed=3), nn.init_params(net, seed=4)
    assert list(a) == ["W1", "b1", "W2", "b2"]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["W1"], c["W1"])
    assert all(v.dtype == np.float64 for v in a.values())
    assert not a["b1"].any() and not a["b2"].any()
    # a list of parameters works the same way
    d = nn.init_params(list(net.params), seed=3)
    assert all(np.array_equal(a[k], d[k]) for k in a)


def test_glorot_scale():
    W = nn.init_params([sp.MatrixSymbol("W", 300, 200)], seed=0, scheme="glorot")["W"]
    limit = math.sqrt(6 / 500)
    assert np.abs(W).max() <= limit and np.abs(W).max() > 0.99 * limit
    assert W.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    assert abs(W.mean()) < 0.01 * limit


def test_he_scale():
    W = nn.init_params([sp.MatrixSymbol("W", 300, 200)], seed=0, scheme="he")["W"]
    assert W.std() == pytest.approx(math.sqrt(2 / 300), rel=0.02)


def test_zeros_scheme():
    p = nn.init_params(nn.logistic_regression(3), scheme="zeros")
    assert p["w"].shape == (3, 1) and not p["w"].any() and p["b"].shape == (1, 1)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("sizes, fragment", [
    ([64], "at least an input and an output"),
    ([], "at least an input and an output"),
    ([64, 0, 10], "sizes[1] must be a positive int"),
    ([64, -3, 10], "sizes[1] must be a positive int"),
    ([64, 2.5], "sizes[1] must be a positive int"),
    ([64, True], "sizes[1] must be a positive int"),
    (64, "list of layer widths"),
])
def test_bad_sizes(sizes, fragment):
    with pytest.raises(InputError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        nn.mlp(sizes)


def test_unknown_names_suggest():
    with pytest.raises(InputError, match="unknown activation 'tanhh'; did you mean 'tanh'"):
        nn.mlp([2, 2], activation="tanhh")
    with pytest.raises(InputError, match="did you mean 'softmax_cross_entropy'"):
        nn.mlp([2, 2], loss="softmax_crossentropy")
    with pytest.raises(InputError, match="known: tanh, sigmoid"):
        nn.mlp([2, 2], activation="gelu")
    with pytest.raises(InputError, match="did you mean 'glorot'"):
        nn.init_params(nn.mlp([2, 2]), scheme="gloro")


def test_softmax_ce_needs_two_outputs():
    with pytest.raises(InputError, match="binary_cross_entropy"):
        nn.mlp([3, 1])


def test_shape_errors():
    X, W, b = sp.MatrixSymbol("X", B, 3), sp.MatrixSymbol("W", 4, 2), sp.MatrixSymbol("b", 1, 2)
    with pytest.raises(InputError, match="do not chain"):
        nn.dense(X, W, b)
    with pytest.raises(InputError, match=r"must have shape \(1, 2\)"):
        nn.dense(X, sp.MatrixSymbol("W", 3, 2), sp.MatrixSymbol("b", 2, 1))
    with pytest.raises(InputError, match="same shape"):
        nn.mse(sp.MatrixSymbol("Z", B, 2), sp.MatrixSymbol("Y", B, 3))
    with pytest.raises(InputError, match="matrix expression"):
        nn.tanh(sp.Symbol("z"))
    with pytest.raises(InputError, match="numbers"):
        nn.init_params([sp.MatrixSymbol("W", B, 3)])
    with pytest.raises(InputError, match="positive"):
        nn.huber(sp.MatrixSymbol("Z", 2, 1), sp.MatrixSymbol("Y", 2, 1), delta=0)
    with pytest.raises(InputError, match="real number"):
        nn.leaky_relu(sp.MatrixSymbol("Z", 2, 1), "a lot")
    with pytest.raises(InputError, match="batch"):
        nn.mlp([2, 2], batch=0)


# ---------------------------------------------------------------------------- reference vs finite differences


def fd_check(value_and_grad, params, seed=0, h=1e-6):
    """Central difference of the loss in a random direction vs <grad, direction>."""
    rng = np.random.default_rng(seed)
    direction = {k: rng.normal(size=np.shape(v)) for k, v in params.items()}
    _, grads = value_and_grad(params)
    predicted = sum(float(np.sum(grads[k] * direction[k])) for k in params)
    plus = value_and_grad({k: v + h * direction[k] for k, v in params.items()})[0]
    minus = value_and_grad({k: v - h * direction[k] for k, v in params.items()})[0]
    numeric = (plus - minus) / (2 * h)
    assert predicted == pytest.approx(numeric, rel=1e-6, abs=1e-8)
    for k, v in params.items():
        assert np.shape(grads[k]) == np.shape(v), k


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_reference_mlp_gradient_finite_differences(act, loss):
    sizes = [4, 5, 3] if loss != "binary_cross_entropy" else [4, 5, 1]
    params, X, Y = problem(sizes, loss, seed=7)
    fd_check(lambda p: reference.mlp_value_and_grad(p, X, Y, act, loss), params, seed=11)


def test_reference_deep_gradient_finite_differences():
    params, X, Y = problem([6, 5, 4, 3], "softmax_cross_entropy", seed=3, batch=9)
    fd_check(lambda p: reference.mlp_value_and_grad(p, X, Y, "sigmoid"), params, seed=5)


def test_reference_does_not_modify_inputs():
    params, X, Y = problem([4, 5, 3], "softmax_cross_entropy")
    before = {k: v.copy() for k, v in params.items()}, X.copy(), Y.copy()
    reference.mlp_value_and_grad(params, X, Y, "softplus")
    assert all(np.array_equal(before[0][k], params[k]) for k in params)
    assert np.array_equal(before[1], X) and np.array_equal(before[2], Y)


def test_reference_softmax_ce_is_stable():
    params = {"W1": np.eye(2) * 1e3, "b1": np.zeros((1, 2))}
    loss, grads = reference.mlp_value_and_grad(params, np.array([[1.0, -1.0]]), np.array([[0.0, 1.0]]))
    assert loss == pytest.approx(2000.0) and np.isfinite(grads["W1"]).all()


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_reference_is_stable_for_huge_preactivations(act, loss):
    """Pre-activations of ±1000 give finite losses and gradients and no floating-point warnings."""
    import warnings

    sizes = [2, 3, 2]
    params, X, Y = problem(sizes, loss, seed=1, batch=4)
    params = {k: v * 1000 for k, v in params.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grads = reference.mlp_value_and_grad(params, X, Y, act, loss)
    assert np.isfinite(value) and all(np.isfinite(g).all() for g in grads.values())


def test_reference_logreg_finite_differences():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20).astype(float)
    params = {"w": rng.normal(size=(3, 1)), "b": np.array([[0.3]])}
    fd_check(lambda p: reference.logreg_value_and_grad(p, X, y), params)


def test_reference_errors():
    with pytest.raises(InputError, match="W1, b1"):
        reference.mlp_value_and_grad({"W1": np.eye(2)}, np.eye(2), np.eye(2))
    with pytest.raises(InputError, match="unknown activation"):
        reference.mlp_value_and_grad({"W1": np.eye(2), "b1": np.zeros((1, 2))}, np.eye(2), np.eye(2), "gelu")
    with pytest.raises(InputError, match="'w' and 'b'"):
        reference.logreg_value_and_grad({"W1": 1}, np.eye(2), np.ones(2))


# ---------------------------------------------------------------------------- the lecture's neuron


def test_lecture_one_neuron_logistic_regression():
    """Lecture 001: x = (0.1, 0.7), y = 1, w = (0.8, 0.2), b = 0.1; one GD step at lr 0.5."""
    x1, x2, y, w1, w2, b = sp.symbols("x1 x2 y w1 w2 b", real=True)
    a = 1 / (1 + sp.exp(-(w1 * x1 + w2 * x2 + b)))
    L = -(y * sp.log(a) + (1 - y) * sp.log(1 - a))
    at = {x1: sp.Rational(1, 10), x2: sp.Rational(7, 10), y: 1, w1: sp.Rational(8, 10), w2: sp.Rational(2, 10),
          b: sp.Rational(1, 10)}
    exact = {s.name: float(sp.diff(L, s).subs(at)) for s in (w1, w2, b)}
    # dL/dz = a - y, with z = 0.32
    assert exact["b"] == pytest.approx(1 / (1 + math.exp(-0.32)) - 1, rel=1e-14)

    X, Y = np.array([[0.1, 0.7]]), np.array([[1.0]])
    params = {"w": np.array([[0.8], [0.2]]), "b": np.array([[0.1]])}
    loss, grads = reference.logreg_value_and_grad(params, X, Y)
    assert loss == pytest.approx(float(L.subs(at)), rel=1e-14)
    assert grads["w"].ravel() == pytest.approx([exact["w1"], exact["w2"]], rel=1e-13)
    assert grads["b"].item() == pytest.approx(exact["b"], rel=1e-13)
    assert grads["w"].ravel() == pytest.approx([-0.04207, -0.29447], abs=5e-6)   # the slide, to its digits

    # The matrix expression nn builds says the same.
    net = nn.logistic_regression(2)
    assert evaluate(net.loss, {"X": X, "Y": Y, **params}, {net.batch: 1}) == pytest.approx(loss, rel=1e-14)

    # One step of gradient descent, lr = 0.5, through the training code.
    stepped = train.SGD(0.5).step(params, grads)
    want = {s: float((s - sp.Rational(1, 2) * sp.diff(L, s)).subs(at)) for s in (w1, w2, b)}
    assert stepped["w"].ravel() == pytest.approx([want[w1], want[w2]], rel=1e-14)
    assert stepped["b"].item() == pytest.approx(want[b], rel=1e-14)
    assert stepped["w"].ravel() == pytest.approx([0.82103, 0.34723], abs=1e-5)   # the slide's 0.3472 rounds
    assert params["w"].ravel().tolist() == [0.8, 0.2]                            # caller's arrays untouched

    h = train.fit(train.gradient_fn(net), params, {"X": X, "Y": Y}, epochs=1, optimizer=train.SGD(0.5))
    np.testing.assert_allclose(h.params["w"], stepped["w"], rtol=1e-14)
    assert h.loss == [pytest.approx(loss)]


# ---------------------------------------------------------------------------- symgrad's gradients vs the reference


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_gradient_fn_equals_reference(act, loss):
    sizes = [4, 5, 3] if loss != "binary_cross_entropy" else [4, 5, 2]
    net = nn.mlp(sizes, activation=act, loss=loss)
    params, X, Y = problem(sizes, loss, seed=4)
    value, grads = train.gradient_fn(net)(X=X, Y=Y, **params)
    want, want_grads = reference.mlp_value_and_grad(params, X, Y, act, loss)
    assert value == pytest.approx(want, rel=1e-9)
    for k in params:
        assert np.shape(grads[k]) == params[k].shape
        np.testing.assert_allclose(grads[k], want_grads[k], rtol=1e-9, atol=1e-12)
    vg = train.gradient_fn(net)
    assert vg.backend == "symgrad.compile"


def test_issue_plain_sympy_network_compiles():
    """The issue's hand-written network through symgrad.compile equals hand-written backprop to 1e-9."""
    import symgrad

    X, Y = sp.MatrixSymbol("X", B, 64), sp.MatrixSymbol("Y", B, 10)
    W1, b1 = sp.MatrixSymbol("W1", 64, 128), sp.MatrixSymbol("b1", 1, 128)
    W2, b2 = sp.MatrixSymbol("W2", 128, 10), sp.MatrixSymbol("b2", 1, 10)
    A1 = (X * W1 + sp.OneMatrix(B, 1) * b1).applyfunc(sp.tanh)
    Z2 = A1 * W2 + sp.OneMatrix(B, 1) * b2
    L = sp.Trace((Z2 - Y).T * (Z2 - Y)) / B
    f = symgrad.compile(L, wrt=[W1, b1, W2, b2], args=[X, Y])
    params, Xv, Yv = problem([64, 128, 10], "mse", seed=0, batch=32)
    loss, grads = f.value_and_grad(X=Xv, Y=Yv, **params)
    want, want_grads = reference.mlp_value_and_grad(params, Xv, Yv, "tanh", "mse")
    assert loss == pytest.approx(want, rel=1e-9)
    assert grads["W1"].shape == (64, 128) and grads["b1"].shape == (1, 128)
    for k in params:
        np.testing.assert_allclose(grads[k], want_grads[k], rtol=1e-9, atol=1e-12)
