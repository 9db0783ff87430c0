"""Neural networks as plain SymPy matrix expressions: dense layers, activations, losses, `mlp`.

Everything here only *builds* expressions from ``MatrixSymbol``, ``MatMul``, ``OneMatrix``,
``HadamardProduct``/``HadamardPower``, ``.applyfunc`` and ``Trace``, exactly what a user
could write by hand; ``symgrad.compile`` turns them into NumPy. A batch is the rows of a
matrix: ``X`` is ``(B, n_in)`` with a symbolic batch size ``B``, a layer is
``A*W + OneMatrix(B, 1)*b`` with ``b`` a ``(1, n)`` row broadcast over the batch, and every
loss is a sum over outputs averaged over the batch (divided by ``B`` only).

>>> net = mlp([2, 3, 1], activation="sigmoid", loss="binary_cross_entropy")
>>> net
Network(mlp 2-3-1, sigmoid, binary_cross_entropy; params W1 (2, 3), b1 (1, 3), W2 (3, 1), b2 (1, 1))
>>> net.output
Lambda(_t, sigmoid(_t)).(X*W1 + 1*b1)*W2 + 1*b2
>>> sorted(init_params(net, seed=0))
['W1', 'W2', 'b1', 'b2']
"""

import dataclasses
import difflib
import math
import operator
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symgrad import functions
from symgrad.errors import InputError
from symgrad.penalties import exact_number, l1_penalty, l2_penalty

# One shared real dummy for every elementwise function: building the same activation twice
# gives equal expressions (so the graph can share them), and d|t|/dt is sign(t), not a
# complex-valued expression.
_t = sp.Dummy("t", real=True)


def _elementwise(M, f):
    return M.applyfunc(sp.Lambda(_t, f(_t)))


def _require_matrix(M, name):
    if not isinstance(M, sp.MatrixExpr):
        raise InputError(f"{name} must be a SymPy matrix expression (e.g. a MatrixSymbol); got {type(M).__name__} {M!r}")


def _same(a, b):
    return sp.sympify(a - b) == 0


def rows(M):
    """The number of rows of a matrix expression (the batch size ``B`` for activations).

    >>> import sympy as sp
    >>> rows(sp.MatrixSymbol("X", sp.Symbol("B"), 3))
    B
    """
    return M.shape[0]


# ---------------------------------------------------------------------------- layers


def dense(A, W, b):
    """A fully connected layer ``A*W + OneMatrix(rows(A), 1)*b`` (``b`` a row broadcast over the batch).

    Raises InputError when the shapes do not chain: ``A`` is ``(B, n)``, ``W`` is ``(n, m)``
    and ``b`` is ``(1, m)``.

    >>> import sympy as sp
    >>> B = sp.Symbol("B", integer=True, positive=True)
    >>> X, W, b = sp.MatrixSymbol("X", B, 3), sp.MatrixSymbol("W", 3, 2), sp.MatrixSymbol("b", 1, 2)
    >>> Z = dense(X, W, b)
    >>> Z, Z.shape
    (X*W + 1*b, (B, 2))
    """
    for M, name in ((A, "A"), (W, "W"), (b, "b")):
        _require_matrix(M, name)
    if not _same(A.shape[1], W.shape[0]):
        raise InputError(f"dense: A has {A.shape[1]} columns but W {W} has {W.shape[0]} rows; shapes {A.shape} and {W.shape} do not chain")
    if not (_same(b.shape[0], 1) and _same(b.shape[1], W.shape[1])):
        raise InputError(f"dense: bias {b} must have shape (1, {W.shape[1]}) to match W {W}; got {b.shape}")
    return A * W + sp.OneMatrix(A.shape[0], 1) * b


# ---------------------------------------------------------------------------- activations


def sigmoid(Z):
    """Elementwise logistic sigmoid σ(z) = 1/(1 + exp(−z)) (``symgrad.functions.sigmoid``).

    >>> import sympy as sp
    >>> sigmoid(sp.MatrixSymbol("Z", 4, 3))
    Lambda(_t, sigmoid(_t)).(Z)
    """
    _require_matrix(Z, "Z")
    return _elementwise(Z, functions.sigmoid)


