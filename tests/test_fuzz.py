"""Property-based fuzzing: random expressions (shared subexpressions, safe domains) compiled with
rewrites and guards on, checked against sympy.diff, finite differences and forward/reverse."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.functions import leaky_relu, sigmoid, softplus

x, w, y = sp.symbols("x w y")

# Each operation keeps values moderate for moderate inputs, so no reference overflows.
UNARY = [
    sp.sin, sp.cos, sp.tanh, sigmoid, softplus,
    lambda u: sp.exp(sp.tanh(u)),
    lambda u: sp.log(1 + u ** 2),                       # log1p rewrite
    lambda u: sp.sqrt(1 + u ** 2),
    lambda u: sp.log(1 + sp.exp(sp.sin(u))),            # softplus rewrite
    lambda u: 1 / (1 + sp.exp(-u)),                     # sigmoid rewrite
    lambda u: sp.log(1 / (1 + sp.exp(-u))),             # log-sigmoid rewrite
    lambda u: sp.exp(sp.sin(u) / 3) - 1,                # expm1 rewrite
    lambda u: sp.Piecewise((sp.sqrt(u), u > 0), (u / 2, True)),  # guarded branch
    lambda u: leaky_relu(u, sp.Rational(1, 5)),
]
BINARY = [
    lambda u, v: u + v,
    lambda u, v: u * v,
    lambda u, v: u - 2 * v,
    lambda u, v: u / (1 + v ** 2),
    lambda u, v: sp.log(sp.exp(sp.tanh(u)) + sp.exp(sp.tanh(v))),  # logsumexp rewrite
    lambda u, v: sp.log(1 - sigmoid(u - v)),                       # log(1 - σ) rewrite
]


@st.composite
def expressions(draw):
    """A pool grown step by step; later steps reuse earlier entries, so subexpressions are shared."""
    pool = [x, w, y]
    for _ in range(draw(st.integers(2, 7))):
        i = draw(st.integers(0, len(pool) - 1))
        if draw(st.booleans()):
            pool.append(draw(st.sampled_from(UNARY))(pool[i]))
        else:
            j = draw(st.integers(0, len(pool) - 1))
            pool.append(draw(st.sampled_from(BINARY))(pool[i], pool[j]))
    e = pool[-1]
    if not e.free_symbols & {w, y}:
        e = e + w * pool[len(pool) // 2]
    return e


VALUES = st.floats(-1.5, 1.5).filter(lambda v: abs(v) > 1e-3)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(expressions(), VALUES, VALUES, VALUES)
def test_compiled_gradients_match_sympy_diff(expr, xv, wv, yv):
    wrt = sorted(expr.free_symbols & {w, y}, key=lambda s: s.name)
    point = {x: xv, w: wv, y: yv}
    sg.check_grads(expr, wrt=wrt, at=point, rtol=1e-8, atol=1e-10, fd_rtol=1e-4)
    # A batch over x, parameters scalar: gradients summed over the batch.
    batch = {**point, x: np.array([xv, -xv / 2, 0.7])}
    sg.check_grads(expr, wrt=wrt, at=batch, rtol=1e-8, atol=1e-10, fd_rtol=1e-4)
    # Rewrites change nothing on moderate inputs.
    on = sg.compile(expr, wrt=wrt, args=[x])
    off = sg.compile(expr, wrt=wrt, args=[x], rewrite=False)
    vals = {s.name: batch[s] for s in [x, *wrt]}
    np.testing.assert_allclose(on(**vals), off(**vals), rtol=1e-11, atol=1e-12)


# ---- extensions: hostile names, extreme magnitudes, Piecewise branches ---------------------------

HOSTILE = ["a\n    __import__('os').system('echo pwned')\n    #", 'q"""', "\\N{x}", "x y", "lambda", "ξ1",
           "xi1_bar", "_sum_to", "np", "w'", "", "日本", "</script>", "#", "a\\"]


