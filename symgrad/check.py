"""``check_grads``: compiled derivatives against sympy.diff, finite differences and each other.

Three independent checks, as autograd and JAX test their gradients:
(a) reverse-mode gradient vs ``sympy.diff`` lambdified (exact oracle, tight tolerance);
(b) the directional derivative along a seeded random direction vs central differences;
(c) forward vs reverse mode: ⟨u, J v⟩ = ⟨Jᵀ u, v⟩.

Networks (matrix expressions) get the same three checks. Their oracle never touches
symgrad's compiler: every matrix becomes an explicit ``sp.Matrix`` (the parameters' entries
fresh real symbols, the data its numbers), the expression is multiplied out into one scalar
SymPy expression in those symbols (``explicit``), and SymPy's derivatives of its operations
give the gradient by each entry. It grows with the number of entries, so it runs only while
the parameters have at most ``ORACLE_ENTRIES`` entries in all; beyond that the two numerical
checks remain.

>>> import sympy as sp
>>> x, y, w = sp.symbols("x y w")
>>> check_grads(-y*sp.log(1/(1 + sp.exp(-w*x))), wrt=[w], at={x: 3, y: 1, w: 3})
>>> import numpy as np
>>> X, v = sp.MatrixSymbol("X", 3, 2), sp.MatrixSymbol("v", 2, 1)
>>> check_grads(sp.Trace(sp.OneMatrix(1, 3) * (X * v).applyfunc(sp.tanh)), wrt=[v],
...             at={X: np.arange(6.0).reshape(3, 2) / 6, v: np.array([[0.5], [-1.0]])})
"""

from __future__ import annotations


import numpy as np
import sympy as sp

from .compiled import CompiledFunction, as_symbols, compile, free_symbols
from .errors import InputError, SymgradError
from .matrix import is_matrix_expr, matrix_leaves, source_text
from .oracle import explicit, network_oracle
from .printing import HAVE_SCIPY

__all__ = ["GradientMismatch", "check_grads", "numeric_values", "explicit", "ORACLE_ENTRIES"]

ORACLE_ENTRIES = 64  # networks: the sympy.diff oracle runs while the parameters have at most this many entries


class GradientMismatch(AssertionError, SymgradError):
    """A derivative disagrees with its reference; the message shows both side by side."""


def numeric_values(at: dict) -> dict:
    """{symbol name: float or array} from a dict keyed by symbols or names."""
    out = {}
    for k, v in at.items():
        name = k.name if isinstance(k, (sp.Symbol, sp.MatrixSymbol)) else str(k)
        if isinstance(v, sp.MatrixBase):  # an explicit SymPy matrix of numbers
            if v.free_symbols:
                raise InputError("value of %r is %s, which still contains symbols" % (name, sp.sstr(v)))
            v = np.array(v.tolist(), dtype=float)
        elif isinstance(v, sp.Basic):
            if v.free_symbols:
                raise InputError("value of %r is %s, which still contains symbols" % (name, sp.sstr(v)))
            v = float(v)
        out[name] = v if isinstance(v, np.ndarray) else (float(v) if np.ndim(v) == 0 else np.asarray(v, float))
    return out


