"""Named activation functions as SymPy Functions: derivative via fdiff, NumPy and LaTeX printing.

Each class evaluates itself on numbers (so exact tables show exact values), knows its
derivative (``fdiff``, used by ``sympy.diff`` and by symgrad's rule table) and prints
itself as numerically stable NumPy code.

>>> import sympy as sp
>>> x = sp.Symbol("x")
>>> sp.diff(sigmoid(x), x)
(1 - sigmoid(x))*sigmoid(x)
>>> sigmoid(0)
1/2
"""

import sympy as sp


class sigmoid(sp.Function):
    """Logistic sigmoid σ(x) = 1/(1 + exp(−x)); σ'(x) = σ(x)(1 − σ(x)).

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
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _numpycode(self, printer):
        # exp(-log(1 + exp(-x))) never overflows and keeps full relative precision in both tails.
        return "{0}(-{1}(0, -({2})))".format(
            printer._module_format("numpy.exp"),
            printer._module_format("numpy.logaddexp"),
            printer._print(self.args[0]),
        )

    def _latex(self, printer):
        return r"\sigma\left(%s\right)" % printer._print(self.args[0])

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

    def fdiff(self, argindex=1):
        return sp.Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return sp.Max(x, 0)

    def _eval_rewrite_as_Piecewise(self, x, **kwargs):
        return sp.Piecewise((x, x > 0), (0, True))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _numpycode(self, printer):
        return "{0}({1}, 0)".format(printer._module_format("numpy.maximum"), printer._print(self.args[0]))

    def _latex(self, printer):
        return r"\operatorname{relu}\left(%s\right)" % printer._print(self.args[0])


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

    def fdiff(self, argindex=1):
        x, alpha = self.args
        if argindex == 1:
            return sp.Piecewise((1, x > 0), (alpha, True))
        return sp.Piecewise((0, x > 0), (x, True))

    def _eval_rewrite_as_Piecewise(self, x, alpha, **kwargs):
        return sp.Piecewise((x, x > 0), (alpha * x, True))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _numpycode(self, printer):
        x, alpha = (printer._print(a) for a in self.args)
        return "{0}({1} > 0, {1}, ({2})*({1}))".format(printer._module_format("numpy.where"), x, alpha)

    def _latex(self, printer):
        x, alpha = (printer._print(a) for a in self.args)
        return r"\operatorname{leaky\_relu}\left(%s, %s\right)" % (x, alpha)


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

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_log(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _numpycode(self, printer):
        return "{0}(0, {1})".format(printer._module_format("numpy.logaddexp"), printer._print(self.args[0]))

    def _latex(self, printer):
        return r"\operatorname{softplus}\left(%s\right)" % printer._print(self.args[0])


ACTIVATIONS = {"sigmoid": sigmoid, "relu": relu, "leaky_relu": leaky_relu, "softplus": softplus}
