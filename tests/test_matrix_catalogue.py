"""A named, seeded catalogue of matrix-level losses (networks as plain SymPy matrix expressions),
each run through every mode of ``symgrad.compile``: value, grad, value_and_grad and jvp.

References are independent of symgrad: values come from a small recursive evaluator over
explicit SymPy matrices in 30-digit arithmetic (`reference`, itself checked against NumPy
closed forms); derivatives from central differences of that reference along a seeded random
direction. Also checked: jvp == <grad, v> (the adjoint identity for a scalar loss), a missing
tangent counts as zero, gradients have their parameter's shape, and no call mutates its inputs.
"""

import functools
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

B = sp.Symbol("B", integer=True, positive=True)
alpha = sp.Symbol("alpha")
X, X2 = sp.MatrixSymbol("X", B, 3), sp.MatrixSymbol("X2", B, 3)
W, b = sp.MatrixSymbol("W", 3, 2), sp.MatrixSymbol("b", 1, 2)
Ws, V = sp.MatrixSymbol("Ws", 3, 3), sp.MatrixSymbol("V", 3, 3)
Y, Y3, u = sp.MatrixSymbol("Y", B, 2), sp.MatrixSymbol("Y3", B, 3), sp.MatrixSymbol("u", B, 1)
X4, Y4 = sp.MatrixSymbol("X4", 4, 3), sp.MatrixSymbol("Y4", 4, 4)          # concrete 4x4 for A + C.T
W1, W2 = sp.MatrixSymbol("W1", 3, 4), sp.MatrixSymbol("W2", 3, 4)
Z = X * W + sp.OneMatrix(B, 1) * b                                         # (B, 2) logits


def total(M):
    """Sum of all entries as a scalar: Trace(1 * M * 1)."""
    return sp.Trace(sp.OneMatrix(1, M.shape[0]) * M * sp.OneMatrix(M.shape[1], 1))


def sq(M):
    return sp.HadamardPower(M, 2)


@dataclass
class Case:
    expr: sp.Expr
    wrt: list
    args: list
    batch: int = 4
    positive: tuple = ()            # names drawn from U(0.5, 1.5) (sqrt, 1/x, log stay real)
    onehot: tuple = ()              # names drawn as one-hot rows
    fixed: dict = field(default_factory=dict)
    needs: str = ""                 # optional library the compiled code needs

    def values(self, seed):
        """Seeded float64 data: parameters at 0.4 scale, data at unit scale, scalars near 0.7."""
        rng, out = np.random.default_rng(seed), {}
        for s in list(self.args) + list(self.wrt):
            if s.name in self.fixed:
                out[s.name] = self.fixed[s.name]
            elif isinstance(s, sp.Symbol):
                out[s.name] = 0.6 + 0.2 * float(rng.random())
            else:
                shape = tuple(int(d.subs(B, self.batch)) for d in s.shape)
                if s.name in self.onehot:
                    out[s.name] = np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
                elif s.name in self.positive:
                    out[s.name] = rng.uniform(0.5, 1.5, shape)
                else:
                    out[s.name] = rng.standard_normal(shape) * (0.4 if s in self.wrt else 1.0)
        return out


def act(f, **kw):
    """total(f(Z)) for an elementwise activation f, wrt W and b."""
    return Case(total(Z.applyfunc(f)), [W, b], [X], **kw)


_mlp_tanh = sg.nn.mlp([3, 4, 2], activation="tanh", loss="softmax_cross_entropy")
_mlp_relu = sg.nn.mlp([3, 4, 2], activation="relu", loss="mse")
_R = X * V + (X * V * Ws).applyfunc(sp.tanh)                               # residual block

