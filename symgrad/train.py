"""Training over any ``value_and_grad``: optimisers, the mini-batch loop `fit`, and accuracy helpers.

A gradient function here is any callable ``value_and_grad(**values) -> (loss, grads)``
taking data and parameters by name and returning the loss as a float and a dict
name -> gradient shaped like the parameter; ``symgrad.compile(...).value_and_grad`` is
one, `gradient_fn` builds one for an ``nn`` network. Nothing here prints to stdout.

>>> import numpy as np
>>> def vg(x, t):                   # mean of (x - t)**2 over a batch of t: minimum at mean(t)
...     return float(np.mean((x - t) ** 2)), {"x": np.mean(2 * (x - t))}
>>> h = fit(vg, {"x": 0.0}, {"t": np.array([1.0, 3.0, 5.0])}, epochs=50, optimizer=SGD(0.1))
>>> round(float(h.params["x"]), 6), len(h.loss)
(2.999957, 50)
"""

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from symgrad.errors import InputError, SymgradError


class TrainingError(SymgradError):
    """Training stopped: the loss became non-finite. ``.history`` holds the epochs completed."""

    def __init__(self, message, history=None):
        super().__init__(message)
        self.history = history


# ---------------------------------------------------------------------------- optimisers


def _positive(value, name):
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number; got {value!r}") from None
    if not (math.isfinite(x) and x > 0):
        raise InputError(f"{name} must be a positive number; got {value!r}")
    return x


def _fraction(value, name):
    x = float(value)
    if not 0 <= x < 1:
        raise InputError(f"{name} must be in [0, 1); got {value!r}")
    return x


