"""A named catalogue of test expressions, each with parameters and a safe point of its domain.

Other tests import it (``from catalogue import CATALOGUE``) and parametrize over the names,
as Tangent runs its catalogue of test functions through every mode. A point is "safe" when
it is inside the function's domain and away from kinks and ties (|x| at 0, Max at a tie):
the convention there is tested with the robustness rules, not here.

Every elementary function SymPy and NumPy share appears at least once, together with
symgrad's activations, shared subexpressions, several parameters, batched inputs and the
worked examples of the lecture notes (``lecture_*``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from symgrad.functions import leaky_relu, relu, sigmoid, softplus

__all__ = ["Case", "CATALOGUE", "NAMES", "BATCH", "params"]

x, y, z, w, b, a, c, t = sp.symbols("x y z w b a c t")
x1, x2, w1, w2, w0 = sp.symbols("x1 x2 w1 w2 w0")

_rng = np.random.default_rng(20240601)
BATCH = 7
#: batched inputs: x in (0.5, 1.5) so logs, roots and fractional powers stay defined
XS = _rng.uniform(0.5, 1.5, BATCH)
YS = (_rng.uniform(size=BATCH) > 0.5).astype(float)


@dataclass(frozen=True)
class Case:
    """One catalogue entry: ``expr`` differentiated w.r.t. ``wrt`` at the point ``at``."""

    name: str
    expr: sp.Expr
    wrt: tuple
    at: dict
    args: tuple | None = None
    needs_scipy: bool = False
    tags: tuple = field(default=())
    known_bug: str = ""  # non-empty: a core bug makes this case fail (tests mark it xfail, strict)

    @property
    def values(self) -> dict:
        """``at`` keyed by symbol name, as ``f(**values)`` wants it."""
        return {s.name: v for s, v in self.at.items()}


def _case(name, expr, wrt, at, **kw):
    wrt = tuple(wrt) if isinstance(wrt, (list, tuple)) else (wrt,)
    return Case(name, expr, wrt, at, **kw)


_CASES = [
    # elementary functions, one parameter, scalar point
    _case("exp", sp.exp(w * x), w, {x: 0.7, w: 0.3}),
    _case("log", sp.log(w * x), w, {x: 0.7, w: 1.3}),
    _case("sqrt", sp.sqrt(w * x + 1), w, {x: 0.7, w: 1.3}),
    _case("square", (w * x - 1) ** 2, w, {x: 0.7, w: 0.3}),
    _case("cube", (w + x) ** 3, w, {x: 0.7, w: -0.3}),
    _case("reciprocal", 1 / (w + x), w, {x: 0.7, w: 0.3}),
    _case("inverse_square", (w + x) ** -2, w, {x: 0.7, w: 0.3}),
    _case("inverse_cube", (w * x + 2) ** -3, w, {x: 0.7, w: 0.3}),
    _case("power_three_halves", (w * x) ** sp.Rational(3, 2), w, {x: 0.7, w: 1.3}),
    _case("power_one_third", (w + x) ** sp.Rational(1, 3), w, {x: 0.7, w: 1.3}),
    _case("power_minus_half", (w + x) ** sp.Rational(-1, 2), w, {x: 0.7, w: 1.3}),
    _case("power_float", (w + x) ** 2.5, w, {x: 0.7, w: 1.3}),
    _case("power_variable_exponent", x ** w, w, {x: 1.7, w: 0.6}),
    _case("power_variable_base_and_exponent", w ** w, w, {w: 1.4}),
    _case("two_to_the_w", 2 ** (w * x), w, {x: 0.7, w: 0.3}),
    _case("sin", sp.sin(w * x), w, {x: 0.7, w: 1.3}),
    _case("cos", sp.cos(w * x), w, {x: 0.7, w: 1.3}),
    _case("tan", sp.tan(w * x), w, {x: 0.7, w: 1.3}),
    _case("asin", sp.asin(w * x), w, {x: 0.7, w: 0.6}),
    _case("acos", sp.acos(w * x), w, {x: 0.7, w: 0.6}),
    _case("atan", sp.atan(w * x), w, {x: 0.7, w: 1.3}),
    _case("atan2", sp.atan2(w, x), [w, x], {x: -0.7, w: 1.3}),
    _case("sinh", sp.sinh(w * x), w, {x: 0.7, w: 1.3}),
    _case("cosh", sp.cosh(w * x), w, {x: 0.7, w: 1.3}),
    _case("tanh", sp.tanh(w * x), w, {x: 0.7, w: 1.3}),
    _case("asinh", sp.asinh(w * x), w, {x: 0.7, w: 1.3}),
    _case("acosh", sp.acosh(w * x), w, {x: 0.7, w: 2.3}),
    _case("atanh", sp.atanh(w * x), w, {x: 0.7, w: 0.6}),
    _case("erf", sp.erf(w * x), w, {x: 0.7, w: 1.3}, needs_scipy=True),
    _case("erfc", sp.erfc(w * x), w, {x: 0.7, w: 1.3}, needs_scipy=True),
    _case("abs", sp.Abs(w * x - 1), w, {x: 0.7, w: 0.3}),
    _case("abs_positive_side", sp.Abs(w - x) * w, w, {x: 0.7, w: 1.3}),
    _case("max", sp.Max(w * x, w ** 2), w, {x: 0.7, w: 0.3}),
    _case("max_three", sp.Max(w, x, w * x + 1), [w, x], {x: 0.7, w: 0.3}),
    _case("min", sp.Min(w * x, w ** 2), w, {x: 0.7, w: 0.3}),
    _case("piecewise", sp.Piecewise((w ** 2, w > x), (sp.sin(w), True)), w, {x: 0.7, w: 1.3}),
    _case("piecewise_else_branch", sp.Piecewise((w ** 2, w > x), (sp.sin(w), True)), w, {x: 0.7, w: 0.3}),
    _case("piecewise_three_branches", sp.Piecewise((w * x, w < -1), (w ** 3, w < 1), (sp.exp(w), True)),
          w, {x: 0.7, w: 0.5}),
    # symgrad's activations
    _case("sigmoid", sigmoid(w * x + b), [w, b], {x: 0.7, w: 1.3, b: -0.2}),
    _case("sigmoid_far_tail", sigmoid(w * x), w, {x: 3.0, w: 9.0}),
    _case("relu", relu(w * x - b), [w, b], {x: 0.7, w: 1.3, b: 0.2}),
    _case("relu_off", relu(w * x - b) + w, [w, b], {x: 0.7, w: 1.3, b: 2.0}),
    _case("leaky_relu", leaky_relu(w * x - b, a), [w, b, a], {x: 0.7, w: 1.3, b: 2.0, a: 0.1}),
    _case("leaky_relu_positive", leaky_relu(w * x - b, sp.Rational(1, 10)), [w, b], {x: 0.7, w: 1.3, b: 0.2}),
    _case("softplus", softplus(w * x + b), [w, b], {x: 0.7, w: 1.3, b: -0.2}),
    # structure: sharing, several parameters, constants
    _case("shared_subexpression", sp.sin(w * x) ** 2 + sp.sin(w * x) + sp.exp(sp.sin(w * x)), w, {x: 0.7, w: 1.3}),
    _case("shared_diamond", sp.exp(w * x) * sp.log(sp.exp(w * x) + 1) / (1 + sp.exp(w * x)), w, {x: 0.7, w: 0.3}),
    _case("several_parameters", sp.tanh(w1 * x1 + w2 * x2 + b) ** 2, [w1, w2, b],
          {x1: 0.1, x2: 0.7, w1: 0.8, w2: 0.2, b: 0.1}),
    _case("product_of_parameters", w1 * w2 * sp.sin(w1 + w2), [w1, w2], {w1: 0.4, w2: 1.1}),
    _case("constants", sp.pi * w ** 2 + sp.E * w + sp.Rational(1, 3), w, {w: 0.3}),
    _case("parameter_only", sp.cos(w) * w, w, {w: 0.9}),
    _case("wrt_input_too", sp.exp(-w * x ** 2), [w, x], {x: 0.7, w: 1.3}),
    _case("long_sum", sum(sp.sin(k * w) / k for k in range(1, 8)), w, {w: 0.4}),
    _case("deep_chain", sp.tanh(sp.tanh(sp.tanh(sp.tanh(w * x) + w) * w) + b), [w, b], {x: 0.7, w: 1.3, b: 0.1}),
    # batched inputs: scalar parameters summed over the batch, array parameters keep their shape
    _case("batch_logistic", -y * sp.log(sigmoid(w * x + b)) - (1 - y) * sp.log(1 - sigmoid(w * x + b)),
          [w, b], {x: XS, y: YS, w: 0.8, b: -0.1}, tags=("batch",)),
    _case("batch_squared_error", (w * x + b - y) ** 2, [w, b], {x: XS, y: YS, w: 0.8, b: -0.1}, tags=("batch",)),
    _case("batch_array_parameter", sp.log(1 + w ** 2 * x), w,
          {x: XS.reshape(BATCH, 1) * np.ones(3), w: np.array([0.3, -0.5, 1.2])}, tags=("batch",)),
    _case("batch_parameter_column", sp.sin(w * x + b), [w, b],
          {x: XS.reshape(BATCH, 1) * np.arange(1.0, 4.0), w: np.full((1, 3), 0.6), b: 0.2}, tags=("batch",)),
    # the lecture's worked examples
    _case("lecture_logistic_loss", -y * sp.log(1 / (1 + sp.exp(-w * x))), w, {x: 3.0, y: 1.0, w: 3.0},
          args=(x, y), tags=("lecture",)),
    _case("lecture_full_logistic_loss",
          -y * sp.log(1 / (1 + sp.exp(-w * x))) - (1 - y) * sp.log(1 - 1 / (1 + sp.exp(-w * x))),
          w, {x: 3.0, y: 0.0, w: 0.3}, args=(x, y), tags=("lecture",)),
    _case("lecture_one_neuron",
          -y * sp.log(sigmoid(w1 * x1 + w2 * x2 + b)) - (1 - y) * sp.log(1 - sigmoid(w1 * x1 + w2 * x2 + b)),
          [w1, w2, b], {x1: 0.1, x2: 0.7, y: 1.0, w1: 0.8, w2: 0.2, b: 0.1}, tags=("lecture",)),
    _case("lecture_h_of_x", (2 * (x + 1)) ** 2, x, {x: 2.0}, tags=("lecture",)),
    _case("lecture_square", x ** 2, x, {x: 3.0}, tags=("lecture",)),
    _case("lecture_linear_regression", (y - (w1 * x + w0)) ** 2, [w1, w0], {x: 2.0, y: 1.0, w1: 0.5, w0: 0.2},
          tags=("lecture",)),
    _case("lecture_two_layer_mse",
          (y - sigmoid(w2 * sigmoid(w1 * x + b) + w0)) ** 2, [w1, b, w2, w0],
          {x: 0.5, y: 1.0, w1: 0.3, b: -0.1, w2: 0.8, w0: 0.05}, tags=("lecture",)),
]

CATALOGUE: dict = {c.name: c for c in _CASES}
assert len(CATALOGUE) == len(_CASES), "catalogue names must be unique"
NAMES: list = list(CATALOGUE)


def params(names=None):
    """``pytest.param`` per catalogue name, known core bugs marked ``xfail(strict=True)``."""
    import pytest

    out = []
    for n in names or NAMES:
        bug = CATALOGUE[n].known_bug
        out.append(pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=bug)) if bug else n)
    return out
