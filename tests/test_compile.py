"""symgrad.compile: every catalogue expression through both modes, against independent references.

References are computed here, not by symgrad: ``sympy.diff`` lambdified (exact), central
differences, and numbers worked out by hand from the formulas.
"""

import math
import os
import sys

import numpy as np
import pytest
import sympy as sp

import symgrad as sg

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib keeps tests/ off sys.path
from catalogue import CATALOGUE, XS, YS, params
from symgrad.errors import InputError
from symgrad.functions import sigmoid

try:
    import scipy.special  # noqa: F401
    HAVE_SCIPY = True
except ImportError:  # pragma: no cover
    HAVE_SCIPY = False

x, y, w, b = sp.symbols("x y w b")


def _compile(case):
    if case.needs_scipy and not HAVE_SCIPY:
        pytest.skip("needs scipy.special")
    return sg.compile(case.expr, wrt=list(case.wrt), args=case.args)


def _oracle(case, f):
    """{name: d(sum of expr)/d param} from sympy.diff lambdified, summed to the parameter's shape."""
    real = {s: sp.Symbol(s.name, real=True) for s in f.params}
    syms = [real[s] for s in f.params]
    vals = case.values
    out_shape = np.broadcast_shapes(*(np.shape(vals[s.name]) for s in case.at))
    ref = {}
    for p in case.wrt:
        d = sp.lambdify(syms, sp.diff(case.expr.xreplace(real), real[p]), modules=["scipy", "numpy"])
        full = np.broadcast_to(np.asarray(d(*[vals[s.name] for s in f.params]), float), out_shape)
        shape = np.shape(vals[p.name])
        lead = full.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and full.shape[lead + i] != 1)
        ref[p.name] = full.sum(axis=axes).reshape(shape) if axes else full.reshape(shape)
    return ref


@pytest.mark.parametrize("name", params())
def test_check_grads_passes_on_catalogue(name):
    case = CATALOGUE[name]
    f = _compile(case)
    assert sg.check_grads(case.expr, wrt=list(case.wrt), at=case.at, args=case.args, fn=f) is None