CATALOGUE = {
    "act_tanh": act(sp.tanh),
    "act_tanh_2t": act(lambda t: sp.tanh(2 * t)),
    "act_exp_neg": act(lambda t: sp.exp(-t)),
    "act_gauss": act(lambda t: sp.exp(-t**2)),
    "act_swish": act(lambda t: t * sg.sigmoid(t)),
    "act_sqrt_1p_sq": act(lambda t: sp.sqrt(1 + t**2)),
    "act_cauchy": act(lambda t: 1 / (1 + t**2)),
    "act_sigmoid_neg": act(lambda t: sg.sigmoid(-t)),
    "act_affine": act(lambda t: 2 * t + 1),
    "act_softplus_as_log": act(lambda t: sp.log(1 + sp.exp(t))),
    "act_relu": act(sg.relu),
    "act_softplus": act(sg.softplus),
    "act_erf": act(sp.erf, needs="scipy"),
    "act_loggamma": act(lambda t: sp.loggamma(1 + t**2), needs="scipy"),
    "alpha_in_tanh": Case(total(Z.applyfunc(lambda t: sp.tanh(alpha * t))), [W, b, alpha], [X]),
    "alpha_leaky_relu": Case(total(Z.applyfunc(lambda t: sg.leaky_relu(t, alpha))), [W, b, alpha], [X]),
    "hpow_sqrt_of_exp": Case(total(sp.HadamardPower(Z.applyfunc(sp.exp), sp.Rational(1, 2))), [W, b], [X]),
    "hpow_sqrt_positive": Case(total(sp.HadamardPower(X * W, sp.Rational(1, 2))), [W], [X], positive=("X", "W")),
    "hpow_square": Case(total(sq(Z)), [W, b], [X]),
    "hpow_inverse": Case(total(sp.HadamardPower(X * W, -1)), [W], [X], positive=("X", "W")),
    "hadamard_of_acts": Case(total(sp.HadamardProduct(Z.applyfunc(sp.tanh), Z.applyfunc(sg.sigmoid))), [W, b], [X]),
    "tanh_plus_transposed_tanh": Case(
        sp.Trace(Y4.T * ((X4 * W1).applyfunc(sp.tanh) + (X4 * W2).applyfunc(sp.tanh).T)), [W1, W2], [X4, Y4]),
    "tied_x_w_wt": Case(sp.Trace(Y3.T * X * W * W.T), [W], [X, Y3]),
    "tied_autoencoder": Case(total(sq((X * W).applyfunc(sp.tanh) * W.T - X)), [W], [X]),
    "residual": Case(sp.Trace((_R - Y3).T * (_R - Y3)) / B, [V, Ws], [X, Y3]),
    "matpow_w_w": Case(total((X * Ws * Ws).applyfunc(sp.tanh)), [Ws], [X]),
    "mse": Case(sp.Trace((Z - Y).T * (Z - Y)) / B, [W, b], [X, Y], batch=5),
    "softmax_xent_naive": Case((sp.Trace(sp.OneMatrix(1, B) * (Z.applyfunc(sp.exp) * sp.OneMatrix(2, 1))
                                         .applyfunc(sp.log)) - sp.Trace(Y.T * Z)) / B,
                               [W, b], [X, Y], batch=5, onehot=("Y",)),
    "nn_mlp_tanh_xent": Case(_mlp_tanh.loss, list(_mlp_tanh.params), [_mlp_tanh.inputs, _mlp_tanh.targets],
                             batch=5, onehot=("Y",)),
    "nn_mlp_relu_mse": Case(_mlp_relu.loss, list(_mlp_relu.params), [_mlp_relu.inputs, _mlp_relu.targets]),
    "log_of_trace": Case(sp.log(total(Z.applyfunc(sp.exp))), [W, b], [X]),
    "piecewise_alpha_pos": Case(sp.Piecewise((sp.Trace(Z.T * Z), alpha > 0), (2 * sp.Trace(Z.T * Z), True)),
                                [W, b], [X, alpha]),
    "piecewise_alpha_neg": Case(sp.Piecewise((sp.Trace(Z.T * Z), alpha > 0), (2 * sp.Trace(Z.T * Z), True)),
                                [W, b], [X, alpha], fixed={"alpha": -0.7}),
    "alpha_scales_xw": Case(total((alpha * X * W).applyfunc(sp.tanh)), [W, alpha], [X]),
    "sum_of_squares": Case(sp.Trace(W.T * W), [W], []),
    "row_sums": Case(sp.Trace(u.T * (X * W * sp.OneMatrix(2, 1)).applyfunc(sp.tanh)), [W], [X, u]),
    "column_sums": Case(sp.Trace((sp.OneMatrix(1, B) * X * W) * (sp.OneMatrix(1, B) * X * W).T), [W], [X]),
}
NAMES = sorted(CATALOGUE)