def tanh(Z):
    """Elementwise hyperbolic tangent (``sympy.tanh``).

    >>> import sympy as sp
    >>> tanh(sp.MatrixSymbol("Z", 4, 3)).shape
    (4, 3)
    """
    _require_matrix(Z, "Z")
    return _elementwise(Z, sp.tanh)


def relu(Z):
    """Elementwise max(z, 0); its derivative at 0 is 0 (``symgrad.functions.relu``).

    >>> import sympy as sp
    >>> relu(sp.MatrixSymbol("Z", 4, 3))
    Lambda(_t, relu(_t)).(Z)
    """
    _require_matrix(Z, "Z")
    return _elementwise(Z, functions.relu)


def leaky_relu(Z, alpha=0.01):
    """Elementwise z for z > 0 and α·z otherwise (default α = 0.01, as PyTorch).

    >>> import sympy as sp
    >>> leaky_relu(sp.MatrixSymbol("Z", 4, 3), 0.1)
    Lambda(_t, leaky_relu(_t, 1/10)).(Z)
    """
    _require_matrix(Z, "Z")
    a = exact_number(alpha, "leaky_relu alpha")
    return _elementwise(Z, lambda t: functions.leaky_relu(t, a))


def softplus(Z):
    """Elementwise log(1 + exp(z)) (``symgrad.functions.softplus``; derivative σ(z)).

    >>> import sympy as sp
    >>> softplus(sp.MatrixSymbol("Z", 4, 3))
    Lambda(_t, softplus(_t)).(Z)
    """
    _require_matrix(Z, "Z")
    return _elementwise(Z, functions.softplus)


def softmax(Z):
    """Row-wise softmax: ``HadamardProduct(E, HadamardPower(E*OneMatrix(C, 1), -1)*OneMatrix(1, C))``.

    ``E = exp(Z)`` elementwise; ``E*OneMatrix(C, 1)`` is the column of row sums, raised to
    the power −1 elementwise and broadcast back across the ``C`` columns. This is the naive
    form, which would overflow for large logits if evaluated literally; ``symgrad.compile``
    recognises it as one max-shifted softmax node. For training use `softmax_cross_entropy`
    on the logits.

    >>> import sympy as sp
    >>> S = softmax(sp.MatrixSymbol("Z", 4, 3))
    >>> S.shape
    (4, 3)
    >>> S
    HadamardProduct(Lambda(_t, exp(_t)).(Z), HadamardPower(Lambda(_t, exp(_t)).(Z)*1, -1)*1)
    """
    _require_matrix(Z, "Z")
    C = Z.shape[1]
    E = _elementwise(Z, sp.exp)
    return sp.HadamardProduct(E, sp.HadamardPower(E * sp.OneMatrix(C, 1), -1) * sp.OneMatrix(1, C))


ACTIVATIONS = {"tanh": tanh, "sigmoid": sigmoid, "relu": relu, "leaky_relu": leaky_relu, "softplus": softplus}


# ---------------------------------------------------------------------------- losses


def _total(M):
    """The sum of all entries of ``M`` as a scalar: ``Trace(OneMatrix(1, r)*M*OneMatrix(c, 1))``."""
    r, c = M.shape
    return sp.Trace(sp.OneMatrix(1, r) * M * sp.OneMatrix(c, 1))


def _pair(Z, Y, loss):
    _require_matrix(Z, "Z")
    _require_matrix(Y, "Y")
    if not (_same(Z.shape[0], Y.shape[0]) and _same(Z.shape[1], Y.shape[1])):
        raise InputError(f"{loss}: prediction {Z.shape} and target {Y} {Y.shape} must have the same shape")
    return Z.shape[0]