@pytest.mark.parametrize("name", params())
def test_reverse_mode_matches_sympy_diff(name):
    case = CATALOGUE[name]
    f = _compile(case)
    grads = f.grad(**case.values)
    value, grads2 = f.value_and_grad(**case.values)
    ref = _oracle(case, f)
    for p in case.wrt:
        assert np.shape(grads[p.name]) == np.shape(case.values[p.name])
        np.testing.assert_allclose(grads[p.name], ref[p.name], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads2[p.name], grads[p.name], rtol=1e-13, atol=1e-15)
    value_ref = sp.lambdify([s for s in f.params], case.expr, modules=["scipy", "numpy"])(*[case.values[s.name] for s in f.params])
    np.testing.assert_allclose(value, np.sum(value_ref), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", params())
def test_forward_mode_matches_central_differences(name):
    case = CATALOGUE[name]
    f = _compile(case)
    vals = case.values
    rng = np.random.default_rng(7)
    v = {p.name: (rng.standard_normal(np.shape(vals[p.name])) if np.ndim(vals[p.name]) else float(rng.standard_normal()))
         for p in case.wrt}
    value, dot = f.jvp(v, **vals)
    eps = 1e-6

    def shifted(s):
        return f(**{**vals, **{k: vals[k] + s * v[k] for k in v}})

    fd = (shifted(eps) - shifted(-eps)) / (2 * eps)
    np.testing.assert_allclose(value, f(**vals), rtol=1e-14)
    np.testing.assert_allclose(dot, fd, rtol=1e-5, atol=1e-7)
    # forward against reverse: sum of J v equals <grad, v>
    g = f.grad(**vals)
    np.testing.assert_allclose(np.sum(dot), sum(np.sum(g[k] * v[k]) for k in v), rtol=1e-10, atol=1e-12)


# ---- the lecture's numbers, recomputed by hand --------------------------------------------

def test_lecture_logistic_loss_value_and_gradient():
    f = sg.compile(-y * sp.log(1 / (1 + sp.exp(-w * x))), wrt=[w], args=[x, y])
    value, g = f.value_and_grad(x=3.0, y=1.0, w=3.0)
    assert math.isclose(value, math.log(1 + math.exp(-9.0)), rel_tol=1e-12)
    assert math.isclose(g["w"], -3.70183727959e-4, rel_tol=1e-11)
    assert math.isclose(g["w"], -3 * math.exp(-9) / (1 + math.exp(-9)), rel_tol=1e-13)


def test_lecture_one_neuron_logistic_regression():
    case = CATALOGUE["lecture_one_neuron"]
    f = sg.compile(case.expr, wrt=list(case.wrt))
    z = 0.8 * 0.1 + 0.2 * 0.7 + 0.1
    s = 1 / (1 + math.exp(-z))
    value, g = f.value_and_grad(**case.values)
    assert math.isclose(value, -math.log(s), rel_tol=1e-13)
    for name, expected in (("w1", (s - 1) * 0.1), ("w2", (s - 1) * 0.7), ("b", s - 1)):
        assert math.isclose(g[name], expected, rel_tol=1e-12), name


def test_lecture_h_of_x():
    f = sg.compile((2 * (x + 1)) ** 2, wrt=[x])
    assert f.value_and_grad(x=2.0) == (36.0, {"x": 24.0})
    assert f.jvp({"x": 1.0}, x=2.0) == (36.0, 24.0)


def test_full_logistic_loss_gradient_is_sigma_minus_y_times_x():
    s = 1 / (1 + sp.exp(-w * x))
    f = sg.compile(-y * sp.log(s) - (1 - y) * sp.log(1 - s), wrt=[w], args=[x, y])
    sig = 1 / (1 + np.exp(-0.4 * XS))
    np.testing.assert_allclose(f.grad(x=XS, y=YS, w=0.4)["w"], np.sum((sig - YS) * XS), rtol=1e-12)


# ---- shapes and reductions --------------------------------------------------------------

def test_scalar_parameter_with_batch_gives_a_float_summed_over_the_batch():
    f = sg.compile((w * x - y) ** 2, wrt=[w], args=[x, y])
    g = f.grad(x=XS, y=YS, w=0.5)["w"]
    assert isinstance(g, float)
    assert math.isclose(g, float(np.sum(2 * (0.5 * XS - YS) * XS)), rel_tol=1e-13)


def test_reduce_mean_divides_value_and_gradients_by_the_batch_size():
    e = (w * x - y) ** 2 + b
    fs = sg.compile(e, wrt=[w, b], args=[x, y])
    fm = sg.compile(e, wrt=[w, b], args=[x, y], reduce="mean")
    vs, gs = fs.value_and_grad(x=XS, y=YS, w=0.5, b=0.1)
    vm, gm = fm.value_and_grad(x=XS, y=YS, w=0.5, b=0.1)
    assert math.isclose(vm, vs / len(XS), rel_tol=1e-13)
    for k in gs:
        assert math.isclose(gm[k], gs[k] / len(XS), rel_tol=1e-13)
        assert math.isclose(fm.grad(x=XS, y=YS, w=0.5, b=0.1)[k], gm[k], rel_tol=1e-13)
    assert fm.grad(x=2.0, y=1.0, w=0.5, b=0.1) == fs.grad(x=2.0, y=1.0, w=0.5, b=0.1)


def test_parameter_that_only_a_constant_term_carries_is_summed_over_the_batch():
    # d/db of sum_i (x_i*w + b) is the batch size, though the adjoint of b is the number 1
    f = sg.compile(x * w + b, wrt=[w, b], args=[x])
    assert f.grad(x=XS, w=1.0, b=0.0) == {"w": pytest.approx(float(np.sum(XS))), "b": float(len(XS))}
    assert f.value_and_grad(x=XS, w=1.0, b=0.0)[1]["b"] == float(len(XS))


def test_array_parameters_keep_their_shape():
    wv = np.array([[0.3, -0.2, 0.5]])
    X = np.outer(XS, [1.0, 2.0, 3.0])
    f = sg.compile(sp.tanh(w * x), wrt=[w], args=[x])
    g = f.grad(x=X, w=wv)["w"]
    assert g.shape == (1, 3)
    np.testing.assert_allclose(g, np.sum((1 - np.tanh(wv * X) ** 2) * X, axis=0, keepdims=True), rtol=1e-12)
    assert f.grad(x=X, w=wv[0])["w"].shape == (3,)


def test_value_broadcasts_and_mixes_scalars_with_arrays():
    f = sg.compile(w * x + y, wrt=[w], args=[x, y])
    np.testing.assert_allclose(f(x=XS, y=1.0, w=2.0), 2 * XS + 1)
    np.testing.assert_allclose(f(x=XS[:, None], y=YS[None, :], w=2.0), 2 * XS[:, None] + YS[None, :])
    assert isinstance(f(x=1.0, y=2.0, w=3.0), float)
    assert f(1.0, 2.0, 3.0) == 5.0  # positional: args then wrt


def test_value_and_grad_agrees_with_value_and_grad_separately():
    case = CATALOGUE["batch_logistic"]
    f = sg.compile(case.expr, wrt=list(case.wrt), args=[x, y])
    value, grads = f.value_and_grad(**case.values)
    assert math.isclose(value, float(np.sum(f(**case.values))), rel_tol=1e-13)
    g = f.grad(**case.values)
    assert set(g) == set(grads) == {"w", "b"}
    for k in g:
        assert math.isclose(g[k], grads[k], rel_tol=1e-13)


def test_jvp_is_per_sample_and_linear_in_the_tangent():
    f = sg.compile(sp.sin(w * x) + b * x, wrt=[w, b], args=[x])
    value, dot = f.jvp({"w": 1.0, "b": 2.0}, x=XS, w=0.3, b=0.1)
    np.testing.assert_allclose(value, np.sin(0.3 * XS) + 0.1 * XS, rtol=1e-14)
    np.testing.assert_allclose(dot, np.cos(0.3 * XS) * XS + 2 * XS, rtol=1e-13)
    _, only_w = f.jvp({"w": 1.0}, x=XS, w=0.3, b=0.1)  # missing tangents are zero
    np.testing.assert_allclose(only_w, np.cos(0.3 * XS) * XS, rtol=1e-13)
    _, const = f.jvp({"b": 1.0}, x=2.0, w=0.3, b=0.1)
    assert const == 2.0


# ---- names: positional-only methods, awkward symbol names ---------------------------------

@pytest.mark.parametrize("pname", ["self", "tangents", "reduce", "args", "values", "np", "lambda", "xi3", "grad"])
def test_symbol_names_that_clash_with_python_or_method_parameters(pname):
    p = sp.Symbol(pname)
    f = sg.compile(sp.exp(p * x), wrt=[p], args=[x])
    vals = {pname: 0.5, "x": 2.0}
    assert math.isclose(f(**vals), math.exp(1.0))
    assert math.isclose(f.grad(**vals)[pname], 2 * math.exp(1.0))
    assert math.isclose(f.value_and_grad(**vals)[1][pname], 2 * math.exp(1.0))
    assert math.isclose(f.jvp({pname: 1.0}, **vals)[1], 2 * math.exp(1.0))


def test_name_that_is_not_an_identifier_is_reachable_through_a_dict():
    q = sp.Symbol("x_1'")
    f = sg.compile(q ** 3, wrt=[q])
    assert f.grad(**{"x_1'": 2.0}) == {"x_1'": 12.0}
    assert f.jvp({"x_1'": 1.0}, **{"x_1'": 2.0}) == (8.0, 12.0)
    assert "x_1_" in f.source


# ---- errors -------------------------------------------------------------------------------

def test_wrt_not_in_the_expression_gets_a_zero_gradient_of_its_shape():
    f = sg.compile(w * x, wrt=[w, b])  # as sympy.diff(w*x, b) == 0 and JAX say
    assert sp.diff(w * x, b) == 0
    g = f.grad(x=np.array([1.0, 2.0, 3.0]), w=2.0, b=np.ones((3,)))
    assert g["w"] == 6.0 and g["b"].shape == (3,) and not g["b"].any()
    _, jv = f.jvp({"b": np.ones(3)}, x=np.array([1.0, 2.0, 3.0]), w=2.0, b=np.ones(3))
    assert not np.any(jv)
    with pytest.raises(InputError, match=r"wrt names 'ww', which is not in the expression \(did you mean 'w'\?\)"):
        sg.compile(w * x, wrt=["ww"])


def test_missing_value_names_it():
    f = sg.compile(w * x, wrt=[w], args=[x])
    with pytest.raises(InputError, match=r"missing value for 'x'; pass x=\.\.\."):
        f.grad(w=1.0)


def test_unknown_name_gets_a_suggestion():
    f = sg.compile(w * x, wrt=[w], args=[x])
    with pytest.raises(InputError, match=r"unexpected value 'ww' \(did you mean 'w'\?\); this function takes x, w"):
        f(x=1.0, ww=2.0)


@pytest.mark.parametrize("bad", ["abc", None, {"a": 1}, [1, "b"]])
def test_non_numeric_value(bad):
    f = sg.compile(w * x, wrt=[w], args=[x])
    with pytest.raises(InputError, match=r"value of 'x' is .*not a number or numeric array"):
        f(x=bad, w=1.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), np.array([1.0, np.nan])])
