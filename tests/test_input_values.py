"""Values bound to compiled functions: shapes that do not broadcast, numbers NumPy cannot read
by itself (huge ints, SymPy numbers, Fractions, Decimals), empty batches, user functions with
their own NumPy code. Accepted values are checked against float64 results computed here with
plain NumPy / math; refused ones must raise InputError naming the symbol (and the shapes)."""

import decimal
import fractions
import math

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.errors import InputError, UnsupportedError

x, y, w, b = sp.symbols("x y w b")


# ---- shapes that do not broadcast -----------------------------------------------------------

def test_arguments_that_do_not_broadcast_are_named_with_their_shapes():
    f = sg.compile(x * y * w, wrt=[w], args=[x, y])
    for call in (f, f.grad, f.value_and_grad, lambda **v: f.jvp({"w": 1.0}, **v)):
        with pytest.raises(InputError, match=r"x has shape \(3,\) and y has shape \(4,\), which do not broadcast") as e:
            call(x=np.ones(3), y=np.ones(4), w=1.0)
        assert "pass arrays of one batch shape" in str(e.value)


def test_a_parameter_that_does_not_broadcast_against_the_batch_is_named():
    f = sg.compile(w * x + b, wrt=[w, b], args=[x])
    with pytest.raises(InputError, match=r"parameter w has shape \(3,\), which does not broadcast against the batch "
                                         r"shape \(5,\) \(x: \(5,\)\)") as e:
        f.grad(x=np.ones(5), w=np.ones(3), b=0.0)
    assert "pass w as a number" in str(e.value)
    # a parameter that does broadcast is fine: per-sample parameters, summed to their shape
    xs, ws = np.arange(1.0, 6.0), np.full(5, 2.0)
    g = f.grad(x=xs, w=ws, b=0.0)
    np.testing.assert_array_equal(g["w"], xs)
    assert g["b"] == 5.0


def test_a_grid_of_two_arrays_still_broadcasts():
    f = sg.compile(x * y * w, wrt=[w], args=[x, y])
    xs, ys = np.array([1.0, 2.0, 3.0]), np.array([[1.0], [10.0]])
    assert f.grad(x=xs, y=ys, w=2.0)["w"] == float(np.sum(xs * ys))


def test_a_jvp_tangent_of_the_wrong_shape_is_named():
    f = sg.compile(sp.sin(w * x), wrt=[w], args=[x])
    xs = np.array([0.5, 1.0, 2.0])
    with pytest.raises(InputError, match=r"the tangent of 'w' has shape \(3,\) but 'w' has shape \(\); pass a tangent "
                                         r"shaped like its parameter"):
        f.jvp({"w": np.ones(3)}, x=xs, w=0.3)
    g = sg.compile(sp.sin(w * x), wrt=[w], args=[x])
    with pytest.raises(InputError, match=r"tangent of 'w' has shape \(2,\) but 'w' has shape \(3,\)"):
        g.jvp({"w": np.ones(2)}, x=xs, w=np.full(3, 0.3))
    # a number is the same direction in every entry of an array parameter
    _, dot = g.jvp({"w": 1.0}, x=xs, w=np.full(3, 0.3))
    np.testing.assert_allclose(dot, xs * np.cos(0.3 * xs), rtol=1e-15)


def test_a_scalar_symbol_of_a_matrix_expression_takes_a_number():
    X, W = sp.MatrixSymbol("X", 3, 2), sp.MatrixSymbol("W", 2, 1)
    f = sg.compile(sp.Trace(sp.OneMatrix(1, 3) * (b * (X * W))), wrt=[W, b], args=[X])
    with pytest.raises(InputError, match=r"b is a scalar symbol of this matrix expression, so it takes a number, but "
                                         r"its value has shape \(3,\)"):
        f.grad(X=np.ones((3, 2)), W=np.ones((2, 1)), b=np.ones(3))


# ---- integers beyond int64 and float range ----------------------------------------------------