def _rename(expr, names):
    subs = {s: sp.Symbol(n) for s, n in zip([x, w, y], names)}
    return expr.xreplace(subs), subs


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(expressions(), st.lists(st.sampled_from(HOSTILE[:-5] + ["x" + h for h in HOSTILE[-5:]]), min_size=3,
                               max_size=3, unique=True), VALUES, VALUES, VALUES)
def test_hostile_names_change_nothing(expr, names, xv, wv, yv):
    hostile, subs = _rename(expr, names)
    if any(s.name == "" for s in subs.values()):
        return
    wrt = sorted(hostile.free_symbols & {subs[w], subs[y]}, key=lambda s: s.name)
    at = {subs[x]: xv, subs[w]: wv, subs[y]: yv}
    try:
        sg.check_grads(hostile, wrt=wrt, at=at, rtol=1e-8, atol=1e-10, fd_rtol=1e-4)
    except sg.InputError as e:  # a reserved name is refused by name, never run
        assert "reserved" in str(e) or "called" in str(e)


BIG = st.floats(-900, 900).filter(lambda v: abs(v) > 1)
STABLE = [  # (expression of u, its value is finite for every finite u)
    lambda u: sp.log(1 + sp.exp(u)),
    lambda u: sp.log(1 / (1 + sp.exp(-u))),
    lambda u: sp.exp(u) / (1 + sp.exp(u)),
    lambda u: sp.log(sp.cosh(u)),
    lambda u: sp.log(sp.exp(u) + sp.exp(-u / 2)),
    lambda u: 1 / (1 + sp.exp(-u)),
    lambda u: sigmoid(u) * (1 - sigmoid(u)),
]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.sampled_from(range(len(STABLE))), BIG, st.floats(0.5, 2.0))
def test_extreme_magnitudes_match_high_precision_sympy(k, u, scale):
    e = STABLE[k](w * x)
    f = sg.compile(e, wrt=[w], args=[x])
    point = {x: sp.Float(u, 900), w: sp.Float(scale, 900)}  # 1 + exp(-1800) needs ~800 digits
    want_v = float(e.xreplace(point).evalf(850))
    want_g = float(sp.diff(e, w).xreplace(point).evalf(850))
    v, g = f.value_and_grad(x=u, w=scale)
    assert np.isfinite(v) and np.isfinite(g["w"])
    assert v == pytest.approx(want_v, rel=1e-9, abs=1e-300)
    assert g["w"] == pytest.approx(want_g, rel=1e-7, abs=1e-12 * max(1.0, abs(u)))


DOMAIN = [sp.log, sp.sqrt, lambda u: 1 / u, lambda u: sp.acosh(1 + u), lambda u: sp.atan2(u, u - 1)]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.sampled_from(range(len(DOMAIN))), st.sampled_from(range(4)), st.floats(-2, 2).filter(lambda v: abs(v) > 1e-2),
       VALUES)
def test_untaken_piecewise_branches_never_poison(k, other, xv, wv):
    inner = DOMAIN[k](w * x)
    alt = [w * x, sp.sin(w * x), w**2 * x, sp.Integer(3)][other]
    e = sp.Piecewise((inner, w * x > 0), (alt, True))
    f = sg.compile(e, wrt=[w], args=[x])
    t = wv * xv
    expected_expr = inner if t > 0 else alt
    g = f.grad(x=xv, w=wv)["w"]
    want = float(sp.diff(expected_expr, w).subs({x: xv, w: wv}).evalf(30))
    assert np.isfinite(g) and g == pytest.approx(want, rel=1e-9, abs=1e-12)
    X = np.array([xv, -xv, 2 * xv])  # both branches in one batch
    gb = f.grad(x=X, w=wv)["w"]
    parts = [float(sp.diff(inner if wv * s > 0 else alt, w).subs({x: s, w: wv}).evalf(30)) for s in X]
    assert gb == pytest.approx(sum(parts), rel=1e-9, abs=1e-12)
