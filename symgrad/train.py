"""Training over any ``value_and_grad``: the mini-batch loop `fit`, compiled gradients, accuracy helpers.

A gradient function here is any callable ``value_and_grad(**values) -> (loss, grads)``
taking data and parameters by name and returning the loss as a float and a dict
name -> gradient shaped like the parameter; ``symgrad.compile(...).value_and_grad`` is
one, `gradient_fn` builds one for an ``nn`` network, a compiled function or an expression.
The optimisers (`SGD`, `Momentum`, `Adam`, `AdamW`) live in ``symgrad.optim``, the
learning-rate schedules in ``symgrad.schedules``, `History` in ``symgrad.history``, `save`
and `load` in ``symgrad.checkpoint``, `one_hot`, `predict` and `accuracy` in
``symgrad.metrics``; all are importable from here. Nothing here prints to
stdout.

>>> import numpy as np
>>> def vg(x, t):                   # mean of (x - t)**2 over a batch of t: minimum at mean(t)
...     return float(np.mean((x - t) ** 2)), {"x": np.mean(2 * (x - t))}
>>> h = fit(vg, {"x": 0.0}, {"t": np.array([1.0, 3.0, 5.0])}, epochs=50, optimizer=SGD(0.1))
>>> round(float(h.params["x"]), 6), len(h.loss)
(2.999957, 50)
"""

import inspect
import math
import time
import warnings

import numpy as np
import sympy as sp

from symgrad import schedules
from symgrad.checkpoint import load, save
from symgrad.errors import InputError, SymgradError
from symgrad.history import History
from symgrad.metrics import accuracy, one_hot, predict
from symgrad.optim import SGD, Adam, AdamW, Momentum, Optimizer, clip_by_global_norm, decay_rates, global_norm, positive_number
from symgrad.portable import library_of
from symgrad.progress import Progress

__all__ = ["fit", "History", "TrainingError", "MixedPrecisionWarning", "SGD", "Momentum", "Adam", "AdamW",
           "Optimizer", "clip_by_global_norm", "global_norm", "schedules", "save", "load", "gradient_fn",
           "output_fn", "accuracy_metric", "one_hot", "predict", "accuracy"]


class TrainingError(SymgradError):
    """Training stopped: the loss became non-finite. ``.history`` holds the epochs completed."""

    def __init__(self, message, history=None):
        super().__init__(message)
        self.history = history


class MixedPrecisionWarning(UserWarning):
    """`fit` was given floating arrays of different precisions and trains in NumPy's promoted dtype."""


# ---------------------------------------------------------------------------- checking the inputs


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


def _copy_params(params):
    """Copies of the initial values; parameters given without a floating dtype are returned in ``weak``."""
    if not isinstance(params, dict) or not params:
        raise InputError(f"params must be a non-empty dict name -> initial array; got {type(params).__name__}")
    out, weak = {}, []
    for name, v in params.items():
        a = np.array(v)   # a copy: the caller's arrays are never touched
        if a.dtype.kind in "biu":
            a = a.astype(np.float64)
            weak.append(name)
        elif a.dtype.kind != "f":
            raise InputError(f"params[{name!r}] has dtype {a.dtype}; parameters must be real floating arrays "
                             f"(float32 or float64)")
        if not np.isfinite(a).all():
            raise InputError(f"params[{name!r}] contains nan or inf; start from finite values (nn.init_params)")
        out[name] = a
    return out, weak


def _check_data(data, params, what="data"):
    if not isinstance(data, dict) or not data:
        raise InputError(f"{what} must be a non-empty dict name -> array (samples along axis 0); got {type(data).__name__}")
    arrays, counts = {}, {}
    for name, v in data.items():
        lazy = library_of(v) == "dask"  # a Dask array (from a memmap, Zarr, ...): read batch by batch
        a = v if lazy else np.asarray(v)  # a np.memmap stays a memmap: only the batches are read
        if a.ndim == 0:
            raise InputError(f"{what}[{name!r}] is a scalar; every data array needs samples along axis 0")
        if not lazy:
            _check_finite_rows(a, f"{what}[{name!r}]")  # block by block: a memmap is never read whole
        arrays[name], counts[name] = a, a.shape[0]
    if len(set(counts.values())) > 1:
        desc = ", ".join(f"{k}: {n}" for k, n in counts.items())
        raise InputError(f"{what} arrays must have the same number of samples (axis 0); got {desc}")
    clash = [k for k in arrays if k in params]
    if clash:
        raise InputError(f"{clash[0]!r} is both a data array and a parameter; rename one")
    return arrays, next(iter(counts.values()))


