"""Optimisers for `symgrad.train.fit`: SGD, Momentum, Adam, AdamW, and clipping by global norm.

An optimiser maps ``(params, grads)`` to a new dict of new arrays; the arrays passed in are
never modified. Each parameter keeps its dtype: a float32 parameter is updated in float32
(its gradient is cast to it, as PyTorch requires a gradient of the parameter's dtype).

>>> import numpy as np
>>> opt = SGD(0.5)
>>> new = opt.step({"w": np.float32([1.0, 2.0])}, {"w": np.float32([0.5, -1.0])})
>>> new["w"].tolist(), new["w"].dtype
([0.75, 2.5], dtype('float32'))
"""

import math

import numpy as np

from symgrad.errors import InputError


def positive_number(value, name):
    """``value`` as a float, or InputError unless it is a finite number > 0.

    >>> positive_number(0.1, "lr")
    0.1
    """
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number; got {value!r}") from None
    if not (math.isfinite(x) and x > 0):
        raise InputError(f"{name} must be a positive number; got {value!r}")
    return x


def _fraction(value, name):
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in [0, 1); got {value!r}") from None
    if not 0 <= x < 1:
        raise InputError(f"{name} must be in [0, 1); got {value!r}")
    return x


def decay_rates(weight_decay, names, what="weight_decay"):
    """{name: λ} for ``weight_decay`` given as one number (every parameter) or a dict (the names listed; others 0).

    Raises InputError for a negative or non-finite λ or a name that is not a parameter.

    >>> decay_rates({"W1": 1e-4}, ["W1", "b1"])
    {'W1': 0.0001, 'b1': 0.0}
    """
    names = list(names)
    if isinstance(weight_decay, dict):
        unknown = [k for k in weight_decay if k not in names]
        if unknown:
            raise InputError(f"{what} names {unknown[0]!r}, which is not a parameter; parameters: {', '.join(names)}")
        given = weight_decay
    else:
        given = dict.fromkeys(names, weight_decay)
    out = {}
    for name in names:
        lam = given.get(name, 0.0)
        try:
            lam = float(lam)
        except (TypeError, ValueError):
            raise InputError(f"{what} for {name!r} must be a number >= 0; got {lam!r}") from None
        if not (math.isfinite(lam) and lam >= 0):
            raise InputError(f"{what} for {name!r} must be a finite number >= 0; got {lam!r}")
        out[name] = lam
    return out


def global_norm(grads):
    """The Euclidean norm of all gradients together, √(Σ ‖g‖²), as a float.

    >>> global_norm({"a": np.array([3.0]), "b": np.array([[4.0]])})
    5.0
    """
    arrays = [np.asarray(g, dtype=np.float64) for g in grads.values()]
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in arrays))
    if math.isinf(norm) and all(np.isfinite(g).all() for g in arrays):
        # the squares overflowed: scale by the largest entry first (finite gradients have a finite norm)
        top = max(float(np.max(np.abs(g), initial=0.0)) for g in arrays)
        norm = top * math.sqrt(sum(float(np.vdot(g / top, g / top)) for g in arrays))
    return norm


def clip_by_global_norm(grads, max_norm):
    """(clipped grads, norm before clipping): every gradient scaled by max_norm/norm when the global norm exceeds max_norm.

    The direction is kept; gradients within the bound are returned unchanged (the same
    arrays), and so are gradients containing nan or inf (their norm is returned, for the
    caller to stop on). Raises InputError unless ``max_norm`` is a positive number.

    >>> g, n = clip_by_global_norm({"a": np.array([3.0]), "b": np.array([4.0])}, 1.0)
    >>> n, g["a"].tolist(), g["b"].tolist()
    (5.0, [0.6000000000000001], [0.8])
    """
    max_norm = positive_number(max_norm, "clip_norm")
    norm = global_norm(grads)
    if not norm > max_norm or math.isinf(norm):
        return dict(grads), norm
    scale = max_norm / norm
    return {k: np.asarray(g) * scale for k, g in grads.items()}, norm   # a Python float keeps float32 float32


class Optimizer:
    """Base class: ``step(params, grads)`` returns a new dict of new arrays, each of its parameter's dtype.

    The arrays passed in are never modified; the optimiser's own state (velocities,
    moments) lives in the optimiser, keyed by parameter name, and persists across `fit`
    calls so training can be continued; ``reset()`` clears it. ``lr`` is an attribute that
    `fit`'s ``schedule`` sets each epoch.
    """

    def __init__(self):
        self.state = {}
        self.t = 0

    def reset(self):
        """Forget velocities, moments and the step count."""
        self.state.clear()
        self.t = 0

    def step(self, params, grads):
        """One update: {name: new array}. Raises InputError for a missing, unknown or misshapen gradient."""
        extra = [k for k in grads if k not in params]
        if extra:
            raise InputError(f"gradient for {extra[0]!r}, which is not in params {sorted(params)}; add its initial value to params")
        missing = [k for k in params if k not in grads]
        if missing:
            raise InputError(f"no gradient for parameter {missing[0]!r}; the gradient function returned {sorted(grads)}")
        self.t += 1
        out = {}
        for name, p in params.items():
            p = np.asarray(p)
            if p.dtype.kind != "f":
                p = p.astype(np.float64)
            g = np.asarray(grads[name])
            if g.shape != p.shape:
                raise InputError(f"gradient for {name!r} has shape {g.shape} but the parameter has shape {p.shape}")
            if g.dtype != p.dtype:
                g = g.astype(p.dtype)
            out[name] = self._update(name, p, g)
        return out

    def _update(self, name, p, g):
        raise NotImplementedError