# ---------------------------------------------------------------------------- independent reference

DIGITS = 30


def reference(expr, vals, batch):
    """The value of ``expr`` on ``vals``, by explicit SymPy matrices in 30-digit arithmetic."""
    env = {k: (sp.ImmutableMatrix(np.atleast_2d(v).tolist()).applyfunc(lambda x: sp.Float(x, DIGITS))
               if np.ndim(v) else sp.Float(float(v), DIGITS)) for k, v in vals.items()}
    e = expr.subs(B, batch).xreplace({s: env[s.name] for s in expr.free_symbols
                                      if isinstance(s, sp.Symbol) and s.name in env})
    memo = {}

    def ev(e):
        if e in memo:
            return memo[e]
        if isinstance(e, sp.MatrixSymbol):
            r = env[e.name]
        elif isinstance(e, sp.OneMatrix):
            r = sp.ones(*e.shape)
        elif isinstance(e, sp.ZeroMatrix):
            r = sp.zeros(*e.shape)
        elif isinstance(e, sp.Identity):
            r = sp.eye(e.rows)
        elif isinstance(e, sp.MatAdd):
            r = functools.reduce(lambda p, q: p + q, map(ev, e.args))
        elif isinstance(e, sp.MatMul):
            r = functools.reduce(lambda p, q: p * q, map(ev, e.args))
        elif isinstance(e, sp.MatPow):
            r = ev(e.base) ** int(e.exp)
        elif isinstance(e, sp.Transpose):
            r = ev(e.arg).T
        elif isinstance(e, sp.Trace):
            r = ev(e.arg).trace()
        elif isinstance(e, sp.HadamardProduct):
            r = functools.reduce(lambda p, q: p.multiply_elementwise(q), map(ev, e.args))
        elif isinstance(e, sp.HadamardPower):
            r = ev(e.base).applyfunc(lambda x: x ** e.exp)
        elif isinstance(e, ElementwiseApplyFunction):
            r = ev(e.expr).applyfunc(e.function)
        elif isinstance(e, sp.MatrixBase) or not e.args:
            r = e
        else:
            r = e.func(*map(ev, e.args))
        memo[e] = r
        return r

    r = ev(e)
    return float(sp.N(r[0, 0] if isinstance(r, sp.MatrixBase) else r, DIGITS))


def reference_fd(case, vals, d, eps=1e-6):
    """Central difference of the reference value along direction ``d`` (parameters only)."""
    shifted = lambda s: {k: (v + s * eps * d[k] if k in d else v) for k, v in vals.items()}
    return (reference(case.expr, shifted(1), case.batch) - reference(case.expr, shifted(-1), case.batch)) / (2 * eps)


# ---------------------------------------------------------------------------- fixtures


@functools.lru_cache(maxsize=None)
def compiled(name):
    case = CATALOGUE[name]
    return sg.compile(case.expr, wrt=case.wrt, args=case.args)


def setup(name):
    case = CATALOGUE[name]
    if case.needs:
        pytest.importorskip(case.needs)
    seed = zlib.crc32(name.encode())
    vals = case.values(seed)
    rng = np.random.default_rng(seed + 1)
    d = {w.name: (float(rng.standard_normal()) if isinstance(w, sp.Symbol) else rng.standard_normal(vals[w.name].shape))
         for w in case.wrt}
    return case, compiled(name), vals, d


def dot(grads, d):
    return sum(float(np.sum(np.asarray(grads[k]) * d[k])) for k in d)