def mse(Z, Y):
    """Squared error summed over outputs, averaged over the batch: ``Trace((Z - Y).T*(Z - Y))/B``.

    Divided by ``B`` only, not by the number of outputs (for one output this is the usual
    mean squared error; PyTorch's ``MSELoss`` also divides by the outputs).

    >>> import sympy as sp
    >>> B = sp.Symbol("B", integer=True, positive=True)
    >>> mse(sp.MatrixSymbol("Z", B, 2), sp.MatrixSymbol("Y", B, 2))
    Trace((-Y.T + Z.T)*(-Y + Z))/B
    """
    B = _pair(Z, Y, "mse")
    D = Z - Y
    return sp.Trace(D.T * D) / B


def l1(Z, Y):
    """Absolute error summed over outputs, averaged over the batch; d|r|/dr = sign(r) (0 at 0).

    >>> import sympy as sp
    >>> l1(sp.MatrixSymbol("Z", 8, 1), sp.MatrixSymbol("Y", 8, 1))
    Trace(1*Lambda(_t, Abs(_t)).(-Y + Z))/8
    """
    B = _pair(Z, Y, "l1")
    return _total(_elementwise(Z - Y, sp.Abs)) / B


def huber(Z, Y, delta=1):
    """Huber loss summed over outputs, averaged over the batch (quadratic within ``delta``, linear outside).

    Per entry with r = z − y: r²/2 if |r| ≤ δ, else δ(|r| − δ/2); its derivative is r
    clipped to [−δ, δ].

    >>> import sympy as sp
    >>> huber(sp.MatrixSymbol("Z", 8, 1), sp.MatrixSymbol("Y", 8, 1), delta=2)
    Trace(1*Lambda(_t, Piecewise((-2*_t - 2, _t < -2), (2*_t - 2, _t > 2), (_t**2/2, True))).(-Y + Z))/8
    """
    B = _pair(Z, Y, "huber")
    d = exact_number(delta, "huber delta")
    if not d > 0:
        raise InputError(f"huber delta must be positive; got {delta!r}")
    # Three branches instead of |r|: each piece is a polynomial, so its derivative
    # (-δ, δ or r) needs no sign() or Abs.
    piece = lambda r: sp.Piecewise((-d * r - d**2 / 2, r < -d), (d * r - d**2 / 2, r > d), (r**2 / 2, True))
    return _total(_elementwise(Z - Y, piece)) / B


def binary_cross_entropy(Z, Y, logits=True):
    """Binary cross-entropy summed over outputs, averaged over the batch; targets are 0/1.

    With ``logits=True`` (default) ``Z`` holds logits and the loss is the stable
    ``(sum softplus(Z) - Trace(Y.T*Z))/B`` (softplus(z) − y·z equals
    −(y log σ(z) + (1 − y) log(1 − σ(z)))). With ``logits=False`` ``Z`` holds probabilities
    and the loss is the textbook −(Y∘log P + (1 − Y)∘log(1 − P)) summed, over B.

    >>> import sympy as sp
    >>> binary_cross_entropy(sp.MatrixSymbol("Z", 8, 1), sp.MatrixSymbol("Y", 8, 1))
    Trace(1*Lambda(_t, softplus(_t)).(Z))/8 - Trace(Y.T*Z)/8
    """
    B = _pair(Z, Y, "binary_cross_entropy")
    if logits:
        return (_total(_elementwise(Z, functions.softplus)) - sp.Trace(Y.T * Z)) / B
    ones = sp.OneMatrix(*Z.shape)
    log = lambda M: _elementwise(M, sp.log)
    return -(sp.Trace(Y.T * log(Z)) + sp.Trace((ones - Y).T * log(ones - Z))) / B