class SGD(Optimizer):
    """Plain gradient descent: p ← p − lr·g.

    >>> SGD(0.5).step({"w": np.array([0.8, 0.2])}, {"w": np.array([-0.04, -0.3])})["w"].tolist()
    [0.8200000000000001, 0.35]
    """

    def __init__(self, lr=0.1):
        super().__init__()
        self.lr = positive_number(lr, "SGD lr")

    def _update(self, name, p, g):
        return p - self.lr * g

    def __repr__(self):
        return f"SGD(lr={self.lr:g})"


class Momentum(Optimizer):
    """Heavy-ball momentum (PyTorch form): v ← β·v + g, p ← p − lr·v, with v = 0 at the start.

    >>> opt = Momentum(0.1, beta=0.5)
    >>> p = opt.step({"w": np.array(1.0)}, {"w": np.array(1.0)})
    >>> float(opt.step(p, {"w": np.array(1.0)})["w"])   # 1 - 0.1*1 - 0.1*(0.5 + 1)
    0.75
    """

    def __init__(self, lr=0.01, beta=0.9):
        super().__init__()
        self.lr = positive_number(lr, "Momentum lr")
        self.beta = _fraction(beta, "Momentum beta")

    def _update(self, name, p, g):
        v = self.state.get(name)
        if v is None or v.dtype != g.dtype:
            v = self.state[name] = g.copy()
        else:
            v *= self.beta
            v += g
        return p - self.lr * v

    def __repr__(self):
        return f"Momentum(lr={self.lr:g}, beta={self.beta:g})"


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction: p ← p − lr·m̂/(√v̂ + eps).

    >>> opt = Adam(lr=0.1)
    >>> float(opt.step({"w": np.array(1.0)}, {"w": np.array(5.0)})["w"])  # first step moves by ~lr
    0.9000000002
    """

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__()
        self.lr = positive_number(lr, "Adam lr")
        self.beta1 = _fraction(beta1, "Adam beta1")
        self.beta2 = _fraction(beta2, "Adam beta2")
        self.eps = positive_number(eps, "Adam eps")

    def _moments(self, name, g):
        """(m̂, √v̂ + eps) after folding ``g`` into the moments."""
        if name not in self.state or self.state[name][0].dtype != g.dtype:
            self.state[name] = (np.zeros_like(g), np.zeros_like(g))
        m, v = self.state[name]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        m_hat = m / (1 - self.beta1**self.t)
        v_hat = v / (1 - self.beta2**self.t)
        return m_hat, np.sqrt(v_hat) + self.eps

    def _update(self, name, p, g):
        m_hat, denom = self._moments(name, g)
        return p - self.lr * m_hat / denom

    def __repr__(self):
        return f"Adam(lr={self.lr:g}, beta1={self.beta1:g}, beta2={self.beta2:g}, eps={self.eps:g})"


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter; PyTorch's AdamW): p ← p − lr·(m̂/(√v̂ + eps) + λ·p).

    Computed as PyTorch does: p ← p·(1 − lr·λ), then the Adam step. The decay does not pass
    through the moments, unlike ``fit(weight_decay=...)`` with
    `Adam` (L2 added to the gradient). ``weight_decay`` is one λ for every parameter
    (default 0.01, as PyTorch) or a dict {name: λ} (parameters not listed are not decayed,
    e.g. ``{"W1": 1e-2, "W2": 1e-2}`` leaves the biases alone).

    >>> opt = AdamW(lr=0.1, weight_decay=0.5)
    >>> round(float(opt.step({"w": np.array(2.0)}, {"w": np.array(5.0)})["w"]), 9)  # 2·(1 - 0.1·0.5) - 0.1
    1.8
    """

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(lr, beta1, beta2, eps)
        if isinstance(weight_decay, dict):
            decay_rates(weight_decay, weight_decay, "AdamW weight_decay")   # check the numbers now
            self.weight_decay = dict(weight_decay)
        else:
            self.weight_decay = decay_rates(weight_decay, ["*"], "AdamW weight_decay")["*"]

    def step(self, params, grads):
        if isinstance(self.weight_decay, dict):
            decay_rates(self.weight_decay, list(params), "AdamW weight_decay")   # names must be parameters
        return super().step(params, grads)

    def _update(self, name, p, g):
        wd = self.weight_decay.get(name, 0.0) if isinstance(self.weight_decay, dict) else self.weight_decay
        m_hat, denom = self._moments(name, g)
        if wd:
            p = p * (1 - self.lr * wd)   # PyTorch's order: decay, then the Adam step
        return p - self.lr * m_hat / denom

    def __repr__(self):
        return f"AdamW(lr={self.lr:g}, beta1={self.beta1:g}, beta2={self.beta2:g}, eps={self.eps:g}, weight_decay={self.weight_decay!r})"