def test_ints_beyond_int64_convert_to_float():
    f = sg.compile(w * x, wrt=[w], args=[x])
    assert f(x=2 ** 63, w=0.5) == float(2 ** 63) * 0.5
    assert f.grad(x=2 ** 64 + 1, w=0.5) == {"w": float(2 ** 64 + 1)}
    np.testing.assert_array_equal(f(x=[2 ** 70, 1, -(2 ** 65)], w=2.0),
                                  2.0 * np.array([float(2 ** 70), 1.0, -float(2 ** 65)]))
    assert f.grad(x=np.array([2 ** 64, 3], dtype=object), w=1.0) == {"w": float(2 ** 64) + 3.0}


@pytest.mark.parametrize("value", [10 ** 400, -(10 ** 400), [1.0, 10 ** 400], sp.Integer(10) ** 400,
                                   fractions.Fraction(10 ** 400, 3), decimal.Decimal("1e400"), sp.Float("1e400")])
def test_numbers_beyond_float_range_are_refused_by_name(value):
    f = sg.compile(w * x, wrt=[w], args=[x])
    for call in (f, f.grad, f.value_and_grad):
        with pytest.raises(InputError, match=r"value of 'x'.* does not fit in a float64"):
            call(x=value, w=1.0)


def test_a_huge_int_message_says_what_it_is():
    f = sg.compile(w * x, wrt=[w], args=[x])
    with pytest.raises(InputError, match=r"value of 'x': an integer of 401 digits \(about 1e400\) does not fit in a "
                                         r"float64"):
        f.grad(x=10 ** 400, w=1.0)


# ---- numbers NumPy cannot read by itself --------------------------------------------------------

@pytest.mark.parametrize("value, as_float", [
    (sp.Integer(3), 3.0), (sp.Rational(1, 3), 1 / 3), (sp.Float("0.1"), 0.1), (sp.pi, math.pi),
    (sp.sqrt(2), math.sqrt(2)), (sp.E, math.e), (sp.exp(-sp.Rational(1, 2)), math.exp(-0.5)),
    (fractions.Fraction(2, 7), 2 / 7), (decimal.Decimal("0.1"), 0.1), (decimal.Decimal(-3), -3.0)])
def test_exact_numbers_are_read_as_float64(value, as_float):
    f = sg.compile(sp.sin(w * x), wrt=[w], args=[x])
    wv = 0.7
    assert f(x=value, w=wv) == pytest.approx(math.sin(wv * as_float), rel=1e-15)
    assert f.grad(x=value, w=wv)["w"] == pytest.approx(as_float * math.cos(wv * as_float), rel=1e-15)
    v, g = f.value_and_grad(x=as_float, w=value)  # as a parameter too
    assert v == pytest.approx(math.sin(as_float * as_float), rel=1e-15)
    assert g["w"] == pytest.approx(as_float * math.cos(as_float * as_float), rel=1e-15)
    _, dot = f.jvp({"w": value}, x=2.0, w=wv)
    assert dot == pytest.approx(2.0 * math.cos(2 * wv) * as_float, rel=1e-15)


def test_lists_and_object_arrays_of_exact_numbers():
    f = sg.compile(w * x ** 2, wrt=[w], args=[x])
    values = [sp.Rational(1, 2), fractions.Fraction(3, 4), decimal.Decimal("1.5"), sp.sqrt(3), 2]
    floats = np.array([0.5, 0.75, 1.5, math.sqrt(3), 2.0])
    obj = np.array(values, dtype=object)
    before = obj.copy()
    for given in (values, obj, tuple(values)):
        np.testing.assert_allclose(f(x=given, w=2.0), 2.0 * floats ** 2, rtol=1e-15)
        assert f.grad(x=given, w=2.0)["w"] == pytest.approx(float(np.sum(floats ** 2)), rel=1e-15)
    assert all(a is c for a, c in zip(obj, before))  # the user's array is untouched
    # a SymPy Matrix of numbers as a matrix argument
    X, W = sp.MatrixSymbol("X", 2, 2), sp.MatrixSymbol("W", 2, 1)
    g = sg.compile(sp.Trace(sp.OneMatrix(1, 2) * (X * W)), wrt=[W], args=[X])
    Xs = sp.Matrix([[sp.Rational(1, 2), 1], [sp.pi, 2]])
    np.testing.assert_allclose(g.grad(X=Xs, W=np.ones((2, 1)))["W"], [[0.5 + math.pi], [3.0]], rtol=1e-15)


