"""SymPy printer subclasses: NumPy right-hand sides for generated code, ξ text and LaTeX for tables.

>>> import sympy as sp
>>> x = sp.Symbol("x")
>>> numpy_code(1/x**2 + sp.exp(x), {x: "x"})
'np.exp(x) + 1/x**2'
"""

from __future__ import annotations

import re

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from .errors import UnsupportedError

__all__ = ["ArithmeticOrder", "CodePrinter", "UserFunction", "numpy_code", "text", "latex"]

try:  # scipy.special supplies erf, loggamma, ... when it is installed
    from sympy.printing.numpy import SciPyPrinter as _Base
    import scipy.special  # noqa: F401

    HAVE_SCIPY = True
except ImportError:  # pragma: no cover - depends on the environment
    _Base = NumPyPrinter
    HAVE_SCIPY = False


class ArithmeticOrder:
    """Products and sums printed for any Python code printer (NumPy's or plain floats').

    ``c·b**2`` prints as ``c*b*b``: Python multiplies left to right, so a small c meets the
    large b one factor at a time (-ḡ·out**2 at out = 1e300, ḡ = 1e-300 is -1e300, not -inf).
    ``a + b + c + …`` nests one level per term in Python's parser, which gives up past a few
    thousand, so a long sum is written as ``sum((...))`` (a flat tuple) instead.
    """

    def _print_Mul(self, expr):
        squares = [a for a in expr.args if a.is_Pow and a.exp == 2 and a.base.is_Symbol]
        others = [a for a in expr.args if a not in squares]
        if squares and others and not any(a.is_Pow and a.exp.is_negative for a in others):
            tail = "*".join("%s*%s" % ((self._print(q.base),) * 2) for q in squares)
            rest = sp.Mul(*others)
            if rest == -1:
                return "-" + tail
            if rest.is_Number:
                return "%s*%s" % (self.parenthesize(rest, 50), tail)
            return "%s*%s" % (super()._print_Mul(rest), tail)
        return super()._print_Mul(expr)

    def _print_Add(self, expr, order=None):
        if len(expr.args) > 64:
            return "sum((%s,))" % ", ".join(self._print(a) for a in expr.args)
        return super()._print_Add(expr, order=order)


class UserFunction:
    """A user's Python implementation of a SymPy function (its ``_imp_``), called by generated
    code on arrays: the implementation itself when it takes arrays (``lambda a: a**2``),
    element by element when it only takes numbers (``math.exp``). Results are float64."""

    def __init__(self, func, imp):
        self.func, self.imp = func, imp
        self._vectorized = None

    def __call__(self, *args):
        shape = np.broadcast_shapes(*(np.shape(a) for a in args))
        try:
            out = np.asarray(self.imp(*args), dtype=float)
            if out.shape != shape:
                out = None
        except Exception:  # noqa: BLE001 - a scalar-only implementation: call it per element below
            out = None
        if out is None:
            if self._vectorized is None:
                self._vectorized = np.vectorize(self.imp, otypes=[float])
            try:
                out = np.asarray(self._vectorized(*args), dtype=float)
            except Exception as e:  # noqa: BLE001 - the user's own code failed: say whose
                raise UnsupportedError("the Python implementation (_imp_) of %s failed on the values given: %s: %s"
                                       % (self.func, type(e).__name__, e)) from e
        return out if out.ndim else out[()]

    def __repr__(self):
        return "<implementation of %s>" % self.func