ROWS = 1 << 16  # rows per block when data is checked or read in blocks (bounded memory for memmaps)


def _check_finite_rows(a, label, samples=None):
    """InputError naming the first sample with a non-finite value (``samples``: the sample
    number of each row, default its position); reads ``a`` block by block."""
    if a.dtype.kind not in "fc":
        return
    for lo in range(0, a.shape[0], ROWS):
        block = a[lo:lo + ROWS]
        if not np.isfinite(block).all():
            j = lo + int(np.argwhere(~np.isfinite(np.asarray(block)))[0][0])
            row = j if samples is None else int(samples[j])
            raise InputError(f"{label} contains a non-finite value in sample {row}; clean or impute it first")


def _rows(a, rows, label):
    """Samples ``rows`` (a slice or index array) of a data array, in memory: a NumPy array or
    memmap is indexed; a Dask array computes just those rows (read in sorted order, for the
    chunks' sake), checked for finiteness."""
    if library_of(a) != "dask":
        return a[rows]
    if isinstance(rows, slice):
        block = np.asarray(a[rows])
        _check_finite_rows(block, label, range(rows.start, rows.start + block.shape[0]))
        return block
    order = np.argsort(rows, kind="stable")
    block = np.asarray(a[rows[order]])[np.argsort(order, kind="stable")]
    _check_finite_rows(block, label, rows)
    return block


def _common_dtype(params, weak, sources):
    """Cast the parameters to NumPy's promotion of every floating array given; warn when precisions differ."""
    seen = {}   # dtype -> names, in order
    for label, arrays in sources:
        for name, a in arrays.items():
            if a.dtype.kind == "f" and not (label == "params" and name in weak):
                seen.setdefault(a.dtype, []).append(f"{label}[{name!r}]")
    dtype = np.result_type(*seen) if seen else np.dtype(np.float64)
    if len(seen) > 1:
        desc = "; ".join(f"{d.name}: {', '.join(names)}" for d, names in seen.items())
        warnings.warn(MixedPrecisionWarning(
            f"fit was given floating arrays of different precisions ({desc}); training in {dtype.name}, as NumPy "
            f"promotes them. Pass every array as one dtype (e.g. .astype(np.float32), nn.init_params(net, "
            f"dtype=np.float32), one_hot(y, dtype=np.float32)) to train in it"), stacklevel=3)
    return {k: v.astype(dtype, copy=False) for k, v in params.items()}


