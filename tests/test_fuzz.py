"""Property-based fuzzing: random expressions (shared subexpressions, safe domains) compiled with
rewrites and guards on, checked against sympy.diff, finite differences and forward/reverse."""

import numpy as np
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
