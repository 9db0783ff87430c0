"""Learning-rate schedules for `symgrad.train.fit`: callables ``epoch -> lr`` with epochs counted from 1.

`fit` sets ``optimizer.lr = schedule(epoch)`` before each epoch (epoch 1 is the first, as in
``fit``'s callback and ``History.loss[epoch - 1]``) and records it in ``History.lr``. Any
function of the epoch works; these are the usual ones, written so that a hand computation
checks them.

>>> s = warmup(cosine(0.1, epochs=10), epochs=2)
>>> [round(s(e), 4) for e in (1, 2, 3, 10)]
[0.0333, 0.065, 0.0905, 0.0024]
"""

import math
import numbers

from symgrad.errors import InputError


def _positive(value, name, integer=False):
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        kind = "a positive int" if integer else "a positive number"
        raise InputError(f"{name} must be {kind}; got {value!r}")
    return value


def _base(lr):
    """A schedule from a number (constant) or a callable (itself)."""
    if callable(lr):
        return lr
    return constant(lr)


class _Schedule:
    def __init__(self, fn, text):
        self.fn, self.text = fn, text

    def __call__(self, epoch):
        return self.fn(epoch)

    def __repr__(self):
        return self.text


def constant(lr):
    """lr every epoch.

    >>> constant(0.01)(7)
    0.01
    """
    lr = _positive(lr, "constant lr")
    return _Schedule(lambda epoch: lr, f"constant({lr:g})")


def step(lr, every, gamma=0.1):
    """lr·gamma^⌊(epoch − 1)/every⌋: multiplied by ``gamma`` after every ``every`` epochs (PyTorch's StepLR).

    >>> s = step(1.0, every=3, gamma=0.5)
    >>> [s(e) for e in range(1, 8)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    """
    lr = _positive(lr, "step lr")
    every = _positive(every, "step every", integer=True)
    gamma = _positive(gamma, "step gamma")
    return _Schedule(lambda epoch: lr * gamma ** ((epoch - 1) // every), f"step({lr:g}, every={every}, gamma={gamma:g})")


def cosine(lr, epochs, min_lr=0.0):
    """min_lr + (lr − min_lr)·(1 + cos(π·(epoch − 1)/epochs))/2: lr at epoch 1, near min_lr at ``epochs`` (cosine annealing).

    Past ``epochs`` it stays at ``min_lr``.

    >>> s = cosine(1.0, epochs=4)
    >>> [round(s(e), 4) for e in (1, 2, 3, 4, 5, 9)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    """
    lr = _positive(lr, "cosine lr")
    epochs = _positive(epochs, "cosine epochs", integer=True)
    if isinstance(min_lr, bool) or not isinstance(min_lr, numbers.Real) or not 0 <= min_lr <= lr:
        raise InputError(f"cosine min_lr must be a number in [0, lr] = [0, {lr:g}]; got {min_lr!r}")

    def fn(epoch):
        t = min(epoch - 1, epochs) / epochs
        return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * t)) / 2

    return _Schedule(fn, f"cosine({lr:g}, epochs={epochs}, min_lr={min_lr:g})")


def warmup(schedule, epochs):
    """A linear warm-up: ``schedule(epoch)·epoch/(epochs + 1)`` for the first ``epochs`` epochs, then ``schedule`` itself.

    ``schedule`` is a number (constant) or another schedule; the warm-up ramps towards it,
    so the first epoch already trains (lr/(epochs + 1)).

    >>> s = warmup(0.3, epochs=2)
    >>> [round(s(e), 6) for e in range(1, 5)]
    [0.1, 0.2, 0.3, 0.3]
    """
    base = _base(schedule)
    epochs = _positive(epochs, "warmup epochs", integer=True)

    def fn(epoch):
        lr = base(epoch)
        return lr * epoch / (epochs + 1) if epoch <= epochs else lr

    return _Schedule(fn, f"warmup({base!r}, epochs={epochs})")


def resolve(schedule, lr, epochs):
    """The callable ``fit`` uses for its ``schedule`` argument: None, a callable, or ``"cosine"``/``"constant"``.

    The names build `cosine` or `constant` from the optimiser's ``lr`` and fit's ``epochs``.
    Raises InputError for anything else.

    >>> resolve("cosine", 0.1, 20)
    cosine(0.1, epochs=20, min_lr=0)
    """
    if schedule is None or callable(schedule):
        return schedule
    if schedule == "cosine":
        return cosine(lr, epochs)
    if schedule == "constant":
        return constant(lr)
    raise InputError(f"schedule must be a callable epoch -> lr (epochs from 1), 'cosine' or 'constant', or one of "
                     f"symgrad.schedules.step / cosine / warmup; got {schedule!r}")