def _positive_int(value, name, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive int{' or None' if allow_none else ''}; got {value!r}")
    return int(value)


def _takes_data(fn):
    """True for a metric ``fn(params, data)``, False for ``fn(params)``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in sig.parameters.values() if p.kind in kinds and p.default is p.empty]
    return len(required) >= 2


def _loss_callable(value_and_grad, vg):
    fn = getattr(value_and_grad, "loss_fn", None)
    return fn if callable(fn) else (lambda **values: vg(**values)[0])


# ---------------------------------------------------------------------------- the loop


def fit(value_and_grad, params, data, epochs, batch_size=None, optimizer=None, seed=0, shuffle=True,
        metrics=None, progress=None, callback=None, *, validation=None, weight_decay=0.0, schedule=None,
        clip_norm=None, early_stopping=None, record_batches=False):
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
    - ``metrics``: name -> ``fn(params) -> float``, or ``fn(params, data) -> float``
      (e.g. `accuracy_metric`), evaluated after every epoch; a metric taking data is
      evaluated on the training data (``History.metrics``) and on the validation data
      (``History.val_metrics``).
    - ``validation``: name -> array with the same names as ``data``; its loss (in one
      call, with the epoch's final parameters) is recorded in ``History.val_loss``.
    - ``weight_decay``: λ, or {name: λ} (others 0), added as λ·p to each gradient before
      the optimiser step (PyTorch's ``weight_decay``; L2 regularisation with penalty
      (λ/2)‖p‖², which ``History.loss`` does not include). For Adam's decoupled form use `AdamW`.
    - ``clip_norm``: scale the loss gradient by clip_norm/‖g‖ when its global norm ‖g‖
      (over all parameters) exceeds it, before weight decay.
    - ``schedule``: ``epoch -> lr`` (epochs from 1; see ``symgrad.schedules``), or
      ``"cosine"`` (from the optimiser's lr over ``epochs``); it sets ``optimizer.lr``
      before each epoch, and the optimiser's lr is restored afterwards. ``History.lr``
      records the rate of every epoch.
    - ``early_stopping``: patience k: stop when the validation loss (the training loss
      without ``validation``) has not improved on its best for k epochs; ``History.params``
      are then the best epoch's parameters (``History.best_epoch``), also when the run ends
      without stopping. The optimiser's state stays at the last step.
    - ``record_batches``: keep every batch's loss in ``History.batch_loss``.
    - ``progress``: None shows a bar on stderr (epochs, loss, validation loss, metrics,
      ETA) for runs longer than half a second when stderr is a terminal; True always
      reports (the bar on a terminal, one line per epoch elsewhere: notebooks, logs); an
      int k writes every k-th line; False never.
    - ``callback(epoch, params, history)`` runs after every epoch; returning True stops.

    Dtypes: float32 parameters and data train in float32 end to end; with floating arrays
    of different precisions the parameters are cast to NumPy's promotion of them all and a
    `MixedPrecisionWarning` says so. Parameters given as Python numbers or integer arrays
    take the floating dtype of the rest (float64 if there is none).

    ``History.loss`` is each epoch's sample-weighted mean of the batch losses. Raises
    InputError for inconsistent data, missing parameters or bad settings, and
    TrainingError (with ``.history``) as soon as a training or validation loss is not finite.

    >>> def vg(x, t):                      # mean (x - t)^2; x moves towards mean(t) = 2
    ...     return float(np.mean((x - t) ** 2)), {"x": np.mean(2 * (x - t))}
    >>> h = fit(vg, {"x": np.float32(0.0)}, {"t": np.float32([1, 3])}, epochs=100, optimizer=SGD(0.1),
    ...         validation={"t": np.float32([0, 2])}, early_stopping=3, weight_decay=0.1)
    >>> h.epochs, h.best_epoch, round(float(h.params["x"]), 3), h.params["x"].dtype   # validation is best near x = 1
    (6, 3, 0.966, dtype('float32'))
    """
    vg = _as_gradient_callable(value_and_grad)
    loss_only = _loss_callable(value_and_grad, vg)
    params, weak = _copy_params(params)
    missing = [n for n in _required_params(value_and_grad) if n not in params]
    if missing:
        raise InputError(f"params is missing {missing[0]!r}, which the gradient function needs; "
                         f"given {sorted(params)} (nn.init_params(network) makes them all)")
    arrays, n = _check_data(data, params)
    sources = [("params", params), ("data", arrays)]
    val = None
    if validation is not None:
        val, _ = _check_data(validation, params, "validation")
        if set(val) != set(arrays):
            lacking = [k for k in arrays if k not in val]
            culprit = f"has no {lacking[0]!r}" if lacking else f"has {next(k for k in val if k not in arrays)!r}, which data lacks"
            raise InputError(f"validation must have the same arrays as data ({', '.join(arrays)}); it {culprit}")
        sources.append(("validation", val))
    params = _common_dtype(params, weak, sources)
    epochs = _positive_int(epochs, "epochs")
    batch_size = min(_positive_int(batch_size, "batch_size", allow_none=True) or n, n)
    optimizer = SGD(0.1) if optimizer is None else optimizer
    if not isinstance(optimizer, Optimizer):
        raise InputError(f"optimizer must be SGD, Momentum, Adam, AdamW or another symgrad.train.Optimizer; got {optimizer!r}")
    decay = {k: lam for k, lam in decay_rates(weight_decay, params).items() if lam}
    clip_norm = None if clip_norm is None else positive_number(clip_norm, "clip_norm")
    lr0 = getattr(optimizer, "lr", None)
    if schedule is not None and lr0 is None:
        raise InputError(f"schedule sets optimizer.lr, but {optimizer!r} has no lr attribute")
    schedule = schedules.resolve(schedule, lr0, epochs)
    patience = _positive_int(early_stopping, "early_stopping (the patience in epochs)", allow_none=True)
    metrics = dict(metrics or {})
    for name, fn in metrics.items():
        if not callable(fn):
            raise InputError(f"metric {name!r} must be a callable fn(params) or fn(params, data); got {fn!r}")
    with_data = {k for k, fn in metrics.items() if _takes_data(fn)}
    rng = np.random.default_rng(seed)
    history = History(metrics={k: [] for k in metrics}, params=params,
                      val_metrics={k: [] for k in metrics if k in with_data} if val is not None else {})
    bar = Progress(progress, epochs)
    best_loss, best_params = math.inf, None
    start = time.perf_counter()

    def fail(what, loss, epoch, where):
        history.seconds = time.perf_counter() - start
        return TrainingError(f"{what} is {loss} at epoch {epoch}{where} with {optimizer!r}; lower the learning rate "
                             f"or check the data and initial parameters", history)

    try:
        for epoch in range(1, epochs + 1):
            if schedule is not None:
                lr = schedule(epoch)
                if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)) or not (math.isfinite(lr) and lr > 0):
                    raise InputError(f"schedule({epoch}) returned {lr!r}; a learning rate must be a positive number")
                optimizer.lr = float(lr)
            if lr0 is not None:
                history.lr.append(optimizer.lr)
            # each batch is read from the data on its own (a memmap or Dask array is never loaded whole)
            order = rng.permutation(n) if shuffle and batch_size < n else None
            total = 0.0
            for i, lo in enumerate(range(0, n, batch_size), start=1):
                rows = slice(lo, lo + batch_size) if order is None else order[lo:lo + batch_size]
                batch = {k: _rows(a, rows, f"data[{k!r}]") for k, a in arrays.items()}
                loss, grads = vg(**batch, **params)
                loss = float(loss)
                if not math.isfinite(loss):
                    raise fail("loss", loss, epoch, f", batch {i} (samples {lo}..{min(lo + batch_size, n) - 1})")
                if record_batches:
                    history.batch_loss.append(loss)
                if clip_norm is not None:
                    grads, norm = clip_by_global_norm(grads, clip_norm)
                    if not math.isfinite(norm):
                        raise fail("the gradient norm", norm, epoch, f", batch {i}")
                if decay:
                    grads = {k: g + decay[k] * params[k] if k in decay and k in params else g for k, g in grads.items()}
                params = optimizer.step(params, grads)
                total += loss * min(batch_size, n - lo)
            history.loss.append(total / n)
            history.params = params
            if val is not None:
                val_loss = float(loss_only(**val, **params))
                if not math.isfinite(val_loss):
                    raise fail("validation loss", val_loss, epoch, "")
                history.val_loss.append(val_loss)
            for name, fn in metrics.items():
                history.metrics[name].append(float(fn(params, arrays) if name in with_data else fn(params)))
                if name in history.val_metrics:
                    history.val_metrics[name].append(float(fn(params, val)))
            history.seconds = time.perf_counter() - start
            stop = False
            if patience is not None:
                monitored = history.val_loss[-1] if val is not None else history.loss[-1]
                if monitored < best_loss:
                    best_loss, history.best_epoch = monitored, epoch
                    best_params = {k: v.copy() for k, v in params.items()}
                stop = history.stopped_early = epoch - history.best_epoch >= patience and epoch < epochs
            shown = {**history.metrics, **{f"val_{k}": v for k, v in history.val_metrics.items()}}
            bar.update(epoch, history.loss[-1], history.val_loss[-1] if val is not None else None, shown, final=stop)
            if stop:
                bar.note(f"early stopping at epoch {epoch}: no improvement for {patience} epochs; "
                         f"best epoch {history.best_epoch} ({'val_loss' if val is not None else 'loss'} {best_loss:.4g})")
                break
            if callback is not None and callback(epoch, params, history) is True:
                break
    finally:
        bar.close()
        if schedule is not None:
            optimizer.lr = lr0
        if best_params is not None:
            history.params = best_params
    return history