def test_non_finite_value(bad):
    f = sg.compile(w * x, wrt=[w], args=[x])
    with pytest.raises(InputError, match=r"value of 'x' .*finite"):
        f.grad(x=bad, w=1.0)


def test_other_input_errors():
    with pytest.raises(InputError, match="wrt is empty"):
        sg.compile(w * x, wrt=[])
    with pytest.raises(InputError, match="in neither args nor wrt; add it to args"):
        sg.compile(w * x * y, wrt=[w], args=[x])
    with pytest.raises(InputError, match="both in args and in wrt"):
        sg.compile(w * x, wrt=[w], args=[x, w])
    with pytest.raises(InputError, match="reduce must be 'sum', 'mean' or None"):
        sg.compile(w * x, wrt=[w], reduce="max")
    f = sg.compile(w * x, wrt=[w], args=[x])
    with pytest.raises(InputError, match="tangent given for 'x', which is not a parameter"):
        f.jvp({"x": 1.0}, x=1.0, w=1.0)
    with pytest.raises(InputError, match="given twice"):
        f(1.0, x=1.0, w=2.0)


# ---- regressions: bugs found in the core and fixed

def test_power_with_the_same_variable_in_base_and_exponent():
    f = sg.compile(w ** w, wrt=[w])
    assert math.isclose(f.grad(w=1.4)["w"], 1.4 ** 1.4 * (math.log(1.4) + 1), rel_tol=1e-12)


