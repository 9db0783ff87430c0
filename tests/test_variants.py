"""The scalar path's specialised programs (symgrad.variants.generate_point / generate_batch).

A call whose inputs are all Python floats runs the point variant (math on floats); one whose
arguments are float64 arrays of one shape and whose parameters are float64 scalars runs the
batch variant (in-place temporaries, dot-product gradients). Both must give the general NumPy
program's numbers (to rounding), its NaN/inf results and its errors, and never change an input.
"""

import math
import os
import sys

import numpy as np
import pytest
import sympy as sp

import symgrad as sg

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib keeps tests/ off sys.path
from catalogue import CATALOGUE, NAMES  # noqa: E402
from symgrad.functions import sigmoid, softplus  # noqa: E402

x, y, w, b = sp.symbols("x y w b")
POINT = [n for n in NAMES if all(isinstance(v, float) for v in CATALOGUE[n].at.values())]


def _compiled(name):
    case = CATALOGUE[name]
    return sg.compile(case.expr, wrt=list(case.wrt), args=case.args)


def _general(f, values):
    """The general NumPy program's (value, grads) on the same values (0-d arrays skip both variants)."""
    zero_d = {k: np.array(v) for k, v in values.items()}
    return f(**zero_d), f.value_and_grad(**zero_d), f.grad(**zero_d)


def _close(a, b, rtol=1e-12):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-300)


@pytest.mark.parametrize("name", POINT)
def test_point_variant_gives_the_numpy_programs_numbers(name):
    f = _compiled(name)
    values = CATALOGUE[name].values
    value, (total, grads), only = _general(f, values)
    got = f(**values), f.value_and_grad(**values), f.grad(**values)
    _close(got[0], value)
    _close(got[1][0], total)
    for k in grads:
        _close(got[1][1][k], grads[k])
        _close(got[2][k], only[k])
        assert type(got[2][k]) is float and type(got[1][1][k]) is float
    assert type(got[0]) is float and type(got[1][0]) is float
    # positional calls take the same path
    pos = [values[n] for n in f.names]
    _close(f.grad(*pos)[f.wrt[0].name], only[f.wrt[0].name])


def test_point_variant_covers_the_elementary_functions():
    """Every catalogue function but SciPy's (erf, erfc differ from math's by a few ulp) has float code."""
    missing = [n for n in POINT if _compiled(n).variants["point"] is None]
    assert missing == ["erf", "erfc"], missing


@pytest.mark.parametrize("expr, values", [
    (sp.log(w * x), {"x": 0.0, "w": 1.0}),                     # math.log(0) raises; np.log gives -inf
    (sp.log(w * x), {"x": -1.0, "w": 1.0}),                    # nan
    (sp.exp(w * x), {"x": 1000.0, "w": 1.0}),                  # math.exp overflows; inf
    (1 / (w + x), {"x": 1.0, "w": -1.0}),                      # ZeroDivisionError; inf
    (sp.sqrt(w * x), {"x": -1.0, "w": 1.0}),                   # math.sqrt(-1) raises; nan
    ((w + x) ** sp.Rational(1, 3), {"x": -9.0, "w": 1.0}),     # Python's ** would give a complex number
    ((w * x) ** 2, {"x": 1e200, "w": 1e10}),                   # float ** overflows; inf
    (sp.Max(w * x * 1e300 * 1e300 - w * x * 1e300 * 1e300, 0), {"x": 1.0, "w": 1.0}),  # nan through Max
    (sp.atanh(w * x), {"x": 1.0, "w": 1.0}),                   # domain edge
    (sigmoid(w * x), {"x": -800.0, "w": 1.0}),                 # exp(800) overflows inside; sigmoid is 0
    (softplus(w * x), {"x": 800.0, "w": 1.0}),
    (sp.sin(w * x * 1e308 * 10), {"x": 1.0, "w": 1.0}),        # sin(inf): ValueError in math
])
def test_point_variant_falls_back_to_numpy_semantics(expr, values):
    """Where a math function raises, or a result is not finite, the user gets NumPy's answer."""
    f = sg.compile(expr, wrt=[w], args=[x], check_finite=False)
    zero_d = {k: np.array(v) for k, v in values.items()}
    for call in (f, f.grad, f.value_and_grad):
        np.testing.assert_equal(call(**values), call(**zero_d))


def test_point_variant_keeps_input_errors():
    f = sg.compile(sp.log(w * x), wrt=[w], args=[x])
    with pytest.raises(sg.InputError):
        f(x=float("nan"), w=1.0)
    with pytest.raises(sg.InputError):
        f.grad(x=float("inf"), w=1.0)
    with pytest.raises(sg.InputError):
        f.grad(x=1.0)
    with pytest.raises(sg.InputError):
        f.grad(x=1.0, w=1.0, z=2.0)


