"""Hand-written NumPy backpropagation for the networks `symgrad.nn` builds: the independent reference.

These functions are what symgrad's compiled gradients are tested against and what the
benchmarks compare them with, so they are written the way a careful engineer writes
backprop by hand: ``@`` for every product, in-place elementwise updates, a max-shifted
softmax, the fused softmax-cross-entropy backward ``(softmax(Z) - Y) / B``, axis sums for
the bias gradients, and no Python loop over samples.

Conventions match `symgrad.nn` exactly: a batch is the rows of ``X`` (shape ``(B, n0)``);
layer ``k`` is ``A_k = g(A_{k-1} @ Wk + bk)`` with ``bk`` of shape ``(1, nk)``; the last
layer is linear (logits or predictions) and every loss is a sum over outputs averaged over
the batch (divided by ``B`` only).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> params = {"W1": rng.normal(size=(3, 4)), "b1": np.zeros((1, 4)),
...           "W2": rng.normal(size=(4, 2)), "b2": np.zeros((1, 2))}
>>> X, Y = rng.normal(size=(5, 3)), np.eye(2)[[0, 1, 1, 0, 1]]
>>> loss, grads = mlp_value_and_grad(params, X, Y)
>>> sorted(grads), grads["b1"].shape
(['W1', 'W2', 'b1', 'b2'], (1, 4))
"""

import functools

import numpy as np

from symgrad.errors import InputError

# Activation name -> (forward g(Z) computed in place, derivative g'(Z) from the output A in place).
# Derivatives from the output avoid keeping Z alive; the conventions at kinks match
# symgrad.functions: relu'(0) = 0 and leaky_relu'(0) = alpha.
LEAKY_ALPHA = 0.01


def _tanh(Z):
    return np.tanh(Z, out=Z)


def _tanh_d(A, G):
    # G *= 1 - A**2, with one temporary.
    T = np.multiply(A, A)
    np.subtract(1.0, T, out=T)
    G *= T
    return G


def _sigmoid(Z):
    # 1/(1 + exp(-z)) keeps full relative precision in both tails; exp overflows to inf only
    # for z < -709, where 1/inf = 0 is the right answer, so that warning is silenced.
    # (exp(-logaddexp(0, -z)) is as accurate but ten times slower in NumPy.)
    np.negative(Z, out=Z)
    with np.errstate(over="ignore"):
        np.exp(Z, out=Z)
    Z += 1.0
    return np.reciprocal(Z, out=Z)


def _sigmoid_d(A, G):
    T = np.subtract(1.0, A)
    T *= A
    G *= T
    return G


def _relu(Z):
    return np.maximum(Z, 0.0, out=Z)


def _relu_d(A, G):
    G *= A > 0
    return G


def _leaky_relu(Z):
    return np.multiply(Z, np.where(Z > 0, 1.0, LEAKY_ALPHA), out=Z)


def _leaky_relu_d(A, G):
    G *= np.where(A > 0, 1.0, LEAKY_ALPHA)
    return G


def _softplus(Z):
    # max(z, 0) + log1p(exp(-|z|)): no overflow, full precision, and 3-4x faster than np.logaddexp.
    T = np.abs(Z)
    np.negative(T, out=T)
    np.exp(T, out=T)
    np.log1p(T, out=T)
    np.maximum(Z, 0.0, out=Z)
    Z += T
    return Z


def _softplus_d(A, G):
    # softplus'(z) = sigma(z) and exp(-softplus(z)) = 1 - sigma(z), so sigma(z) = -expm1(-A).
    T = np.negative(A)
    np.expm1(T, out=T)
    np.negative(T, out=T)
    G *= T
    return G


ACTIVATIONS = {
    "tanh": (_tanh, _tanh_d),
    "sigmoid": (_sigmoid, _sigmoid_d),
    "relu": (_relu, _relu_d),
    "leaky_relu": (_leaky_relu, _leaky_relu_d),
    "softplus": (_softplus, _softplus_d),
}


# Loss name -> function (Z, Y, B) -> (loss, dL/dZ). Z may be overwritten.
def _softmax_cross_entropy(Z, Y, B):
    zy = np.vdot(Y, Z)  # before Z is shifted in place
    m = Z.max(axis=1, keepdims=True)
    Z -= m
    E = np.exp(Z, out=Z)
    s = E.sum(axis=1, keepdims=True)
    loss = (np.log(s).sum() + m.sum() - zy) / B
    # d/dZ [logsumexp(Z) - Y.Z] = softmax(Z) - Y, for any Y (rows need not sum to one).
    E *= 1.0 / (B * s)
    E -= Y * (1.0 / B)
    return loss, E


def _mse(Z, Y, B):
    R = np.subtract(Z, Y, out=Z)
    loss = np.vdot(R, R) / B
    R *= 2.0 / B
    return loss, R


def _l1(Z, Y, B):
    R = np.subtract(Z, Y, out=Z)
    loss = np.abs(R).sum() / B
    np.sign(R, out=R)
    R *= 1.0 / B
    return loss, R


def _huber(Z, Y, B, delta=1.0):
    R = np.subtract(Z, Y, out=Z)
    a = np.abs(R)
    quad = a <= delta
    loss = (np.where(quad, 0.5 * R * R, delta * (a - 0.5 * delta))).sum() / B
    np.clip(R, -delta, delta, out=R)
    R *= 1.0 / B
    return loss, R