def test_parameters_by_name_match_symbols_with_assumptions():
    wr, xr = sp.Symbol("w", real=True), sp.Symbol("x", positive=True)
    e = sp.sin(wr * xr)
    assert sg.compile(e, wrt=["w"]).grad(x=2.0, w=0.0)["w"] == 2.0
    assert sg.table(e, wrt="w", at={"x": 2, "w": 0}).gradient["w"] == 2
    sg.check_grads(e, wrt=["w"], at={"x": 2.0, "w": 0.3})
    with pytest.raises(sg.InputError, match=r"wrt w is not the expression's w: they differ in their assumptions"):
        sg.compile(e, wrt=[sp.Symbol("w")])


def test_a_5000_term_sum_compiles_and_is_right():
    # local partials of sums and products are read off, not sympy.diff'ed (n terms would cost n²),
    # and a long sum prints as sum((...)) so Python's parser does not hit its nesting limit
    n = 5000
    ws, xs = sp.symbols("w0:%d" % n), sp.symbols("x0:%d" % n)
    f = sg.compile(sp.tanh(sp.Add(*[a * b for a, b in zip(ws, xs)])), wrt=list(ws), args=list(xs))
    rng = np.random.default_rng(0)
    v = {s.name: float(rng.standard_normal()) * 0.02 for s in ws + xs}
    z = sum(v["w%d" % i] * v["x%d" % i] for i in range(n))
    g = f.grad(**v)
    assert g["w7"] == pytest.approx((1 - np.tanh(z) ** 2) * v["x7"], rel=1e-12)