def softmax_cross_entropy(Z, Y):
    """Softmax cross-entropy of logits ``Z`` (rows) against targets ``Y`` (one-hot or soft), averaged over the batch.

    Written in the naive form
    ``(Trace(OneMatrix(1, B)*(exp(Z)*OneMatrix(C, 1)).applyfunc(log)) - Trace(Y.T*Z))/B``,
    i.e. log-sum-exp of each row minus the target-weighted logits; symgrad's compiler
    recognises it and evaluates it stably (max-shifted), with gradient (softmax(Z) − Y)/B.

    >>> import sympy as sp
    >>> B = sp.Symbol("B", integer=True, positive=True)
    >>> softmax_cross_entropy(sp.MatrixSymbol("Z", B, 10), sp.MatrixSymbol("Y", B, 10))
    (Trace(1*Lambda(_t, log(_t)).(Lambda(_t, exp(_t)).(Z)*1)) - Trace(Y.T*Z))/B
    """
    B = _pair(Z, Y, "softmax_cross_entropy")
    C = Z.shape[1]
    row_sums = _elementwise(Z, sp.exp) * sp.OneMatrix(C, 1)
    return (sp.Trace(sp.OneMatrix(1, B) * _elementwise(row_sums, sp.log)) - sp.Trace(Y.T * Z)) / B


LOSSES = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "mse": mse,
    "l1": l1,
    "huber": huber,
    "binary_cross_entropy": binary_cross_entropy,
}