def _binary_cross_entropy(Z, Y, B):
    # From logits: softplus(z) - y*z = -(y log sigma(z) + (1 - y) log(1 - sigma(z))).
    loss = (_softplus(Z.copy()).sum() - np.vdot(Y, Z)) / B
    G = _sigmoid(Z)
    G -= Y
    G *= 1.0 / B
    return loss, G


LOSSES = {
    "softmax_cross_entropy": _softmax_cross_entropy,
    "mse": _mse,
    "l1": _l1,
    "huber": _huber,
    "binary_cross_entropy": _binary_cross_entropy,
}


def _lookup(table, name, what):
    if name not in table:
        raise InputError(f"unknown {what} {name!r} for symgrad.reference; expected one of {sorted(table)}")
    return table[name]


@functools.lru_cache(maxsize=None)
def _names(n):
    """(("W1", "b1"), …, ("Wn", "bn")) and the same names as a frozenset."""
    pairs = tuple((f"W{k}", f"b{k}") for k in range(1, n + 1))
    return pairs, frozenset(name for pair in pairs for name in pair)


def _layers(params):
    """The layer names of ``params`` (keys W1, b1, …, Wn, bn), checked."""
    pairs, expected = _names(len(params) // 2)
    if not pairs or params.keys() != expected:
        raise InputError(f"mlp params must be W1, b1, …, Wn, bn; got {sorted(params)}")
    return pairs


def mlp_forward(params, X, activation="tanh"):
    """The network output (logits or predictions, shape ``(B, n_out)``) for inputs ``X``.

    >>> import numpy as np
    >>> p = {"W1": np.eye(2), "b1": np.zeros((1, 2)), "W2": np.ones((2, 1)), "b2": np.ones((1, 1))}
    >>> mlp_forward(p, np.zeros((3, 2)))
    array([[1.],
           [1.],
           [1.]])
    """
    layers = _layers(params)
    g, _ = _lookup(ACTIVATIONS, activation, "activation")
    A = X
    for k, (W, b) in enumerate(layers, start=1):
        Z = A @ params[W]
        Z += params[b]
        A = g(Z) if k < len(layers) else Z
    return A


def mlp_value_and_grad(params, X, Y, activation="tanh", loss="softmax_cross_entropy"):
    """Loss and gradients of an MLP ``nn.mlp`` builds: ``(float, {name: array shaped like the param})``.

    ``params`` holds W1, b1, …, Wn, bn; hidden layers use ``activation`` (tanh, sigmoid,
    relu, leaky_relu with alpha 0.01, softplus), the last layer is linear and ``loss`` is
    one of softmax_cross_entropy, mse, l1, huber (delta 1), binary_cross_entropy (from
    logits). Raises InputError for unknown names or a params dict of the wrong form.

    >>> import numpy as np
    >>> p = {"W1": np.zeros((2, 3)), "b1": np.zeros((1, 3))}
    >>> loss, g = mlp_value_and_grad(p, np.ones((4, 2)), np.eye(3)[[0, 1, 2, 0]])
    >>> bool(np.isclose(loss, np.log(3))), g["b1"].round(4).tolist()
    (True, [[-0.1667, 0.0833, 0.0833]])
    """
    layers = _layers(params)
    g, dg = _lookup(ACTIVATIONS, activation, "activation")
    loss_fn = _lookup(LOSSES, loss, "loss")
    B = X.shape[0]

    acts = [X]
    for W, b in layers[:-1]:
        Z = acts[-1] @ params[W]
        Z += params[b]
        acts.append(g(Z))
    W, b = layers[-1]
    Z = acts[-1] @ params[W]
    Z += params[b]
    value, G = loss_fn(Z, Y, B)

    # Bias gradients are column sums; a (1, B) row of ones through BLAS beats G.sum(axis=0) at small B.
    ones = np.ones((1, B), X.dtype)
    grads = {}
    for k in range(len(layers) - 1, -1, -1):
        W, b = layers[k]
        grads[W] = acts[k].T @ G
        grads[b] = ones @ G
        if k:
            G = dg(acts[k], G @ params[W].T)
    return float(value), {name: grads[name] for name in params}


def logreg_value_and_grad(params, X, Y):
    """Loss and gradients of logistic regression: mean binary cross-entropy of ``sigma(X @ w + b)``.

    ``params`` holds ``w`` (shape ``(d, 1)`` or ``(d,)``) and ``b`` (shape ``(1, 1)`` or a
    scalar); ``Y`` holds 0/1 targets shaped ``(B, 1)`` or ``(B,)``. Each gradient has its
    parameter's shape. This is the lecture's one neuron: dL/dz = (a - y)/B.

    >>> import numpy as np
    >>> loss, g = logreg_value_and_grad({"w": np.array([0.8, 0.2]), "b": 0.1},
    ...                                 np.array([[0.1, 0.7]]), np.array([1.0]))
    >>> round(loss, 5), g["w"].round(5).tolist(), round(float(g["b"]), 5)
    (0.54589, [-0.04207, -0.29447], -0.42068)
    """
    if set(params) != {"w", "b"}:
        raise InputError(f"logistic regression params must be 'w' and 'b'; got {sorted(params)}")
    w, b = np.asarray(params["w"], dtype=float), np.asarray(params["b"], dtype=float)
    X = np.asarray(X, dtype=float)
    B = X.shape[0]
    Z = X @ w.reshape(-1, 1)
    Z += b.reshape(1, 1)
    value, G = _binary_cross_entropy(Z, np.asarray(Y, dtype=float).reshape(B, 1), B)
    gw = X.T @ G
    gb = G.sum()
    return float(value), {"w": gw.reshape(w.shape), "b": np.reshape(gb, b.shape)}
