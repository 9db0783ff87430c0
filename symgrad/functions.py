"""Named activation functions as SymPy Functions: derivative via fdiff, NumPy and LaTeX printing.

Each class evaluates itself on numbers (so exact tables show exact values), knows its
derivative (``fdiff``, used by ``sympy.diff`` and by symgrad's rule table) and prints
itself as numerically stable NumPy code.

>>> import sympy as sp
>>> x = sp.Symbol("x")
>>> sp.diff(sigmoid(x), x)
sigmoid(-x)*sigmoid(x)
>>> sigmoid(0)
1/2
"""

import sympy as sp
from mpmath.libmp import prec_to_dps
from sympy.core.logic import fuzzy_and
from sympy.codegen.cfunctions import expm1, log1p  # noqa: F401 - re-exported; print as np.log1p / np.expm1

# The derivative used at a kink, where the one-sided derivatives differ (see KINKS).
# One setting for every spelling: relu, leaky_relu, Abs, Max/Min (symgrad.rules) follow it.
KINK = "min-norm"
KINKS = {
    "min-norm": "the one-sided derivative closest to 0 (minimum-norm subgradient): "
                "relu'(0) = 0, leaky_relu'(0) = α, |x|'(0) = 0, as PyTorch",
    "mean": "the average of the two one-sided derivatives: relu'(0) = 1/2, leaky_relu'(0) = (1 + α)/2, |x|'(0) = 0",
    "right": "the derivative from the right: relu'(0) = 1, leaky_relu'(0) = 1, |x|'(0) = 1",
}


def at_kink(left, right):
    """The derivative symgrad uses where the one-sided derivatives ``left`` and ``right`` differ.

    Follows ``KINK``. A symbolic slope (leaky_relu's α) is taken to lie between 0 and 1.

    >>> at_kink(0, 1), at_kink(-1, 1), at_kink(sp.Rational(1, 10), 1)
    (0, 0, 1/10)
    """
    left, right = sp.sympify(left), sp.sympify(right)
    if KINK == "right":
        return right
    if KINK == "mean":
        return (left + right) / 2
    if KINK != "min-norm":
        raise ValueError("symgrad.functions.KINK is %r; use one of %s" % (KINK, ", ".join(KINKS)))
    if not (left.is_Number and right.is_Number):
        return left if not left.is_Number else right
    lo, hi = min(left, right), max(left, right)
    if lo <= 0 <= hi:
        return sp.S.Zero
    return lo if lo > 0 else hi


def _raised(latex: str, exp) -> str:
    """``latex`` raised to the LaTeX power ``exp`` (None: as it is)."""
    return latex if exp is None else r"\left(%s\right)^{%s}" % (latex, exp)


def _evalf_via(f, prec):
    """``f`` at its arguments' numeric values (relu(sin(1) - 2) where the sign is not known
    exactly): evaluated on Floats by the function's own ``eval``; None when not numeric."""
    args = [a._eval_evalf(prec) if not a.is_Number else a for a in f.args]
    if any(a is None or not a.is_Number for a in args):
        return None
    out = f.func(*args)
    return out if out.is_Number else out.evalf(prec_to_dps(prec))