@pytest.mark.parametrize("value, text", [
    (1j, r"1j, a complex number"), (np.complex128(2), r"a complex number"), (np.array([1.0, 1j]), "a complex array"),
    (sp.I, r"I, which is not a real number"), (sp.sqrt(-2), r"which is not a real number"),
    (sp.zoo, "not a real number"), ([1.0, sp.I], r"at index \(1,\) is I, which is not a real number"),
    (y + 1, r"the expression y \+ 1, which still has the symbol\(s\) y"), ("1.0", "not a number"),
    (np.array([1.0, "a"], dtype=object), r"at index \(1,\) is 'a'"), (None, "not a number"),
    ([[1.0], [1.0, 2.0]], "ragged"), (sp.true, "not a number")])
def test_non_real_values_are_refused_by_name(value, text):
    f = sg.compile(w * x, wrt=[w], args=[x])
    for call in (f, f.grad):
        with pytest.raises(InputError, match=r"value of 'x'.*" + text):
            call(x=value, w=1.0)


@pytest.mark.parametrize("value", [sp.oo, sp.nan, decimal.Decimal("Infinity"), [sp.Rational(1, 2), sp.oo]])
def test_non_finite_exact_values_are_refused_like_nan(value):
    f = sg.compile(w * x, wrt=[w], args=[x])
    with pytest.raises(InputError, match=r"value of 'x' (contains nan or inf|is .*finite)"):
        f.grad(x=value, w=1.0)


def test_inputs_are_never_modified():
    f = sg.compile(sp.tanh(w * x) ** 2 * y, wrt=[w], args=[x, y])
    xs, ys = np.linspace(-1, 1, 7), np.linspace(0, 1, 7)
    ints = np.arange(7)
    keep = (xs.copy(), ys.copy(), ints.copy())
    lst = [fractions.Fraction(k, 3) for k in range(7)]
    lst_before = list(lst)
    f(x=xs, y=ys, w=0.4)
    f.grad(x=xs, y=ys, w=0.4)
    f.value_and_grad(x=ints, y=lst, w=0.4)
    f.jvp({"w": 1.0}, x=xs, y=ints, w=0.4)
    np.testing.assert_array_equal(xs, keep[0])
    np.testing.assert_array_equal(ys, keep[1])
    np.testing.assert_array_equal(ints, keep[2])
    assert lst == lst_before


# ---- empty batches -------------------------------------------------------------------------

def test_a_sum_over_an_empty_batch_is_zero_with_zero_gradients():
    f = sg.compile(sp.exp(w * x) + b * x, wrt=[w, b], args=[x])
    empty = np.array([])
    assert f(x=empty, w=1.0, b=2.0).shape == (0,)
    assert f.grad(x=empty, w=1.0, b=2.0) == {"w": 0.0, "b": 0.0}
    v, g = f.value_and_grad(x=empty, w=1.0, b=np.ones(1))
    assert v == 0.0 and g["w"] == 0.0
    np.testing.assert_array_equal(g["b"], np.zeros(1))  # shaped like its parameter
    value, dot = f.jvp({"w": 1.0}, x=empty, w=1.0, b=2.0)
    assert np.shape(value) == np.shape(dot) == (0,)


def test_a_mean_over_an_empty_batch_is_refused_by_name():
    f = sg.compile(sp.exp(w * x) * y, wrt=[w], args=[x, y], reduce="mean")
    for call in (f.grad, f.value_and_grad):
        with pytest.raises(InputError, match=r"reduce='mean' averages over the batch, but the batch is empty \(x has "
                                             r"shape \(0,\)\).*reduce='sum'"):
            call(x=np.array([]), y=1.0, w=1.0)
    assert f.grad(x=np.array([2.0]), y=1.0, w=1.0)["w"] == pytest.approx(2.0 * math.exp(2.0), rel=1e-15)