# ---------------------------------------------------------------------------- compiled gradients


class _Gradient:
    """A compiled ``value_and_grad`` with ``backend``, ``param_names``, ``loss_fn`` (the loss alone) and ``compiled``."""

    def __init__(self, fn, backend, param_names, loss_fn=None, compiled=None):
        self.fn, self.backend, self.param_names = fn, backend, param_names
        self.loss_fn, self.compiled = loss_fn, compiled

    def __call__(self, /, **values):
        return self.fn(**values)

    def __repr__(self):
        return f"<value_and_grad of {', '.join(self.param_names)} via {self.backend}>"


def _wrap(f):
    scalar_loss = f.matrix and not f.graph.shape(f.graph.output)
    loss_fn = f if scalar_loss else (lambda **values: f.value_and_grad(**values)[0])
    return _Gradient(f.value_and_grad, "symgrad.compile", [w.name for w in f.wrt], loss_fn, f)


def gradient_fn(model, wrt=None, args=None, reduce=None):
    """``value_and_grad(**values) -> (loss, grads)`` for `fit`, compiled by symgrad.

    ``model`` is an ``nn`` network (its loss, with respect to its parameters), a
    ``symgrad.compile(...)`` result (used as it is), or a SymPy expression compiled here
    with respect to ``wrt`` (required) with the other inputs ``args`` (default: the rest).
    A scalar expression over a batch is averaged over it (``reduce="mean"``, as the ``nn``
    losses are; pass ``reduce="sum"`` to add it up); a network loss is one number already.
    Call the result with the data and parameters by name: ``vg(X=..., Y=..., W1=..., …)``;
    ``.backend`` says which implementation runs, ``.param_names`` what ``params`` needs,
    ``.compiled`` is the compiled function (for tables and ``check_grads``).

    >>> import numpy as np, sympy as sp
    >>> w, x, t = sp.symbols("w x t")
    >>> vg = gradient_fn((w*x - t)**2, wrt=[w])
    >>> vg(w=1.0, x=np.array([1.0, 2.0]), t=np.array([0.0, 0.0]))   # mean of (w x)^2; d/dw mean of 2 w x^2
    (2.5, {'w': 5.0})
    """
    from .compiled import CompiledFunction
    from .compiled import compile as _compile
    from .nn import Network

    if isinstance(model, _Gradient):
        return model
    if isinstance(model, Network):
        if wrt is not None or args is not None:
            raise InputError("gradient_fn(network) differentiates with respect to the network's parameters; "
                             "pass wrt and args only with an expression")
        return _wrap(_compile(model.loss, wrt=list(model.params), args=[model.inputs, model.targets]))
    if isinstance(model, CompiledFunction):
        if wrt is not None or args is not None:
            raise InputError("this function is compiled already (with its own wrt and args); pass the expression to "
                             "gradient_fn to choose them")
        return _wrap(model)
    if isinstance(model, sp.Basic):
        if wrt is None:
            raise InputError("gradient_fn of an expression needs wrt=[the parameters to train], e.g. "
                             "gradient_fn(loss, wrt=net.params, args=[net.inputs, net.targets])")
        from .matrix import is_matrix_expr

        matrix = is_matrix_expr(model)
        return _wrap(_compile(model, wrt=wrt, args=args, reduce=reduce or ("sum" if matrix else "mean")))
    raise InputError(f"gradient_fn needs an nn Network, a symgrad.compile(...) function or a SymPy expression; got "
                     f"{type(model).__name__}; a Python function (**values) -> (loss, grads) can go to fit as it is")