def _values_for(f, at) -> dict:
    """{name: value} for every input of ``f`` from ``at``; values of other symbols are ignored."""
    vals = numeric_values(at)
    missing = [n for n in f.names if n not in vals]
    if missing:
        raise InputError("check_grads needs a value for %s in at" % ", ".join(repr(m) for m in missing))
    return {n: vals[n] for n in f.names}


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

    For a network (a matrix expression, ``symgrad.matrix.is_matrix_expr``) ``at`` maps its
    MatrixSymbols (or their names) to 2-D arrays and its scalar symbols to numbers; the
    "sympy" check then runs on explicit matrices (see the module docstring) and is skipped,
    without error, when the parameters have more than ``ORACLE_ENTRIES`` entries.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> check_grads(sp.tanh(x)**2, wrt=[x], at={x: 0.3})
    """
    expr = sp.sympify(expr)
    if is_matrix_expr(expr):
        return _check_network(expr, wrt, at, args, rtol, atol, fd_rtol, eps, seed, modes, fn)
    wrt = as_symbols(wrt, "wrt", free_symbols(sp.sympify(expr)))
    f = fn or compile(expr, wrt=wrt, args=args)
    vals = _values_for(f, at)
    wnames = [w.name for w in wrt]
    value, grads = f.value_and_grad(**vals)
    rng = np.random.default_rng(seed)

    if "sympy" in modes:
        # The oracle differentiates over the reals, so |x|' is sign(x), not a complex expression.
        real = {s: sp.Symbol(s.name, real=True) for s in f.params}
        syms = [real[s] for s in f.params]
        rows, bad = [], False
        for w in wrt:
            d = sp.lambdify(syms, sp.diff(expr.xreplace(real), real[w]), modules=["numpy", "scipy"] if HAVE_SCIPY else "numpy")
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

    _directional(f, vals, grads, wnames, rng, modes, rtol, atol, fd_rtol, eps,
                 lambda kind, rows: _fail(kind, expr, at, rows))


def _directional(f, vals, grads, wnames, rng, modes, rtol, atol, fd_rtol, eps, fail):
    """Checks (b) and (c): central differences and forward mode along one seeded random direction."""
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
            fail("finite-difference", [("⟨∇f, v⟩", _fmt(analytic), _fmt(fd))])

    if "fwd-rev" in modes:
        _, jv = f.jvp(directions, **vals)
        lhs = float(np.sum(jv)) / (np.size(jv) if f.reduce == "mean" and np.size(jv) > 1 else 1)
        rhs = sum(float(np.sum(grads[n] * directions[n])) for n in wnames)
        if not np.isclose(lhs, rhs, rtol=rtol * 100, atol=atol * 100):
            fail("forward/reverse", [("⟨u, Jv⟩", _fmt(lhs), "⟨Jᵀu, v⟩ = " + _fmt(rhs))])


# ---------------------------------------------------------------------------- networks


def _check_network(expr, wrt, at, args, rtol, atol, fd_rtol, eps, seed, modes, fn):
    """check_grads for a matrix expression (a network's loss, or a matrix-valued expression)."""
    mats, scalars, _ = matrix_leaves(expr)
    wrt = as_symbols(wrt, "wrt", mats + scalars)
    f = fn or compile(expr, wrt=wrt, args=args)
    if not isinstance(at, dict):
        raise InputError("at must be a dict {symbol or name: value}, got %s" % type(at).__name__)
    vals = _values_for(f, at)
    wnames = [w.name for w in wrt]
    _, grads = f.value_and_grad(**vals)  # also checks every shape, naming the culprit
    rng = np.random.default_rng(seed)
    where = _where(at)

    def fail(kind, rows):
        lines = ["%s check failed for %s at %s" % (kind, source_text(expr), where)]
        lines += ["  %-10s compiled = %-24s reference = %s" % r for r in rows]
        raise GradientMismatch("\n".join(lines))

    entries = sum(int(np.size(vals[n])) for n in wnames)
    if "sympy" in modes and entries <= ORACLE_ENTRIES:
        refs = network_oracle(expr, f, wrt, vals)
        lines, bad = [], False
        for w in wnames:
            got, ref = np.asarray(grads[w], float), np.asarray(refs[w], float)
            ok = got.shape == ref.shape and np.allclose(got, ref, rtol=rtol, atol=atol, equal_nan=False)
            bad |= not ok
            lines += _compare(w, got, ref, ok)
        if bad:
            raise GradientMismatch("\n".join(["sympy.diff check failed for %s at %s" % (source_text(expr), where)]
                                             + lines))

    _directional(f, vals, grads, wnames, rng, modes, rtol, atol, fd_rtol, eps, fail)


def _where(at) -> str:
    """The point, readably: numbers as they are, arrays by their shape."""
    parts = []
    for k, v in at.items():
        name = k.name if hasattr(k, "name") else str(k)
        shape = np.shape(v) if not isinstance(v, sp.MatrixBase) else v.shape
        parts.append("%s: %s" % (name, "%d×%d array" % tuple(shape) if len(shape) == 2 else
                                 ("array of shape %s" % (shape,) if shape else _num_text(v))))
    return "{%s}" % ", ".join(parts)


def _num_text(v) -> str:
    try:
        return repr(float(v))
    except (TypeError, ValueError):
        return sp.sstr(v)


def _compare(name, got, ref, ok) -> list:
    """Report lines for one parameter's gradient: whether it agrees, else its worst entry and
    (when small) both arrays in full."""
    shape = "×".join(str(n) for n in got.shape) or "scalar"
    if ok:
        return ["  %-10s (%s) agrees with the reference" % (name, shape)]
    if got.shape != ref.shape:
        return ["  %-10s compiled shape %s, reference shape %s" % (name, got.shape, ref.shape)]
    diff = np.abs(got - ref)
    diff = np.where(np.isnan(diff), np.inf, diff)
    i = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    at = "[%s]" % ", ".join(str(int(j)) for j in i) if i else ""
    lines = ["  %-10s (%s) differs most at %s%s: compiled = %r, reference = %r" % (
        name, shape, name, at, float(got[i]), float(ref[i]))]
    if got.size <= 24:
        pad = "\n" + " " * 25
        lines.append("  %-10s compiled  = %s" % ("", _fmt(got).replace("\n", pad)))
        lines.append("  %-10s reference = %s" % ("", _fmt(ref).replace("\n", pad)))
    return lines


def _like(rng, v):
    return float(rng.standard_normal()) if np.ndim(v) == 0 else rng.standard_normal(np.shape(v))


def _sum_to(g, shape):
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    g = g.sum(axis=axes) if axes else g
    return float(g) if not shape else np.reshape(g, shape)


def _fmt(v):
    return np.array2string(np.asarray(v), precision=12) if np.ndim(v) else repr(float(v))
