"""``check_grads(..., order=2)``: Hessian-vector products against two references.

(a) central differences of the gradient along the same direction, (grad(p + h·v) −
grad(p − h·v)) / 2h, which reads only the first-order program (checked by order 1) and so is
independent of the second-order sweep; (b) for scalar expressions, ``sympy.hessian`` over the
reals at 30 digits, summed over the batch. A user ``Function``'s second derivative comes
from its own ``fdiff`` in both SymPy and symgrad, so (b) is not independent there; (a) still is.

>>> import sympy as sp
>>> x, w = sp.symbols("x w")
>>> check_second(sp.exp(w * x) * w, wrt=[w], at={x: 0.5, w: 0.3})
"""

from __future__ import annotations

import numpy as np
import sympy as sp

__all__ = ["check_second"]


def _user_functions(expr) -> list:
    """Names of the user ``Function`` classes in ``expr`` (SymPy differentiates them by their fdiff)."""
    found, seen, stack = set(), set(), [expr]
    while stack:
        e = stack.pop()
        if e in seen or not isinstance(e, sp.Basic):
            continue
        seen.add(e)
        if isinstance(e, sp.Function) and not type(e).__module__.startswith(("sympy", "symgrad")):
            found.add(type(e).__name__)
        stack.extend(e.args)
    return sorted(found)


def _text(v) -> str:
    return np.array2string(np.asarray(v), precision=10) if np.ndim(v) else "%.12g" % float(v)


def check_second(expr, wrt, at, args=None, rtol=1e-8, fd_rtol=1e-5, seed=0, f=None):
    """Raise GradientMismatch when H·v along a seeded random direction disagrees with central
    differences of the gradient or (scalar expressions) with ``sympy.hessian``."""
    from .checkreport import GradientMismatch, numeric_values
    from .compiled import compile as compile_
    from .matrix import is_matrix_expr

    f = f if f is not None else compile_(expr, wrt=wrt, args=args)
    vals = numeric_values(at)
    vals = {n: vals[n] for n in f.names if n in vals}
    rng = np.random.default_rng(seed)
    names = [w.name for w in f.wrt]
    v = {k: (rng.standard_normal(np.shape(vals[k])) if np.ndim(vals[k]) else float(rng.standard_normal()))
         for k in names}
    hv = f.hvp(v, **vals)
    problems = []
    # (a) central differences of the gradient, with a step scaled to the parameters
    scale = max([1.0] + [float(np.max(np.abs(vals[k]))) for k in names])
    h = 1e-5 * scale

    def grad_at(s):
        return f.grad(**{k: (vals[k] + s * h * np.asarray(v[k]) if k in v else vals[k]) for k in vals})

    gp, gm = grad_at(1.0), grad_at(-1.0)
    for k in names:
        fd = (np.asarray(gp[k]) - np.asarray(gm[k])) / (2 * h)
        size = max(float(np.max(np.abs(fd))), float(np.max(np.abs(hv[k]))), 1e-8)
        if not np.allclose(hv[k], fd, rtol=fd_rtol, atol=fd_rtol * size):
            problems.append("H·v for %r: symgrad %s, central differences of the gradient %s"
                            % (k, _text(hv[k]), _text(fd)))
    # (b) sympy.hessian, scalar expressions only
    independent = not _user_functions(expr)
    if not is_matrix_expr(expr):
        real = {s: sp.Symbol(s.name, real=True) for s in expr.free_symbols}
        syms = [real.get(w, w) for w in f.wrt]
        H = sp.hessian(expr.xreplace(real), syms)
        n = int(np.prod(np.broadcast_shapes(*(np.shape(vals[s.name]) for s in expr.free_symbols)))) or 1
        want = {k: 0.0 for k in names}
        for idx in range(n):
            point = {real[s]: sp.Float(float(np.ravel(np.broadcast_to(vals[s.name], (n,) if n > 1 else ()))[idx]
                                             if n > 1 else vals[s.name]), 30) for s in expr.free_symbols}
            Hk = H.xreplace(point).evalf(30)
            for i, a in enumerate(names):
                want[a] += sum(float(Hk[i, j]) * float(np.ravel(np.broadcast_to(v[b], (n,) if n > 1 else ()))[idx]
                                                       if n > 1 else v[b]) for j, b in enumerate(names))
        if f.reduce == "mean" and n > 1:
            want = {k: w_ / n for k, w_ in want.items()}
        for k in names:
            got = float(np.sum(hv[k]))
            if not np.isclose(got, want[k], rtol=rtol, atol=rtol * max(1.0, abs(want[k]))):
                problems.append("H·v for %r: symgrad %.12g, sympy.hessian %.12g%s"
                                % (k, got, want[k], "" if independent else " (not independent: %s's second "
                                   "derivative is its own fdiff's)" % ", ".join(_user_functions(expr))))
    if problems:
        fns = _user_functions(expr)
        hint = ("\n  check the fdiff of %s and of the functions it returns; sympy.hessian is not independent "
                "here (it differentiates them by the same fdiff), the central differences are" % ", ".join(fns)
                if fns else "")
        raise GradientMismatch("second derivatives disagree along v = %s:\n  %s%s"
                               % ({k: _text(x) for k, x in v.items()}, "\n  ".join(problems), hint))
