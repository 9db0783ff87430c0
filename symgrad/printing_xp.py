"""The array-API printer: the same right-hand sides as ``printing.CodePrinter``, written against
a namespace ``xp`` (NumPy, JAX, PyTorch, CuPy, Dask, array-api-strict) instead of ``np``.

Generated code calls ``xp.exp``, ``xp.sum(a, axis=0, keepdims=True)``, ``xp.where`` and
``a @ b`` only: functions of the array API standard. Special functions the standard lacks
(``erf``, ``gammaln``, ...) are called on ``xsp``, each library's own special-function module,
which ``symgrad.portable`` binds when it compiles the module for a library. Nothing is
updated in place (JAX arrays are immutable) and nothing branches on data, so ``jax.jit``
can trace the functions.

>>> import sympy as sp
>>> from symgrad.functions import sigmoid
>>> x = sp.Symbol("x")
>>> xp_code(sp.atan(x) + sigmoid(x)**2 + sp.erf(x) + sp.Max(x, 0) + sp.sqrt(sp.pi), {x: "x"})
'xp.atan(x) + xsp.erf(x) + (1/(1 + xp.exp(-(x))))**2 + _maximum(0, x) + 1.772453850905516'
"""

from __future__ import annotations

import sympy as sp

from .errors import UnsupportedError
from .printing import CodePrinter

__all__ = ["XPPrinter", "xp_code", "RENAMED"]

# NumPy's spelling -> the array API's (the rest have the same name in both).
RENAMED = {"arccos": "acos", "arccosh": "acosh", "arcsin": "asin", "arcsinh": "asinh", "arctan": "atan",
           "arctan2": "atan2", "arctanh": "atanh", "absolute": "abs", "power": "pow", "mod": "remainder",
           "amax": "max", "amin": "min"}

# Two-argument functions: called through a runtime helper (``_maximum``) that makes a Python number
# an array of the call's dtype first (torch.maximum(t, 0) wants two tensors).
BINARY = ("maximum", "minimum", "hypot", "logaddexp", "atan2", "copysign", "remainder", "where")

# NumPy constants -> their value as a Python float literal (a float mixes with every library's arrays).
CONSTANTS = {"e": repr(float(sp.E)), "pi": repr(float(sp.pi)), "euler_gamma": repr(float(sp.EulerGamma)),
             "golden_ratio": repr(float(sp.GoldenRatio)), "inf": "float('inf')", "nan": "float('nan')"}


