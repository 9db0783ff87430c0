"""Finite differences that adapt to the point: relative steps, steps inside the domain, kinks.

``slope(total)`` estimates d/dt of ``total(t)`` at t = 0, where ``total(t)`` returns the
(sum of the) function along a line x + t·d; the caller scales d to the point
(``scaled_direction``: each coordinate moves by about max(|x_i|, 1) per unit of t), so one
sequence of steps suits 1e-10 and 1e8 alike. The steps start at ε^(1/3) and shrink by 4; a
step that leaves the domain (a non-finite value at any point used) is skipped, and the step
whose estimated error (Richardson: |D(h) − D(2h)|, plus the rounding ε·|f|/h) is smallest
wins. ``one_sided(total, +1)`` and ``(total, -1)`` use the points on one side only: at a
kink they differ, and ``kink`` says so.

>>> import numpy as np
>>> s = slope(lambda t: (np.log(1e-7 + 1e-7 * t), 1.0))  # log(w) at 1e-7 along d = w
>>> bool(abs(s.value - 1.0) < 1e-9)
True
>>> left, right = one_sided(lambda t: (abs(t), abs(t)), -1), one_sided(lambda t: (abs(t), abs(t)), +1)
>>> round(left.value, 9), round(right.value, 9), kink(left, right)
(-1.0, 1.0, True)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Slope", "slope", "one_sided", "kink", "between", "scaled_direction", "agree", "EPS"]

EPS = float(np.finfo(float).eps)
STEPS = 24  # h = h0, h0/4, …, h0/4**23 (about 1e-19 of the scale)
ROUNDING = 64  # evaluation error allowed per unit of ε·|f|


class Slope(NamedTuple):
    """A finite-difference estimate: ``value``, an estimate of its ``error`` and the step ``h``."""

    value: float
    error: float
    h: float


def scaled_direction(x, v):
    """``v`` with every coordinate scaled by max(|x_i|, 1): a relative step at large |x|.

    >>> scaled_direction([1e8, 0.5], [1.0, -1.0]).tolist()
    [100000000.0, -1.0]
    """
    return np.maximum(np.abs(np.asarray(x, dtype=float)), 1.0) * v


def _best(points, stencil, h0):
    """The estimate of least estimated error over the step sequence, or None when every step
    leaves the domain. ``stencil(f, h)`` → (D(h), D(2h)) from the point values ``f[k]``."""
    best, h = None, h0
    for _ in range(STEPS):
        f = {}
        for k in points:
            s, mag = k(h)
            if not (np.isfinite(s) and np.isfinite(mag)):
                f = None
                break
            f[k] = (s, mag)
        if f is not None:
            d1, d2, mag = stencil({k: v[0] for k, v in f.items()}, h, max(v[1] for v in f.values()))
            rounding = ROUNDING * EPS * mag / h
            err = abs(d1 - d2) / 3 + rounding
            value = d1 + (d1 - d2) / 3  # Richardson: the h² term cancels
            if best is None or err < best.error:
                best = Slope(float(value), float(err), h)
            elif rounding > 100 * best.error:
                break  # smaller steps only add rounding
        h /= 4
    return best


def _at(total, t):
    with np.errstate(all="ignore"):
        out = total(t)
    return (float(out[0]), float(out[1])) if isinstance(out, tuple) else (float(out), abs(float(out)))


def slope(total, h0: float | None = None) -> Slope | None:
    """Central differences of ``total`` at 0 (points ±h, ±2h), the step chosen as above.

    ``total(t)`` returns a number or (number, magnitude): the magnitude (Σ|f| for a sum)
    sets the rounding error. None when no step keeps all four points finite.
    """
    h0 = h0 or EPS ** (1 / 3)
    pts = [lambda h, s=s: _at(total, s * h) for s in (-2, -1, 1, 2)]

    def stencil(f, h, mag):
        m2, m1, p1, p2 = (f[p] for p in pts)
        return (p1 - m1) / (2 * h), (p2 - m2) / (4 * h), mag
    return _best(pts, stencil, h0)


def one_sided(total, side: int, h0: float | None = None) -> Slope | None:
    """The one-sided derivative from the right (``side=+1``) or the left (``-1``), second order
    (points 0, h, 2h, 4h on that side only)."""
    h0 = h0 or EPS ** (1 / 3)
    pts = [lambda h, k=k: _at(total, side * k * h) for k in (0, 1, 2, 4)]

    def stencil(f, h, mag):
        f0, f1, f2, f4 = (f[p] for p in pts)
        d1 = (-3 * f0 + 4 * f1 - f2) / (2 * h)
        d2 = (-3 * f0 + 4 * f2 - f4) / (4 * h)
        return side * d1, side * d2, mag
    return _best(pts, stencil, h0)


def agree(a: float, est: Slope, rtol: float) -> bool:
    """Whether ``a`` matches the estimate within rtol (relative) and ten times its error.

    >>> agree(2.0, Slope(2.0 + 1e-9, 1e-10, 1e-6), 1e-12), agree(2.002, Slope(2.0, 1e-10, 1e-6), 1e-5)
    (True, False)
    """
    return bool(np.isfinite(a)) and abs(a - est.value) <= rtol * max(abs(a), abs(est.value)) + 10 * est.error


def kink(left: Slope | None, right: Slope | None, rtol: float = 1e-5) -> bool:
    """Whether the one-sided derivatives differ by more than their errors allow.

    >>> kink(Slope(1.0, 1e-9, 1e-6), Slope(1.0 + 1e-10, 1e-9, 1e-6))
    False
    """
    if left is None or right is None:
        return False
    return abs(left.value - right.value) > rtol * max(abs(left.value), abs(right.value)) + \
        10 * (left.error + right.error)


def between(a: float, left: Slope, right: Slope, rtol: float) -> bool:
    """Whether ``a`` lies between the one-sided derivatives (it is a subgradient's slope).

    >>> between(0.0, Slope(0.0, 1e-12, 1e-6), Slope(1.0, 1e-12, 1e-6), 1e-5)
    True
    """
    lo, hi = sorted((left.value, right.value))
    pad = rtol * max(abs(lo), abs(hi)) + 10 * (left.error + right.error)
    return bool(np.isfinite(a)) and lo - pad <= a <= hi + pad