def _lookup(table, name, what):
    if name in table:
        return table[name]
    close = difflib.get_close_matches(str(name), list(table), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise InputError(f"unknown {what} {name!r}; {hint}known: {', '.join(table)}")


# ---------------------------------------------------------------------------- networks


@dataclass(frozen=True, slots=True, repr=False)
class Network:
    """A network's loss and output expressions with its symbols, as built by `mlp`.

    ``params`` is the ordered tuple W1, b1, W2, b2, … of MatrixSymbols; ``inputs`` is ``X``
    ``(B, n_in)``, ``targets`` is ``Y`` ``(B, n_out)``, ``batch`` is ``B``; ``output`` is
    the last layer's logits or predictions (no final activation). ``sizes``,
    ``activation`` and ``loss_name`` say how it was built; ``kind`` is ``"mlp"`` or
    ``"logistic_regression"``.
    """

    loss: sp.Expr
    output: sp.MatrixExpr
    params: tuple
    inputs: sp.MatrixSymbol
    targets: sp.MatrixSymbol
    batch: sp.Expr
    sizes: tuple
    activation: str | None
    loss_name: str
    kind: str = "mlp"

    @property
    def shapes(self):
        """Parameter name -> shape tuple of ints, in order."""
        return {p.name: tuple(int(n) for n in p.shape) for p in self.params}

    def __repr__(self):
        params = ", ".join(f"{name} {shape}" for name, shape in self.shapes.items())
        arch = "-".join(str(n) for n in self.sizes)
        act = f"{self.activation}, " if self.activation else ""
        return f"Network({self.kind} {arch}, {act}{self.loss_name}; params {params})"


def _default_batch(batch):
    if batch is None:
        return sp.Symbol("B", integer=True, positive=True)
    if isinstance(batch, sp.Symbol):
        return batch
    try:
        n = operator.index(batch)
    except TypeError:
        raise InputError(f"batch must be a SymPy Symbol or a positive int; got {batch!r}") from None
    if n < 1:
        raise InputError(f"batch must be positive; got {n}")
    return sp.Integer(n)


def _check_sizes(sizes):
    try:
        sizes = list(sizes)
    except TypeError:
        raise InputError(f"mlp sizes must be a list of layer widths like [64, 128, 10]; got {sizes!r}") from None
    if len(sizes) < 2:
        raise InputError(f"mlp sizes needs at least an input and an output width, like [64, 10]; got {sizes!r}")
    out = []
    for i, n in enumerate(sizes):
        if isinstance(n, bool):
            n = None
        try:
            n = operator.index(n)
        except TypeError:
            raise InputError(f"mlp sizes[{i}] must be a positive int; got {sizes[i]!r} in {sizes!r}") from None
        if n < 1:
            raise InputError(f"mlp sizes[{i}] must be a positive int; got {n} in {sizes!r}")
        out.append(n)
    return tuple(out)


def mlp(sizes, activation="tanh", loss="softmax_cross_entropy", batch=None):
    """A multi-layer perceptron ``sizes[0]-…-sizes[-1]`` as a `Network` of SymPy expressions.

    Hidden layers are ``dense`` followed by ``activation`` (tanh, sigmoid, relu,
    leaky_relu with α = 0.01, softplus); the last layer is linear and feeds ``loss``
    (softmax_cross_entropy on logits, mse, l1, huber with δ = 1, binary_cross_entropy on
    logits). ``batch`` is the batch-size symbol (default ``Symbol("B", integer=True,
    positive=True)``) or a fixed int. Raises InputError for bad sizes or unknown names.

    >>> net = mlp([64, 128, 10])
    >>> [p.name for p in net.params], net.inputs.shape, net.targets.shape
    (['W1', 'b1', 'W2', 'b2'], (B, 64), (B, 10))
    >>> net.loss.free_symbols == {net.batch, net.inputs, net.targets, *net.params}
    True
    """
    sizes = _check_sizes(sizes)
    act = _lookup(ACTIVATIONS, activation, "activation")
    loss_fn = _lookup(LOSSES, loss, "loss")
    if loss == "softmax_cross_entropy" and sizes[-1] < 2:
        raise InputError(
            "softmax_cross_entropy needs at least 2 outputs (softmax over one logit is constant); "
            "use loss='binary_cross_entropy' for a single output"
        )
    B = _default_batch(batch)
    X = sp.MatrixSymbol("X", B, sizes[0])
    Y = sp.MatrixSymbol("Y", B, sizes[-1])
    params, A = [], X
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        W, b = sp.MatrixSymbol(f"W{k}", n_in, n_out), sp.MatrixSymbol(f"b{k}", 1, n_out)
        params += [W, b]
        Z = dense(A, W, b)
        A = act(Z) if k < len(sizes) - 1 else Z
    return Network(loss_fn(A, Y), A, tuple(params), X, Y, B, sizes, activation, loss, "mlp")


def logistic_regression(n_features, batch=None):
    """Logistic regression (one sigmoid neuron) with parameters ``w`` ``(d, 1)`` and ``b`` ``(1, 1)``.

    ``output`` is the logit column ``X*w + OneMatrix(B, 1)*b``; the loss is
    ``binary_cross_entropy`` from logits, averaged over the batch. The lecture's neuron.

    >>> net = logistic_regression(2)
    >>> net
    Network(logistic_regression 2-1, binary_cross_entropy; params w (2, 1), b (1, 1))
    >>> net.output
    X*w + 1*b
    """
    (d, _) = _check_sizes([n_features, 1])
    B = _default_batch(batch)
    X, Y = sp.MatrixSymbol("X", B, d), sp.MatrixSymbol("Y", B, 1)
    w, b = sp.MatrixSymbol("w", d, 1), sp.MatrixSymbol("b", 1, 1)
    Z = dense(X, w, b)
    return Network(binary_cross_entropy(Z, Y), Z, (w, b), X, Y, B, (d, 1), None, "binary_cross_entropy", "logistic_regression")


# ---------------------------------------------------------------------------- regularisation


def _penalised(network, params):
    if params == "weights":   # the init_params rule: a parameter is a bias when its name starts with b
        return [p for p in network.params if not p.name.startswith("b")]
    if params == "all":
        return list(network.params)
    by_name = {p.name: p for p in network.params}
    chosen = []
    for p in [params] if isinstance(params, (str, sp.MatrixSymbol)) else list(params):
        name = p if isinstance(p, str) else getattr(p, "name", None)
        if name not in by_name:
            raise InputError(f"regularize: {p!r} is not a parameter of {network}; use 'weights', 'all' or names from "
                             f"{', '.join(by_name)}")
        chosen.append(by_name[name])
    return chosen


def regularize(network, l2=0.0, l1=0.0, params="weights"):
    """The `Network` with ``l2_penalty(params, l2) + l1_penalty(params, l1)`` added to its loss, symbolically.

    ``params``: ``"weights"`` (default: every parameter whose name does not start with
    ``b``, as in `init_params`), ``"all"``, or a list of names or MatrixSymbols. The L2
    term is (λ/2)·Σ‖W‖², so its gradient λ·W equals ``train.fit(weight_decay=λ)`` on the same
    parameters; the L1 term is λ·Σ|w|. ``loss_name`` says what was added. Raises InputError
    for a negative strength or an unknown parameter.

    >>> net = regularize(mlp([4, 3, 2]), l2=1e-4)
    >>> net.loss_name
    'softmax_cross_entropy + L2(0.0001) on W1, W2'
    >>> net.loss.has(net.params[0].T * net.params[0])
    True
    """
    if not isinstance(network, Network):
        raise InputError(f"regularize needs a symgrad.nn Network (e.g. mlp([...])); got {type(network).__name__}; "
                         f"for another loss expression add nn.l2_penalty(params, λ) to it")
    chosen = _penalised(network, params)
    loss, notes = network.loss, []
    for strength, fn, label in ((l2, l2_penalty, "L2"), (l1, l1_penalty, "L1")):
        term = fn(chosen, strength) if chosen else sp.Integer(0)   # checks the strength even when zero
        if term != 0:
            loss = loss + term
            notes.append(f"{label}({float(strength):g})")
    if not notes:
        return network
    names = ", ".join(p.name for p in chosen)
    return dataclasses.replace(network, loss=loss, loss_name=f"{network.loss_name} + {' + '.join(notes)} on {names}")


# ---------------------------------------------------------------------------- initialisation

SCHEMES = ("glorot", "he", "zeros")


def init_params(network_or_params, seed=0, scheme="glorot", dtype=np.float64):
    """Initial values: name -> array of ``dtype`` (default float64), weights from ``scheme``, biases zero; deterministic in ``seed``.

    A parameter is a bias when its name starts with ``b`` (b1, b2, b); every other
    parameter is a weight ``(fan_in, fan_out)``. Schemes: ``"glorot"`` (uniform on
    ±√(6/(fan_in + fan_out)), for tanh and sigmoid), ``"he"`` (normal with standard
    deviation √(2/fan_in), for relu), ``"zeros"``. Values are drawn with
    ``np.random.default_rng(seed)`` in parameter order, in float64, then rounded to
    ``dtype`` (``np.float32`` gives the same draws as float32). Raises InputError for an
    unknown scheme, a dtype that is not a floating type, or a parameter whose shape is not
    made of numbers.

    >>> p = init_params(mlp([4, 3, 2]), seed=1)
    >>> {k: v.shape for k, v in p.items()}
    {'W1': (4, 3), 'b1': (1, 3), 'W2': (3, 2), 'b2': (1, 2)}
    >>> float(abs(p["b1"]).max()), bool(abs(p["W1"]).max() <= (6 / 7) ** 0.5)
    (0.0, True)
    >>> init_params(mlp([4, 3, 2]), dtype=np.float32)["W2"].dtype
    dtype('float32')
    """
    params = network_or_params.params if isinstance(network_or_params, Network) else network_or_params
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        kind = None
    if kind != "f":
        raise InputError(f"init_params dtype must be a floating type such as np.float32 or np.float64; got {dtype!r}")
    dtype = np.dtype(dtype)
    if scheme not in SCHEMES:
        _lookup(dict.fromkeys(SCHEMES), scheme, "init scheme")
    rng = np.random.default_rng(seed)
    values = {}
    for p in params:
        if not isinstance(p, sp.MatrixSymbol):
            raise InputError(f"init_params needs MatrixSymbols (or a Network); got {type(p).__name__} {p!r}")
        try:
            shape = tuple(operator.index(n) for n in p.shape)
        except TypeError:
            raise InputError(f"parameter {p.name} has shape {p.shape}; init_params needs a shape made of numbers") from None
        fan_in, fan_out = shape
        if p.name.startswith("b") or scheme == "zeros":
            values[p.name] = np.zeros(shape)
        elif scheme == "glorot":
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            values[p.name] = rng.uniform(-limit, limit, size=shape)
        else:
            values[p.name] = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
        values[p.name] = values[p.name].astype(dtype, copy=False)
    return values
