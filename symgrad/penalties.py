"""L2 and L1 penalties on parameters as SymPy expressions, so that tables and ``check_grads`` see them.

``l2_penalty(params, λ)`` is (λ/2)·Σ‖W‖² (Frobenius), whose gradient λ·W is exactly what
``fit(weight_decay=λ)`` adds to the gradient; ``l1_penalty(params, λ)`` is λ·Σ|w| with
gradient λ·sign(w) (0 at 0). ``symgrad.nn.regularize`` adds them to a network's loss.

>>> import sympy as sp
>>> W = sp.MatrixSymbol("W", 3, 2)
>>> l2_penalty([W], 0.01)
Trace(W.T*W)/200
>>> l1_penalty([W], 0.5)
Trace(1*Lambda(_t, Abs(_t)).(W)*1)/2
"""

import math

import sympy as sp

from symgrad.errors import InputError

_t = sp.Dummy("t", real=True)   # one shared dummy, so building a penalty twice gives equal expressions


def exact_number(value, name):
    """A real number as an exact SymPy number (0.01 -> 1/100, so expressions print cleanly).

    >>> exact_number(0.01, "alpha"), exact_number(sp.Rational(1, 3), "alpha")
    (1/100, 1/3)
    """
    if isinstance(value, sp.Basic):
        if not value.is_number or value.is_real is False:
            raise InputError(f"{name} must be a real number; got {value!r}")
        return value
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a real number; got {value!r}") from None
    if not math.isfinite(x):
        raise InputError(f"{name} must be finite; got {value!r}")
    return sp.Rational(repr(x)) if isinstance(value, float) else sp.nsimplify(value)


def _strength(value, what):
    """A penalty strength as an exact SymPy number, refused unless real and >= 0."""
    lam = exact_number(value, "%s strength" % what)
    if lam.is_number and not (lam.is_real and lam >= 0):
        raise InputError(f"{what} strength must be a finite number >= 0; got {value!r}")
    return lam


def _symbols(params, what):
    if isinstance(params, (sp.MatrixSymbol, sp.Symbol)):
        params = [params]
    try:
        params = list(params)
    except TypeError:
        raise InputError(f"{what} needs a list of parameter symbols (MatrixSymbols); got {params!r}") from None
    if not params:
        raise InputError(f"{what} needs at least one parameter; got an empty list")
    for p in params:
        if not isinstance(p, (sp.MatrixSymbol, sp.Symbol)):
            raise InputError(f"{what} penalises parameter symbols (MatrixSymbol or Symbol); got {type(p).__name__} {p!r}")
    return params


def l2_penalty(params, strength):
    """(strength/2)·Σ‖p‖² over ``params`` (MatrixSymbols: Trace(p.T*p); Symbols: p²); gradient strength·p.

    Raises InputError for a negative strength or something that is not a parameter symbol.

    >>> import sympy as sp
    >>> w = sp.Symbol("w")
    >>> sp.diff(l2_penalty([w], 0.1), w)
    w/10
    """
    lam = _strength(strength, "l2_penalty")
    terms = [sp.Trace(p.T * p) if isinstance(p, sp.MatrixSymbol) else p**2 for p in _symbols(params, "l2_penalty")]
    return lam / 2 * sp.Add(*terms)


def l1_penalty(params, strength):
    """strength·Σ|p| over the entries of ``params``; gradient strength·sign(p), 0 at 0.

    >>> import sympy as sp
    >>> l1_penalty([sp.Symbol("w")], 2)
    2*Abs(w)
    """
    lam = _strength(strength, "l1_penalty")
    terms = []
    for p in _symbols(params, "l1_penalty"):
        if isinstance(p, sp.MatrixSymbol):
            r, c = p.shape
            terms.append(sp.Trace(sp.OneMatrix(1, r) * p.applyfunc(sp.Lambda(_t, sp.Abs(_t))) * sp.OneMatrix(c, 1)))
        else:
            terms.append(sp.Abs(p))
    return lam * sp.Add(*terms)