def test_point_variant_reads_ints_and_numpy_scalars_as_floats_and_float32_as_float32():
    f = sg.compile(sp.exp(w * x) ** 3, wrt=[w], args=[x])
    ref = f.grad(x=np.array(2.0), w=np.array(1.0))["w"]
    assert f.grad(x=2, w=1)["w"] == pytest.approx(ref, rel=1e-14)
    assert f.grad(x=np.float64(2.0), w=1.0)["w"] == pytest.approx(ref, rel=1e-14)
    g32 = f.grad(x=np.float32(2.0), w=np.float32(1.0))["w"]
    assert g32 == pytest.approx(ref, rel=1e-6)  # float32 arithmetic, as before
    with pytest.raises(sg.InputError):
        f.grad(x="2", w=1.0)
    assert f.grad(x=True, w=1.0)["w"] == f.grad(x=np.array(1.0), w=np.array(1.0))["w"]  # bool: the NumPy path


def test_w3_point_variant_matches_the_numpy_program():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    from w3model import tanh_chain

    loss, params, inputs = tanh_chain(6)
    f = sg.compile(loss, wrt=params, args=inputs)
    rng = np.random.default_rng(3)
    values = {s.name: float(v) for s, v in zip(inputs + params, rng.normal(size=len(inputs + params)) * 0.7)}
    got = f.grad(**values)
    ref = f.grad(**{k: np.array(v) for k, v in values.items()})
    for k in ref:
        assert got[k] == pytest.approx(ref[k], rel=1e-12, abs=1e-15)
    src = f.variants["point"].sources["grad"]
    assert "math.tanh(" in src and "np." not in src


def _batch_values(name, n=6, seed=0):
    """The catalogue point with every argument an array of n values near it, parameters floats."""
    case = CATALOGUE[name]
    rng = np.random.default_rng(seed)
    f = _compiled(name)
    out = {}
    for s in f.params:
        v = case.at[s]
        if s in f.args:
            out[s.name] = float(v) * (1 + 1e-3 * rng.uniform(-1, 1, n))
        else:
            out[s.name] = float(v)
    return f, out


WITH_DATA = [n for n in POINT if _compiled(n).variants["batch"] is not None]


def test_batch_variant_exists_wherever_an_argument_is_read():
    assert len(WITH_DATA) > 40 and "erf" in WITH_DATA  # SciPy functions too: it is NumPy code


@pytest.mark.parametrize("name", WITH_DATA)
def test_batch_variant_gives_the_general_programs_numbers_and_leaves_inputs_alone(name):
    f, values = _batch_values(name)
    snap = {k: np.copy(v) for k, v in values.items()}
    bound = f._bind(values=values, args=())
    batch = f.variants["batch"]
    assert f._batch_fn("grad", bound) is batch.functions["grad"]
    with np.errstate(all="ignore"):
        for kind in ("value", "reverse", "grad"):
            got, ref = batch.functions[kind](*bound), f.functions[kind](*bound)
            if kind == "reverse":
                np.testing.assert_allclose(got[0], ref[0], rtol=1e-13)
                got, ref = got[1], ref[1]
            np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(ref, dtype=float), rtol=1e-12,
                                       atol=1e-14)
    for k, v in values.items():
        np.testing.assert_array_equal(v, snap[k], err_msg="%s changed" % k)


def test_w1_batch_variant_is_in_place_with_a_dot_product():
    s = 1 / (1 + sp.exp(-w * x))
    f = sg.compile(-y * sp.log(s) - (1 - y) * sp.log(1 - s), wrt=[w], args=[x, y])
    src = f.variants["batch"].sources["grad"]
    assert "w_bar = float(np.vdot(x, xi1_bar))  # ∂ξ1/∂w, summed over the batch" in src
    assert "(in place)" in src and "np.exp(xi1_bar, out=xi1_bar)" in src
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=50), (rng.uniform(size=50) > 0.5).astype(float)
    Xs, Ys = X.copy(), Y.copy()
    g = f.grad(x=X, y=Y, w=0.3)["w"]
    p = 1 / (1 + np.exp(-0.3 * X))
    assert g == pytest.approx(float(np.sum((p - Y) * X)), rel=1e-12)
    np.testing.assert_array_equal(X, Xs)
    np.testing.assert_array_equal(Y, Ys)
    # other layouts run the general program, with the general program's numbers and dtypes
    assert f.grad(x=X, y=1.0, w=0.3)["w"] == pytest.approx(float(np.sum((p - 1) * X)), rel=1e-12)
    g32 = f.grad(x=X.astype(np.float32), y=Y.astype(np.float32), w=np.float32(0.3))["w"]
    assert g32 == pytest.approx(g, rel=1e-5)
    assert f.grad(x=X.reshape(5, 10), y=Y.reshape(5, 10), w=0.3)["w"] == pytest.approx(g, rel=1e-12)


def test_batch_variant_never_writes_into_integer_valued_temporaries():
    """np.where(x > 0, 1, 0) is an int array: no float result may be computed in its buffer."""
    step = sp.Piecewise((1, x > 0), (0, True))
    f = sg.compile(sp.exp(w * step) * x, wrt=[w], args=[x])
    X = np.array([-1.0, 0.5, 2.0])
    got = f.grad(x=X, w=0.7)["w"]
    assert got == pytest.approx(float(np.sum(X * (X > 0) * np.exp(0.7 * (X > 0)))), rel=1e-13)