class XPPrinter(CodePrinter):
    """``CodePrinter`` for the namespace ``xp``; ``special`` collects the ``xsp`` names used."""

    def __init__(self, names: dict):
        super().__init__(names)
        self.special = set()  # names called on xsp (scipy.special's spelling)

    def _module_format(self, fqn, register=True):
        head, _, name = fqn.rpartition(".")
        if head in ("numpy", "scipy.constants") and name in CONSTANTS:
            return CONSTANTS[name]
        if head == "numpy":
            name = RENAMED.get(name, name)
            return "_" + name if name in BINARY else "xp." + name
        if head == "scipy.special":
            self.special.add(name)
            return "xsp." + name
        if head in ("math", "functools"):
            raise UnsupportedError("%s has no array-library implementation symgrad knows; rewrite it with "
                                   "elementary functions" % name)
        raise UnsupportedError("%s has no array-API spelling symgrad knows" % fqn)

    # ---- constants: a number, never a call on a Python number (xp.exp(2) needs an array) -----
    def _print(self, expr, **kwargs):
        if isinstance(expr, sp.Expr) and not expr.is_Atom and not expr.free_symbols:
            try:
                return repr(float(expr))
            except (TypeError, ValueError):
                pass
        return super()._print(expr, **kwargs)

    def _print_Function(self, expr):
        imp = getattr(expr.func, "_imp_", None)
        if callable(imp):
            raise UnsupportedError("%s has only a Python implementation (_imp_), which works on NumPy arrays; "
                                   "give the class a _numpycode method to run it on other array libraries"
                                   % expr.func)
        return super()._print_Function(expr)

    def _print_Abs(self, expr):
        return "xp.abs(%s)" % self._print(expr.args[0])

    def _print_Heaviside(self, expr):
        h0 = expr.args[1] if len(expr.args) > 1 else sp.S.Half
        x = self._print(expr.args[0])
        return "_where(%s > 0, 1.0, _where(%s < 0, 0.0, %s))" % (x, x, self._print(sp.Float(h0)))

    def _print_Relational(self, expr):
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[expr.rel_op]
        return "(%s %s %s)" % (self._print(expr.lhs), op, self._print(expr.rhs))

    def _logical(self, fn, args):
        out = self._print(args[-1])
        for a in reversed(args[:-1]):
            out = "%s(%s, %s)" % (fn, self._print(a), out)
        return out

    def _print_And(self, expr):
        return self._logical("xp.logical_and", expr.args)

    def _print_Or(self, expr):
        return self._logical("xp.logical_or", expr.args)

    def _print_Not(self, expr):
        return "xp.logical_not(%s)" % self._print(expr.args[0])

    def _print_BooleanTrue(self, expr):
        return "True"

    def _print_BooleanFalse(self, expr):
        return "False"

    def _print_Piecewise(self, expr):
        pieces = [(sp.Float(p.expr) if p.expr.is_Integer else p.expr, p.cond) for p in expr.args]
        if pieces[-1][1] != sp.true:
            pieces.append((sp.nan, sp.true))  # NumPy's np.select default
        out = self._print(pieces[-1][0])
        for value, cond in reversed(pieces[:-1]):
            out = "_where(%s, %s, %s)" % (self._print(cond), self._print(value), out)
        return out

    def _print_Pow(self, expr, rational=False):
        b, e = expr.as_base_exp()
        if e == sp.Rational(1, 2):
            return "xp.sqrt(%s)" % self._print(b)
        if e == sp.Rational(1, 3):  # np.cbrt is not in the standard; a real cube root for every sign
            x = self._print(b)
            return "(xp.sign(%s)*xp.abs(%s)**(1/3))" % (x, x)
        if b.is_Number and not e.is_Number:  # 2**x: a Python number to an array power
            return "%s**%s" % (repr(float(b)), self.parenthesize(e, sp.printing.precedence.PRECEDENCE["Pow"]))
        return super()._print_Pow(expr, rational)

    def _print_exp2(self, expr):
        return "2.0**%s" % self.parenthesize(expr.args[0], sp.printing.precedence.PRECEDENCE["Pow"])

    # ---- the matrix operations of symgrad.ops_matrix ---------------------------------------
    def _print_bcast_rows(self, e):
        b = self._print(e.args[0])
        return "xp.broadcast_to(%s, (%s, %s.shape[1]))" % (b, self._print(e.args[1]), b)

    def _print_bcast_cols(self, e):
        a = self._print(e.args[0])
        return "xp.broadcast_to(%s, (%s.shape[0], %s))" % (a, a, self._print(e.args[1]))

    def _print_colsum(self, e):
        return "xp.sum(%s, axis=0, keepdims=True)" % self._print(e.args[0])

    def _print_rowsum(self, e):
        return "xp.sum(%s, axis=1, keepdims=True)" % self._print(e.args[0])

    def _print_sumall(self, e):
        return "xp.sum(%s)" % self._print(e.args[0])

    def _print_fill(self, e):
        g, r, c = (self._print(a) for a in e.args)
        return "_fill(%s, %s, %s)" % (g, r, c)

    def _print_trace(self, e):
        self.helpers.add("_trace")
        return "_trace(%s)" % self._print(e.args[0])

    def _print_frob(self, e):
        return "xp.sum(%s * %s)" % tuple(self._operand(a) for a in e.args)

    def _print_eye(self, e):
        return "xp.eye(%s)" % self._print(e.args[0])

    def _print_ones(self, e):
        return "xp.ones((%s, %s))" % tuple(self._print(a) for a in e.args)

    def _print_zeros(self, e):
        return "xp.zeros((%s, %s))" % tuple(self._print(a) for a in e.args)


def xp_code(expr, names: dict) -> str:
    """The array-API source of ``expr`` with symbols renamed by ``names``."""
    return XPPrinter(names).doprint(expr)
