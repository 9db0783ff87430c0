"""check_grads(order=2): a wrong second derivative is caught; right ones pass (scalar and network)."""

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.check import GradientMismatch
from symgrad.check2 import check_second

x, w, b = sp.symbols("x w b")


class bad_prime(sp.Function):
    """cos with a wrong derivative: d/dx = +sin (the truth is −sin)."""

    def fdiff(self, argindex=1):
        return sp.sin(self.args[0])

    def _numpycode(self, printer):
        return "%s(%s)" % (printer._module_format("numpy.cos"), printer._print(self.args[0]))


class my_sin(sp.Function):
    """sin whose first derivative is right (cos), but written as bad_prime, whose own is wrong."""

    def fdiff(self, argindex=1):
        return bad_prime(self.args[0])

    def _numpycode(self, printer):
        return "%s(%s)" % (printer._module_format("numpy.sin"), printer._print(self.args[0]))


def test_a_wrong_second_derivative_is_caught_and_the_functions_named():
    e = my_sin(w * x)
    sg.check_grads(e, wrt=[w], at={x: 0.7, w: 0.3})  # first order is right
    with pytest.raises(GradientMismatch, match="central differences of the gradient") as info:
        check_second(e, wrt=[w], at={x: 0.7, w: 0.3})
    assert "my_sin" in str(info.value) and "not independent" in str(info.value)


@pytest.mark.parametrize("expr, at", [
    (sp.exp(w * x + b) * sp.tanh(b), {x: 0.4, w: 0.3, b: -0.2}),
    (sp.log(1 + sp.exp(-w * x)) + w**4 * b**2, {x: np.array([0.5, -1.0, 2.0]), w: 0.3, b: 0.7}),
    (sg.sigmoid(w * x + b) ** 2, {x: np.array([0.5, 1.5]), w: 2.0, b: 0.1}),
])
def test_right_second_derivatives_pass(expr, at):
    check_second(expr, wrt=[w, b], at=at)


def test_network_second_derivatives_pass():
    net = sg.nn.mlp([3, 4, 2], activation="tanh", loss="softmax_cross_entropy")
    rng = np.random.default_rng(0)
    at = {"X": rng.normal(size=(5, 3)), "Y": np.eye(2)[rng.integers(0, 2, 5)], **sg.nn.init_params(net, seed=2)}
    check_second(net.loss, wrt=net.params, at=at, args=[net.inputs, net.targets])


def test_check_grads_order_2_runs_the_second_order_checks():
    sg.check_grads(sp.exp(w * x) * b**2, wrt=[w, b], at={x: 0.4, w: 0.3, b: -0.2}, order=2)
    with pytest.raises(GradientMismatch, match="second derivatives disagree"):
        sg.check_grads(my_sin(w * x), wrt=[w], at={x: 0.7, w: 0.3}, order=2)