class CodePrinter(ArithmeticOrder, _Base):
    """NumPy printer with symgrad's names: every symbol is printed through ``names``.

    NumPy is ``np`` and scipy.special is ``scipy.special``; a function that needs SciPy when
    it is not installed raises UnsupportedError naming it.
    """

    def __init__(self, names: dict):
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False})
        self.names = names
        self.helpers = set()  # module-level helper functions the printed code calls

    # ---- the matrix operations of symgrad.ops_matrix, one method each ----------------------
    def _operand(self, e):
        """An operand of ``@`` or of an attribute: parenthesised unless it is a name or a call."""
        return self._print(e) if e.is_Symbol or isinstance(e, sp.Function) else "(%s)" % self._print(e)

    def _print_mm(self, e):
        return "(%s @ %s)" % (self._operand(e.args[0]), self._operand(e.args[1]))

    def _print_T(self, e):
        return "%s.T" % self._operand(e.args[0])

    def _print_bcast_rows(self, e):
        b = self._print(e.args[0])
        return "np.broadcast_to(%s, (%s, np.shape(%s)[1]))" % (b, self._print(e.args[1]), b)

    def _print_bcast_cols(self, e):
        a = self._print(e.args[0])
        return "np.broadcast_to(%s, (np.shape(%s)[0], %s))" % (a, a, self._print(e.args[1]))

    def _print_colsum(self, e):
        g = e.args[0]
        if g.is_Symbol:  # a row of ones through BLAS sums the rows faster than .sum(axis=0)
            name = self._print(g)
            return "(np.ones((1, %s.shape[0]), %s.dtype) @ %s)" % (name, name, name)
        return "np.sum(%s, axis=0, keepdims=True)" % self._print(g)

    def _print_rowsum(self, e):
        return "np.sum(%s, axis=1, keepdims=True)" % self._print(e.args[0])

    def _print_sumall(self, e):
        return "np.sum(%s)" % self._print(e.args[0])

    def _print_fill(self, e):
        return "np.broadcast_to(%s, (%s, %s))" % tuple(self._print(a) for a in e.args)

    def _print_trace(self, e):
        return "np.trace(%s)" % self._print(e.args[0])

    def _print_frob(self, e):
        return "np.vdot(%s, %s)" % tuple(self._print(a) for a in e.args)

    def _print_eye(self, e):
        return "np.eye(%s)" % self._print(e.args[0])

    def _print_ones(self, e):
        return "np.ones((%s, %s))" % tuple(self._print(a) for a in e.args)

    def _print_zeros(self, e):
        return "np.zeros((%s, %s))" % tuple(self._print(a) for a in e.args)

    def _print_lse_rows(self, e):
        self.helpers.add("_lse_rows")
        return "_lse_rows(%s)" % self._print(e.args[0])

    def _print_softmax_rows(self, e):
        self.helpers.add("_softmax_rows")
        return "_softmax_rows(%s)" % self._print(e.args[0])

    def _module_format(self, fqn, register=True):
        if fqn.startswith("math.") or fqn.startswith("functools."):
            raise UnsupportedError(
                "%s has no NumPy implementation; install scipy (pip install scipy) so symgrad can use "
                "scipy.special for it" % fqn.split(".")[-1])
        out = super()._module_format(fqn, register)
        return "np." + out[6:] if out.startswith("numpy.") else out

    def _print_Symbol(self, expr):
        try:
            return self.names[expr]
        except KeyError:
            raise UnsupportedError("internal: no variable name for %s" % sp.sstr(expr)) from None

    def _print_Pow(self, expr, rational=False):
        b, e = expr.as_base_exp()
        if e.is_Integer and e < 0:
            inv = sp.Pow(b, -e, evaluate=False) if e != -1 else b
            return "1/%s" % self.parenthesize(inv, sp.printing.precedence.PRECEDENCE["Mul"] + 1)
        return super()._print_Pow(expr, rational)

    def _print_Heaviside(self, expr):
        h0 = expr.args[1] if len(expr.args) > 1 else sp.S.Half
        return "%s(%s, %s)" % (self._module_format("numpy.heaviside"), self._print(expr.args[0]), self._print(h0))

    def _nested(self, fn, args):
        out = self._print(args[-1])
        for a in reversed(args[:-1]):
            out = "%s(%s, %s)" % (fn, self._print(a), out)
        return out

    def _print_Max(self, expr):
        return self._nested(self._module_format("numpy.maximum"), expr.args)

    def _print_Min(self, expr):
        return self._nested(self._module_format("numpy.minimum"), expr.args)

    def _print_Piecewise(self, expr):
        # integer branch values would make np.where return an integer array (a derivative that
        # is 0 or 1 per branch), which in-place float updates cannot write into: print floats
        if any(p.expr.is_Integer for p in expr.args):
            expr = sp.Piecewise(*[(sp.Float(p.expr) if p.expr.is_Integer else p.expr, p.cond) for p in expr.args],
                                evaluate=False)
        # Two branches, the last unconditional: np.where reads like the math; more use np.select.
        if len(expr.args) == 2 and expr.args[1].cond == sp.true:
            (a, cond), (b, _) = expr.args
            return "%s(%s, %s, %s)" % (self._module_format("numpy.where"), self._print(cond), self._print(a),
                                       self._print(b))
        return super()._print_Piecewise(expr)

    def _print_Function(self, expr):
        imp = getattr(expr.func, "_imp_", None)
        if callable(imp):  # sympy's implemented_function, or an _imp_ of the class: called on arrays
            return "%s(%s)" % (self._user_function(expr.func, imp), ", ".join(self._print(a) for a in expr.args))
        raise UnsupportedError(
            "no NumPy code known for the function %s; give the class a NumPy implementation: a method "
            "_numpycode(self, printer) returning source, e.g. return 'np.exp(%%s)' %% printer._print(self.args[0]), "
            "or an _imp_ staticmethod computing it on arrays (what sympy's implemented_function sets); or rewrite "
            "it with known functions" % expr.func)

    def _user_function(self, func, imp) -> str:
        """The module-level name bound to ``func``'s Python implementation (``user_functions``:
        name -> UserFunction, bound when the module is compiled)."""
        table = getattr(self.names, "user_functions", None)  # emit.Names: shared with assemble, which binds them
        if table is None:
            table = self.__dict__.setdefault("user_functions", {})
        for name, uf in table.items():
            if uf.func is func:
                return name
        stem = "_imp_" + re.sub(r"[^0-9A-Za-z_]", "_", func.__name__)
        taken = set(self.names.values()) if hasattr(self.names, "values") else set()
        name, k = stem, 1
        while name in table or name in taken:
            k += 1
            name = "%s_%d" % (stem, k)
        table[name] = UserFunction(func, imp)
        return name


def numpy_code(expr, names: dict) -> str:
    """The NumPy source of ``expr`` with symbols renamed by ``names``."""
    return CodePrinter(names).doprint(expr)


def text(expr) -> str:
    """Plain one-line text with ξ names, terms in their written order (``1 + ξ2``)."""
    return sp.sstr(expr, order="none")


def latex(expr) -> str:
    """LaTeX with ξ_k names."""
    return sp.latex(expr, order="none")