def test_reference_matches_numpy_closed_forms():
    rng = np.random.default_rng(0)
    v = {"X": rng.standard_normal((4, 3)), "W": rng.standard_normal((3, 2)) * 0.4,
         "b": rng.standard_normal((1, 2)) * 0.4, "alpha": 0.7}
    H = v["X"] @ v["W"] + v["b"]
    checks = [(total(Z.applyfunc(sp.tanh)), np.tanh(H).sum()),
              (total(Z.applyfunc(lambda t: sg.leaky_relu(t, alpha))), np.where(H > 0, H, 0.7 * H).sum()),
              (total(sp.HadamardPower(Z.applyfunc(sp.exp), sp.Rational(1, 2))), np.exp(H / 2).sum()),
              (total(sp.HadamardPower(Z.applyfunc(sp.exp), -1)), np.exp(-H).sum()),
              (total(sp.HadamardProduct(Z.applyfunc(sp.exp), Z)), (np.exp(H) * H).sum()),
              (sp.Trace(Z.applyfunc(sp.tanh).T * Z * (W.T * W) ** 2), np.trace(np.tanh(H).T @ H @ np.linalg.matrix_power(v["W"].T @ v["W"], 2))),
              (sp.log(sp.Trace(W.T * W)) * alpha, 0.7 * np.log(np.sum(v["W"] ** 2))),
              (sp.Piecewise((sp.Trace(Z.T * Z), alpha > 0), (0, True)) / B, np.sum(H * H) / 4)]
    for expr, expected in checks:
        assert reference(expr, v, 4) == pytest.approx(expected, rel=1e-12), expr


# ---------------------------------------------------------------------------- the catalogue in every mode


@pytest.mark.parametrize("name", NAMES)
def test_value_matches_reference(name):
    case, f, vals, d = setup(name)
    expected = reference(case.expr, vals, case.batch)
    assert f(**vals) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert f.value_and_grad(**vals)[0] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert f.jvp(d, **vals)[0] == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_reverse_matches_finite_differences(name):
    case, f, vals, d = setup(name)
    grads = f.grad(**vals)
    assert sorted(grads) == sorted(w.name for w in case.wrt)
    for k, g in grads.items():
        assert np.shape(g) == np.shape(vals[k]), k
    value, grads2 = f.value_and_grad(**vals)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=1e-12, atol=1e-15)
    assert dot(grads, d) == pytest.approx(reference_fd(case, vals, d), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_finite_differences_and_reverse(name):
    case, f, vals, d = setup(name)
    _, jv = f.jvp(d, **vals)
    assert np.ndim(jv) == 0
    assert jv == pytest.approx(reference_fd(case, vals, d), rel=1e-5, abs=1e-8)
    grads = f.grad(**vals)
    assert jv == pytest.approx(dot(grads, d), rel=1e-9, abs=1e-12)           # <1, J v> == <J^T 1, v>
    first = case.wrt[0].name                                                    # other tangents missing: zero
    assert f.jvp({first: d[first]}, **vals)[1] == pytest.approx(dot(grads, {first: d[first]}), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_no_call_mutates_its_inputs(name):
    case, f, vals, d = setup(name)
    keep = {k: np.copy(v) for k, v in vals.items()}
    keep_d = {k: np.copy(v) for k, v in d.items()}
    calls = [lambda: f(**vals), lambda: f.grad(**vals), lambda: f.value_and_grad(**vals), lambda: f.jvp(d, **vals)]
    for call in calls:
        call()
        for k in vals:
            assert np.array_equal(vals[k], keep[k]), k
        for k in d:
            assert np.array_equal(d[k], keep_d[k]), k + " tangent"


# ---------------------------------------------------------------------------- errors and edge cases


def test_wrong_shape_raises_input_error():
    case, f, vals, d = setup("act_tanh")
    with pytest.raises(sg.InputError, match="X"):
        f(**dict(vals, X=np.zeros((5, 4))))
    with pytest.raises(sg.InputError, match="X"):
        f.grad(**dict(vals, X=np.zeros((5, 4))))
    with pytest.raises(sg.InputError, match="X"):
        f.jvp(d, **dict(vals, X=np.zeros((5, 4))))


def test_parameter_absent_from_the_expression_gets_zero_gradient():
    U = sp.MatrixSymbol("U", 2, 3)
    f = sg.compile(total(Z.applyfunc(sp.tanh)), wrt=[W, b, U], args=[X])
    case, _, vals, d = setup("act_tanh")
    vals = dict(vals, U=np.ones((2, 3)))
    grads = f.grad(**vals)
    for g in (grads["U"], f.value_and_grad(**vals)[1]["U"]):
        assert np.shape(g) == (2, 3) and not np.any(g)
    assert dot(grads, d) == pytest.approx(reference_fd(case, vals, d), rel=1e-5, abs=1e-8)
    assert f.jvp({"U": np.ones((2, 3))}, **vals)[1] == 0.0