class Optimizer:
    """Base class: ``step(params, grads)`` returns a new dict of new arrays.

    The arrays passed in are never modified; the optimiser's own state (velocities,
    moments) lives in the optimiser, keyed by parameter name, and persists across `fit`
    calls so training can be continued; ``reset()`` clears it.
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
            p = np.asarray(p, dtype=float)
            g = np.asarray(grads[name], dtype=float)
            if g.shape != p.shape:
                raise InputError(f"gradient for {name!r} has shape {g.shape} but the parameter has shape {p.shape}")
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
        self.lr = _positive(lr, "SGD lr")

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
        self.lr = _positive(lr, "Momentum lr")
        self.beta = _fraction(beta, "Momentum beta")

    def _update(self, name, p, g):
        v = self.state.get(name)
        if v is None:
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
        self.lr = _positive(lr, "Adam lr")
        self.beta1 = _fraction(beta1, "Adam beta1")
        self.beta2 = _fraction(beta2, "Adam beta2")
        self.eps = _positive(eps, "Adam eps")

    def _update(self, name, p, g):
        if name not in self.state:
            self.state[name] = (np.zeros_like(g), np.zeros_like(g))
        m, v = self.state[name]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        m_hat = m / (1 - self.beta1**self.t)
        v_hat = v / (1 - self.beta2**self.t)
        return p - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def __repr__(self):
        return f"Adam(lr={self.lr:g}, beta1={self.beta1:g}, beta2={self.beta2:g}, eps={self.eps:g})"


# ---------------------------------------------------------------------------- the loop


@dataclass
class History:
    """Per-epoch mean training loss and metrics, the final parameters and the wall time."""

    loss: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def epochs(self):
        return len(self.loss)

    def __repr__(self):
        if not self.loss:
            return "History(0 epochs)"
        parts = [f"loss {self.loss[0]:.4g} -> {self.loss[-1]:.4g}"]
        parts += [f"{k} {v[-1]:.4g}" for k, v in self.metrics.items() if v]
        return f"History({self.epochs} epochs, {', '.join(parts)}; {self.seconds:.2f} s)"


class _Progress:
    """One ``\\r``-rewritten status line on stderr, at most ten updates a second."""

    def __init__(self, mode, epochs):
        self.stream = sys.stderr
        self.mode, self.epochs = mode, epochs
        self.start = self.last = time.perf_counter()
        self.written = False
        tty = getattr(self.stream, "isatty", lambda: False)()
        self.enabled = mode is True or (mode is None and tty)

    def update(self, epoch, loss, metrics, final=False):
        if not self.enabled:
            return
        now = time.perf_counter()
        # Automatic mode stays silent for short runs; an explicit progress=True always shows.
        if self.mode is None and now - self.start < 0.5 and not self.written:
            return
        if not final and now - self.last < 0.1:
            return
        self.last = now
        width = 20
        done = int(width * epoch / self.epochs)
        bar = "#" * done + "." * (width - done)
        extra = "".join(f"  {k} {v[-1]:.4g}" for k, v in metrics.items() if v)
        self.stream.write(f"\r[{bar}] epoch {epoch}/{self.epochs}  loss {loss:.4g}{extra}  {now - self.start:.1f} s ")
        self.stream.flush()
        self.written = True

    def close(self):
        if self.written:
            self.stream.write("\n")
            self.stream.flush()


def _as_gradient_callable(value_and_grad):
    method = getattr(value_and_grad, "value_and_grad", None)
    if callable(method):
        return method
    if not callable(value_and_grad):
        raise InputError(f"value_and_grad must be callable (e.g. symgrad.compile(...).value_and_grad); got {value_and_grad!r}")
    return value_and_grad


def _required_params(value_and_grad):
    names = getattr(value_and_grad, "param_names", None)
    if names is None and getattr(value_and_grad, "wrt", None) is not None:
        names = [getattr(w, "name", str(w)) for w in value_and_grad.wrt]
    return list(names or [])


def _check_data(data, params):
    if not isinstance(data, dict) or not data:
        raise InputError(f"data must be a non-empty dict name -> array (samples along axis 0); got {type(data).__name__}")
    arrays, counts = {}, {}
    for name, v in data.items():
        a = np.asarray(v)
        if a.ndim == 0:
            raise InputError(f"data[{name!r}] is a scalar; every data array needs samples along axis 0")
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            row = int(np.argwhere(~np.isfinite(a))[0][0])
            raise InputError(f"data[{name!r}] contains a non-finite value in sample {row}; clean or impute it first")
        arrays[name], counts[name] = a, a.shape[0]
    if len(set(counts.values())) > 1:
        desc = ", ".join(f"{k}: {n}" for k, n in counts.items())
        raise InputError(f"data arrays must have the same number of samples (axis 0); got {desc}")
    clash = [k for k in arrays if k in params]
    if clash:
        raise InputError(f"{clash[0]!r} is both a data array and a parameter; rename one")
    return arrays, next(iter(counts.values()))


def fit(value_and_grad, params, data, epochs, batch_size=None, optimizer=None, seed=0, shuffle=True,
        metrics=None, progress=None, callback=None):
    """Train ``params`` by mini-batch gradient descent and return a `History`.

    - ``value_and_grad(**data_batch, **params) -> (loss, grads)``; an object with a
      ``value_and_grad`` method (a compiled function) is accepted too.
    - ``params``: name -> initial array (copied; the caller's arrays are not modified).
    - ``data``: name -> array with samples along axis 0, all with the same sample count.
    - ``batch_size``: None for full batch (the data are then used as given); otherwise
      each epoch shuffles the samples with ``np.random.default_rng(seed)`` (if
      ``shuffle``) and visits every sample exactly once, the last batch possibly smaller.
      A batch size above the sample count is clipped to it.
    - ``optimizer``: an `Optimizer` (default ``SGD(lr=0.1)``); its state persists.
    - ``metrics``: name -> ``fn(params) -> float``, evaluated after every epoch.
    - ``progress``: None shows a status line on stderr for runs longer than half a second
      when stderr is a terminal, True always shows it, False never.
    - ``callback(epoch, params, history)`` runs after every epoch; returning True stops.

    ``History.loss`` is each epoch's sample-weighted mean of the batch losses. Raises
    InputError for inconsistent data, missing parameters or bad settings, and
    TrainingError (with ``.history``) as soon as the loss is not finite.
    """
    vg = _as_gradient_callable(value_and_grad)
    params = {k: np.array(v, dtype=float) for k, v in params.items()}
    missing = [n for n in _required_params(value_and_grad) if n not in params]
    if missing:
        raise InputError(f"params is missing {missing[0]!r}, which the gradient function needs; "
                         f"given {sorted(params)} (nn.init_params(network) makes them all)")
    arrays, n = _check_data(data, params)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise InputError(f"epochs must be a positive int; got {epochs!r}")
    if batch_size is None:
        batch_size = n
    elif isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int or None (full batch); got {batch_size!r}")
    batch_size = min(int(batch_size), n)
    optimizer = SGD(0.1) if optimizer is None else optimizer
    if not isinstance(optimizer, Optimizer):
        raise InputError(f"optimizer must be SGD, Momentum, Adam or another symgrad.train.Optimizer; got {optimizer!r}")
    metrics = dict(metrics or {})
    rng = np.random.default_rng(seed)
    history = History(metrics={k: [] for k in metrics}, params=params)
    bar = _Progress(progress, epochs)
    start = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            if shuffle and batch_size < n:
                order = rng.permutation(n)
                epoch_data = {k: a[order] for k, a in arrays.items()}
            else:
                epoch_data = arrays
            total = 0.0
            for i, lo in enumerate(range(0, n, batch_size), start=1):
                batch = {k: a[lo:lo + batch_size] for k, a in epoch_data.items()}
                loss, grads = vg(**batch, **params)
                loss = float(loss)
                if not math.isfinite(loss):
                    history.seconds = time.perf_counter() - start
                    raise TrainingError(
                        f"loss is {loss} at epoch {epoch}, batch {i} (samples {lo}..{lo + len(next(iter(batch.values()))) - 1}) "
                        f"with {optimizer!r}; lower the learning rate or check the data and initial parameters",
                        history,
                    )
                params = optimizer.step(params, grads)
                total += loss * min(batch_size, n - lo)
            history.loss.append(total / n)
            history.params = params
            for name, fn in metrics.items():
                history.metrics[name].append(float(fn(params)))
            history.seconds = time.perf_counter() - start
            bar.update(epoch, history.loss[-1], history.metrics, final=epoch == epochs)
            if callback is not None and callback(epoch, params, history) is True:
                break
    finally:
        bar.close()
    return history


# ---------------------------------------------------------------------------- networks -> callables


class _Gradient:
    """A compiled network function with ``backend`` and ``param_names`` (for printing and checks)."""

    def __init__(self, fn, backend, param_names):
        self.fn, self.backend, self.param_names = fn, backend, param_names

    def __call__(self, /, **values):
        return self.fn(**values)

    def __repr__(self):
        return f"<value_and_grad of {', '.join(self.param_names)} via {self.backend}>"


def gradient_fn(network):
    """``value_and_grad(**values) -> (loss, grads)`` for an ``nn`` network, compiled by symgrad.

    Call it with the data and parameters by name: ``vg(X=..., Y=..., W1=..., b1=..., …)``.
    ``.backend`` says which implementation runs.
    """
    from .compiled import compile as _compile

    f = _compile(network.loss, wrt=list(network.params), args=[network.inputs, network.targets])
    return _Gradient(f.value_and_grad, "symgrad.compile", [p.name for p in network.params])


def output_fn(network):
    """``output(**values) -> array (B, n_out)``: the network's logits or predictions for ``X`` and the parameters.

    Call it as ``out(X=..., W1=..., b1=..., …)``; ``.backend`` says which implementation runs.
    """
    from .compiled import compile as _compile

    f = _compile(network.output, wrt=list(network.params), args=[network.inputs])
    return _Gradient(f, "symgrad.compile", [p.name for p in network.params])


# ---------------------------------------------------------------------------- labels and accuracy


def one_hot(labels, n_classes=None):
    """Integer labels ``(B,)`` -> float64 one-hot rows ``(B, n_classes)`` (default: max label + 1).

    >>> one_hot([0, 2, 1]).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    y = np.asarray(labels)
    if y.ndim != 1 or (y.size and not np.issubdtype(y.dtype, np.integer) and not np.all(y == np.round(y))):
        raise InputError(f"one_hot needs a 1-d array of integer labels; got shape {y.shape}, dtype {y.dtype}")
    y = y.astype(np.int64)
    k = int(y.max()) + 1 if n_classes is None and y.size else int(n_classes or 0)
    if y.size and (y.min() < 0 or y.max() >= k):
        raise InputError(f"labels must lie in 0..{k - 1} for {k} classes; got {int(y.min())}..{int(y.max())}")
    out = np.zeros((y.size, k))
    out[np.arange(y.size), y] = 1.0
    return out


def predict(scores, logits=True):
    """Predicted class labels ``(B,)`` from network outputs.

    Several columns: the argmax of each row (logits or probabilities alike). One column
    (or a 1-d array): 1 where the score exceeds 0 for logits, 0.5 for probabilities.

    >>> predict(np.array([[0.1, 2.0], [3.0, -1.0]])).tolist(), predict(np.array([[-0.3], [0.2]])).tolist()
    ([1, 0], [0, 1])
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim == 2 and s.shape[1] > 1:
        return s.argmax(axis=1)
    if s.ndim == 1 or (s.ndim == 2 and s.shape[1] == 1):
        return (s.reshape(-1) > (0.0 if logits else 0.5)).astype(np.int64)
    raise InputError(f"scores must be (B,), (B, 1) or (B, C); got shape {s.shape}")


def accuracy(scores, targets, logits=True):
    """The fraction of samples whose predicted class (see `predict`) matches the target.

    ``targets`` are integer labels ``(B,)``, one-hot rows ``(B, C)``, or binary targets
    ``(B,)``/``(B, 1)`` with the positive class written 1 (0/1, or the lecture's ±1).

    >>> accuracy(np.array([[0.1, 2.0], [3.0, -1.0]]), np.array([1, 1]))
    0.5
    >>> accuracy(np.array([-2.0, 0.5, 3.0]), np.array([-1, 1, 1]))
    1.0
    """
    pred = predict(scores, logits)
    t = np.asarray(targets)
    if t.ndim == 2 and t.shape[1] > 1:
        t = t.argmax(axis=1)
    else:
        t = t.reshape(-1)
        if np.asarray(scores).ndim == 1 or np.shape(scores)[-1] == 1:
            t = (t > 0).astype(np.int64)
    if t.shape[0] != pred.shape[0]:
        raise InputError(f"scores have {pred.shape[0]} samples but targets have {t.shape[0]}")
    return float(np.mean(pred == t))
