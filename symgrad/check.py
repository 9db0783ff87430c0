"""``check_grads``: compiled derivatives against sympy.diff, finite differences and each other.

Three independent checks, as autograd and JAX test their gradients:
(a) reverse-mode gradient vs ``sympy.diff`` lambdified (exact oracle, tight tolerance);
(b) the directional derivative along a seeded random direction vs central differences;
(c) forward vs reverse mode: ⟨u, J v⟩ = ⟨Jᵀ u, v⟩.

>>> import sympy as sp
>>> x, y, w = sp.symbols("x y w")
>>> check_grads(-y*sp.log(1/(1 + sp.exp(-w*x))), wrt=[w], at={x: 3, y: 1, w: 3})
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .compiled import CompiledFunction, as_symbols, compile, free_symbols
from .errors import InputError, SymgradError

__all__ = ["GradientMismatch", "check_grads", "numeric_values"]


class GradientMismatch(AssertionError, SymgradError):
    """A derivative disagrees with its reference; the message shows both side by side."""


def numeric_values(at: dict) -> dict:
    """{symbol name: float or array} from a dict keyed by symbols or names."""
    out = {}
    for k, v in at.items():
        name = k.name if isinstance(k, sp.Symbol) else str(k)
        if isinstance(v, sp.Basic):
            if v.free_symbols:
                raise InputError("value of %r is %s, which still contains symbols" % (name, sp.sstr(v)))
            v = float(v)
        out[name] = v if isinstance(v, np.ndarray) else (float(v) if np.ndim(v) == 0 else np.asarray(v, float))
    return out


def _fail(kind, expr, at, rows):
    lines = ["%s check failed for %s at %s" % (kind, sp.sstr(expr), {k: v for k, v in at.items()})]
    lines += ["  %-10s compiled = %-24s reference = %s" % r for r in rows]
    raise GradientMismatch("\n".join(lines))


def check_grads(expr, wrt, at, args=None, rtol=1e-9, atol=1e-12, fd_rtol=1e-5, eps=1e-6, seed=0,
                modes=("sympy", "fd", "fwd-rev"), fn: CompiledFunction | None = None) -> None:
    """Raise GradientMismatch unless the compiled derivatives of ``expr`` pass all three checks.

    ``at`` maps every symbol (or its name) to a number or array (a batch). ``fn`` lets a test
    pass an already compiled function (e.g. one built with a deliberately wrong rule).
    Returns None on success.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> check_grads(sp.tanh(x)**2, wrt=[x], at={x: 0.3})
    """
    wrt = as_symbols(wrt, "wrt", free_symbols(sp.sympify(expr)))
    f = fn or compile(expr, wrt=wrt, args=args)
    vals = numeric_values(at)
    missing = [n for n in f.names if n not in vals]
    if missing:
        raise InputError("check_grads needs a value for %s in at" % ", ".join(repr(m) for m in missing))
    vals = {n: vals[n] for n in f.names}  # values of symbols the expression does not use are ignored
    wnames = [w.name for w in wrt]
    value, grads = f.value_and_grad(**vals)
    rng = np.random.default_rng(seed)

    if "sympy" in modes:
        # The oracle differentiates over the reals, so |x|' is sign(x), not a complex expression.
        real = {s: sp.Symbol(s.name, real=True) for s in f.params}
        syms = [real[s] for s in f.params]
        rows, bad = [], False
        for w in wrt:
            d = sp.lambdify(syms, sp.diff(expr.xreplace(real), real[w]), modules=["numpy", "scipy"] if _has_scipy() else "numpy")
            with np.errstate(all="ignore"):
                ref = np.asarray(d(*[vals[s.name] for s in syms]), float)
            full = np.broadcast_to(ref, np.broadcast_shapes(ref.shape, np.shape(f(**vals))))
            shape = np.shape(vals[w.name])
            ref_sum = _sum_to(full, shape) / (np.size(f(**vals)) if f.reduce == "mean" and np.size(f(**vals)) > 1 else 1)
            ok = np.allclose(grads[w.name], ref_sum, rtol=rtol, atol=atol, equal_nan=False)
            bad |= not ok
            rows.append((w.name, _fmt(grads[w.name]), _fmt(ref_sum)))
        if bad:
            _fail("sympy.diff", expr, at, rows)

    directions = {n: _like(rng, vals[n]) for n in wnames}
    if "fd" in modes:
        def total(shift):
            moved = dict(vals)
            for n in wnames:
                moved[n] = vals[n] + shift * directions[n]
            return float(np.sum(f(**moved)))
        fd = (total(eps) - total(-eps)) / (2 * eps)
        if f.reduce == "mean":
            fd /= max(np.size(f(**vals)), 1)
        analytic = sum(float(np.sum(grads[n] * directions[n])) for n in wnames)
        if not np.isclose(analytic, fd, rtol=fd_rtol, atol=fd_rtol * 1e-2 + 1e-8):
            _fail("finite-difference", expr, at, [("⟨∇f, v⟩", _fmt(analytic), _fmt(fd))])

    if "fwd-rev" in modes:
        _, jv = f.jvp(directions, **vals)
        lhs = float(np.sum(jv)) / (np.size(jv) if f.reduce == "mean" and np.size(jv) > 1 else 1)
        rhs = sum(float(np.sum(grads[n] * directions[n])) for n in wnames)
        if not np.isclose(lhs, rhs, rtol=rtol * 100, atol=atol * 100):
            _fail("forward/reverse", expr, at, [("⟨u, Jv⟩", _fmt(lhs), "⟨Jᵀu, v⟩ = " + _fmt(rhs))])


def _has_scipy():
    try:
        import scipy.special  # noqa: F401
        return True
    except ImportError:
        return False


def _like(rng, v):
    return float(rng.standard_normal()) if np.ndim(v) == 0 else rng.standard_normal(np.shape(v))


def _sum_to(g, shape):
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    g = g.sum(axis=axes) if axes else g
    return float(g) if not shape else np.reshape(g, shape)


def _fmt(v):
    return np.array2string(np.asarray(v), precision=12) if np.ndim(v) else repr(float(v))