class sigmoid(sp.Function):
    """Logistic sigmoid σ(x) = 1/(1 + exp(−x)); σ'(x) = σ(x)σ(−x) = σ(x)(1 − σ(x)).

    >>> import sympy as sp
    >>> sigmoid(sp.Integer(0)), float(sigmoid(sp.Integer(2)))
    (1/2, 0.8807970779778824)
    """

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return 1 / (1 + sp.exp(-x))

    def fdiff(self, argindex=1):
        # σ(x)·σ(−x), not σ(1 − σ): 1 − σ(x) rounds to 0 for x > 37 where the truth is e**-x
        return self * sigmoid(-self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _numpycode(self, printer):
        # 1/(1 + exp(-x)) keeps full relative precision in both tails; exp overflows to inf only
        # for x < -709, where 1/inf = 0 is the right value (compiled calls silence that warning).
        # exp(-logaddexp(0, -x)) is as accurate but several times slower.
        neg = -self.args[0]
        arg = printer._print(neg) if sp.count_ops(neg) <= sp.count_ops(self.args[0]) else "-(%s)" % printer._print(
            self.args[0])
        return "(1/(1 + {0}({1})))".format(printer._module_format("numpy.exp"), arg)

    def _latex(self, printer, exp=None):  # exp: SymPy prints f(x)**2 this way
        return _raised(r"\sigma\left(%s\right)" % printer._print(self.args[0]), exp)

    def _sympystr(self, printer):
        return "sigmoid(%s)" % printer._print(self.args[0])


class relu(sp.Function):
    """Rectified linear unit max(x, 0); by convention relu'(0) = 0 (as PyTorch).

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> relu(sp.Integer(-2)), relu(sp.Rational(3, 2)), sp.diff(relu(x), x)
    (0, 3/2, Heaviside(x, 0))
    """

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.Max(x, 0)
        if x.is_number and x.is_extended_real:  # relu(sin(1) - 2) = 0 exactly: the sign is known
            if x.is_nonnegative:
                return x
            if x.is_negative:
                return sp.S.Zero

    def _eval_evalf(self, prec):
        return _evalf_via(self, prec)

    def fdiff(self, argindex=1):
        return sp.Heaviside(self.args[0], at_kink(0, 1))

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return sp.Max(x, 0)

    def _eval_rewrite_as_Piecewise(self, x, **kwargs):
        return sp.Piecewise((x, x > 0), (0, True))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _numpycode(self, printer):
        return "{0}({1}, 0)".format(printer._module_format("numpy.maximum"), printer._print(self.args[0]))

    def _latex(self, printer, exp=None):  # exp: SymPy prints f(x)**2 this way
        return _raised(r"\operatorname{relu}\left(%s\right)" % printer._print(self.args[0]), exp)


class leaky_relu(sp.Function):
    """Leaky ReLU: x for x > 0, α·x otherwise; derivative 1 for x > 0 and α at and below 0.

    >>> import sympy as sp
    >>> x, a = sp.symbols("x alpha")
    >>> leaky_relu(sp.Integer(-2), sp.Rational(1, 10))
    -1/5
    >>> sp.diff(leaky_relu(x, a), x)
    Piecewise((1, x > 0), (alpha, True))
    """

    nargs = 2

    @classmethod
    def eval(cls, x, alpha):
        if x.is_Number and alpha.is_Number:
            return x if x > 0 else alpha * x
        if x.is_number and alpha.is_number and x.is_extended_real:  # a numeric argument of known sign
            if x.is_positive:
                return x
            if x.is_nonpositive:
                return alpha * x

    def _eval_evalf(self, prec):
        return _evalf_via(self, prec)

    def fdiff(self, argindex=1):
        x, alpha = self.args
        if argindex == 1:
            at0 = at_kink(alpha, 1)
            if at0 == alpha:
                return sp.Piecewise((1, x > 0), (alpha, True))
            return sp.Piecewise((1, x > 0), (alpha, x < 0), (at0, True))
        return sp.Piecewise((0, x > 0), (x, True))

    def _eval_rewrite_as_Piecewise(self, x, alpha, **kwargs):
        return sp.Piecewise((x, x > 0), (alpha * x, True))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _numpycode(self, printer):
        x, alpha = (printer._print(a) for a in self.args)
        return "{0}({1} > 0, {1}, ({2})*({1}))".format(printer._module_format("numpy.where"), x, alpha)

    def _latex(self, printer, exp=None):  # exp: SymPy prints f(x)**2 this way
        x, alpha = (printer._print(a) for a in self.args)
        return _raised(r"\operatorname{leaky\_relu}\left(%s, %s\right)" % (x, alpha), exp)


class softplus(sp.Function):
    """Softplus log(1 + exp(x)); its derivative is σ(x). Printed as the stable ``logaddexp(0, x)``.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> sp.diff(softplus(x), x)
    sigmoid(x)
    >>> softplus(sp.Integer(0))
    log(2)
    """

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.log(1 + sp.exp(x))

    def _eval_evalf(self, prec):
        return _evalf_via(self, prec)

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_log(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _numpycode(self, printer):
        # max(x, 0) + log1p(exp(-|x|)) is stable in both tails and much faster than np.logaddexp
        x = printer._print(self.args[0])
        return "({0}({1}, 0) + {2}({3}(-{4}({1}))))".format(
            printer._module_format("numpy.maximum"), x, printer._module_format("numpy.log1p"),
            printer._module_format("numpy.exp"), printer._module_format("numpy.abs"))

    def _latex(self, printer, exp=None):  # exp: SymPy prints f(x)**2 this way
        return _raised(r"\operatorname{softplus}\left(%s\right)" % printer._print(self.args[0]), exp)


class logsumexp(sp.Function):
    """log(exp(a1) + … + exp(an)), computed max-shifted so it never overflows; ∂/∂ai = exp(ai − out).

    The partial is the softmax weight of ai, in [0, 1]. Printed as nested ``np.logaddexp``,
    each of which is the max-shifted ``m + log1p(exp(-|a - b|))``.

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b")
    >>> sp.diff(logsumexp(a, b), a)
    exp(a - logsumexp(a, b))
    >>> logsumexp(sp.Integer(0), sp.Integer(0))
    log(2)
    """

    @classmethod
    def eval(cls, *args):
        if not args:
            raise TypeError("logsumexp needs at least one argument")
        if len(args) == 1:
            return args[0]
        if all(a.is_Number for a in args):
            return sp.log(sp.Add(*[sp.exp(a) for a in args]))

    def fdiff(self, argindex=1):
        return sp.exp(self.args[argindex - 1] - self)

    def _eval_rewrite_as_log(self, *args, **kwargs):
        return sp.log(sp.Add(*[sp.exp(a) for a in args]))

    def _eval_is_real(self):
        return fuzzy_and(a.is_real for a in self.args)

    def _numpycode(self, printer):
        fn = printer._module_format("numpy.logaddexp")
        out = printer._print(self.args[-1])
        for a in reversed(self.args[:-1]):
            out = "%s(%s, %s)" % (fn, printer._print(a), out)
        return out

    def _latex(self, printer, exp=None):  # exp: SymPy prints f(x)**2 this way
        return _raised(r"\operatorname{logsumexp}\left(%s\right)" % ", ".join(printer._print(a) for a in self.args), exp)


class hypot(sp.Function):
    """sqrt(x**2 + y**2) without overflow or underflow of the squares (NumPy's hypot).

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> hypot(sp.Integer(3), sp.Integer(4)), sp.diff(hypot(x, y), x)
    (5, x/hypot(x, y))
    """

    nargs = 2

    @classmethod
    def eval(cls, x, y):
        if x.is_Number and y.is_Number:
            return sp.sqrt(x ** 2 + y ** 2)

    def fdiff(self, argindex=1):
        if argindex not in (1, 2):
            raise sp.ArgumentIndexError(self, argindex)
        return self.args[argindex - 1] / self

    def _eval_rewrite_as_sqrt(self, x, y, **kwargs):
        return sp.sqrt(x ** 2 + y ** 2)

    def _eval_is_real(self):
        return fuzzy_and([self.args[0].is_real, self.args[1].is_real])

    def _numpycode(self, printer):
        return "%s(%s, %s)" % (printer._module_format("numpy.hypot"), *(printer._print(a) for a in self.args))

    def _latex(self, printer, exp=None):  # exp: SymPy prints f(x)**2 this way
        x, y = (printer._print(a) for a in self.args)
        return _raised(r"\sqrt{%s^{2} + %s^{2}}" % (x, y), exp)


class where(sp.Function):
    """``where(cond, a, safe)``: a where cond holds, else safe — symgrad's branch guard.

    Compiled code evaluates a node that only a Piecewise branch needs on ``where(taken, a,
    safe)`` instead of ``a``, so it never sees an argument outside its domain (see sweeps).

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> where(x > 0, x, 1).subs(x, -2), where(x > 0, x, 1).subs(x, 3)
    (1, 3)
    """

    nargs = 3

    def _eval_is_commutative(self):  # a number, whatever its condition (a Boolean) is
        return True

    @classmethod
    def eval(cls, cond, a, safe):
        if cond is sp.true:
            return a
        if cond is sp.false:
            return safe

    def fdiff(self, argindex=2):
        cond = self.args[0]
        if argindex == 2:
            return sp.Piecewise((1, cond), (0, True))
        if argindex == 3:
            return sp.Piecewise((0, cond), (1, True))
        raise sp.ArgumentIndexError(self, argindex)

    def _numpycode(self, printer):
        return "%s(%s, %s, %s)" % (printer._module_format("numpy.where"), *(printer._print(a) for a in self.args))

    def _latex(self, printer, exp=None):  # exp: SymPy prints f(x)**2 this way
        cond, a, safe = (printer._print(e) for e in self.args)
        return _raised(r"\begin{cases} %s & %s \\ %s & \text{otherwise} \end{cases}" % (a, cond, safe), exp)


ACTIVATIONS = {"sigmoid": sigmoid, "relu": relu, "leaky_relu": leaky_relu, "softplus": softplus}