def test_a_network_loss_that_divides_by_an_empty_batch_is_refused_by_name():
    B = sp.Symbol("B", integer=True, positive=True)
    X, W, Y = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("W", 2, 1), sp.MatrixSymbol("Y", B, 1)
    R = X * W - Y
    mean = sg.compile(sp.Trace(R.T * R) / B, wrt=[W], args=[X, Y])
    for call in (mean.grad, mean.value_and_grad):
        with pytest.raises(InputError, match=r"the dimension B is 0 \(X has shape \(0, 2\)\), and this expression "
                                             r"divides by B"):
            call(X=np.zeros((0, 2)), Y=np.zeros((0, 1)), W=np.ones((2, 1)))
    total = sg.compile(sp.Trace(R.T * R), wrt=[W], args=[X, Y])
    v, g = total.value_and_grad(X=np.zeros((0, 2)), Y=np.zeros((0, 1)), W=np.ones((2, 1)))
    assert v == 0.0
    np.testing.assert_array_equal(g["W"], np.zeros((2, 1)))


# ---- user functions ------------------------------------------------------------------------

class numpy_exp(sp.Function):
    """exp with SymPy's own spelling of NumPy in its _numpycode."""

    def fdiff(self, argindex=1):
        return numpy_exp(self.args[0])

    def _numpycode(self, printer):
        return "numpy.exp(%s)" % printer._print(self.args[0])


class formatted_exp(sp.Function):
    """exp through the printer's module formatting (prints as np.exp)."""

    def fdiff(self, argindex=1):
        return formatted_exp(self.args[0])

    def _numpycode(self, printer):
        return "%s(%s)" % (printer._module_format("numpy.exp"), printer._print(self.args[0]))


@pytest.mark.parametrize("fn", [numpy_exp, formatted_exp])
def test_numpycode_may_spell_numpy_either_way(fn):
    f = sg.compile(fn(w * x) * y, wrt=[w], args=[x, y])
    xs, ys = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(f(x=xs, y=ys, w=0.3), ys * np.exp(0.3 * xs), rtol=1e-15)
    assert f.grad(x=xs, y=ys, w=0.3)["w"] == pytest.approx(float(np.sum(ys * xs * np.exp(0.3 * xs))), rel=1e-14)
    _, dot = f.jvp({"w": 1.0}, x=xs, y=ys, w=0.3)
    np.testing.assert_allclose(dot, ys * xs * np.exp(0.3 * xs), rtol=1e-14)
    assert f.grad(x=0.5, y=1.0, w=0.3)["w"] == pytest.approx(0.5 * math.exp(0.15), rel=1e-15)


class only_fdiff(sp.Function):
    def fdiff(self, argindex=1):
        return 2 * self.args[0]


def test_a_function_without_numpy_code_is_refused_at_compile_time_by_name():
    with pytest.raises(UnsupportedError, match=r"no NumPy code known for the function only_fdiff; give the class a "
                                               r"NumPy implementation: a method _numpycode\(self, printer\)"):
        sg.compile(only_fdiff(w * x), wrt=[w])


class scalar_impl(sp.Function):
    """A Python implementation for numbers only (math.exp); its derivative in SymPy terms."""

    _imp_ = staticmethod(math.exp)

    def fdiff(self, argindex=1):
        return sp.exp(self.args[0])


class array_impl(sp.Function):
    """A Python implementation that takes arrays."""

    _imp_ = staticmethod(lambda a: a ** 3)

    def fdiff(self, argindex=1):
        return 3 * self.args[0] ** 2


def test_a_function_with_a_python_implementation_runs_it():
    xs = np.array([0.5, -1.0, 2.0])
    f = sg.compile(scalar_impl(w * x), wrt=[w], args=[x])
    np.testing.assert_allclose(f(x=xs, w=0.3), np.exp(0.3 * xs), rtol=1e-15)
    assert f.grad(x=xs, w=0.3)["w"] == pytest.approx(float(np.sum(xs * np.exp(0.3 * xs))), rel=1e-14)
    assert f(x=2.0, w=0.3) == pytest.approx(math.exp(0.6), rel=1e-15)
    g = sg.compile(array_impl(w * x) + w, wrt=[w], args=[x])
    v, grads = g.value_and_grad(x=xs, w=0.3)
    assert v == pytest.approx(float(np.sum((0.3 * xs) ** 3 + 0.3)), rel=1e-14)
    assert grads["w"] == pytest.approx(float(np.sum(3 * 0.3 ** 2 * xs ** 3 + 1)), rel=1e-14)
    assert "_imp_scalar_impl(" in f.source and "bound when the module is compiled" in f.source