def output_fn(network):
    """``output(**values) -> array (B, n_out)``: the network's logits or predictions for ``X`` and the parameters.

    Call it as ``out(X=..., W1=..., b1=..., …)``; ``.backend`` says which implementation runs.

    >>> from symgrad import nn
    >>> net = nn.mlp([3, 4, 2])
    >>> output_fn(net)(X=np.ones((5, 3)), **nn.init_params(net)).shape
    (5, 2)
    """
    from .compiled import compile as _compile

    f = _compile(network.output, wrt=list(network.params), args=[network.inputs])
    return _Gradient(f, "symgrad.compile", [p.name for p in network.params], compiled=f)


def accuracy_metric(model, inputs=None, targets=None, logits=True):
    """A metric ``fn(params, data) -> accuracy`` for `fit`: `accuracy` of the outputs on ``data``.

    ``model`` is an ``nn`` network (its `output_fn` is compiled once here) or a callable
    ``output(**values)``; ``inputs``/``targets`` name the data arrays (default the
    network's, ``"X"`` and ``"Y"``). In `fit` it is evaluated on the training data and on
    the validation data.

    >>> import numpy as np
    >>> acc = accuracy_metric(lambda X, w: X @ w)
    >>> acc({"w": np.array([[1.0, -1.0]])}, {"X": np.array([[1.0], [-2.0]]), "Y": np.array([0, 1])})
    1.0
    """
    from .nn import Network

    if isinstance(model, Network):
        inputs, targets = inputs or model.inputs.name, targets or model.targets.name
        model = output_fn(model)
    elif not callable(model):
        raise InputError(f"accuracy_metric needs an nn Network or a callable output(**values); got {model!r}")
    inputs, targets = inputs or "X", targets or "Y"

    def metric(params, data):
        for name in (inputs, targets):
            if name not in data:
                raise InputError(f"accuracy_metric reads data[{name!r}], which is not there; data has {', '.join(data)}")
        return accuracy(model(**{inputs: data[inputs]}, **params), data[targets], logits)

    return metric
