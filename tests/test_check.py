"""check_grads: passes on correct derivatives and catches wrong ones, with both numbers shown."""

import dataclasses
import re

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad import rules
from symgrad.errors import InputError

x, y, w, b = sp.symbols("x y w b")


def _with_rule(monkeypatch, name, partial):
    """Replace the partial of the rule called ``name`` in the one table."""
    table = tuple(dataclasses.replace(r, partial=partial) if r.name == name else r for r in rules.RULES)
    assert table != rules.RULES
    monkeypatch.setattr(rules, "RULES", table)


def test_passes_and_returns_none():
    assert sg.check_grads(-y * sp.log(1 / (1 + sp.exp(-w * x))), wrt=[w], at={x: 3, y: 1, w: 3}) is None
    assert sg.check_grads(sp.sin(w * x) * b, wrt=[w, b], at={"x": np.linspace(0.1, 1, 5), "w": 0.2, "b": 1.5}) is None


def test_accepts_a_function_built_with_reduce_mean():
    e = (w * x + b - y) ** 2
    f = sg.compile(e, wrt=[w, b], args=[x, y], reduce="mean")
    sg.check_grads(e, wrt=[w, b], at={x: np.arange(1.0, 6.0), y: np.ones(5), w: 0.3, b: 0.1}, fn=f)


def test_catches_a_deliberately_wrong_rule(monkeypatch):
    _with_rule(monkeypatch, "exp", lambda e, a, out: 2 * out)  # d exp(a)/da = 2 exp(a): wrong
    f = sg.compile(sp.exp(w * x), wrt=[w], args=[x])
    with pytest.raises(sg.GradientMismatch) as err:
        sg.check_grads(sp.exp(w * x), wrt=[w], at={x: 0.5, w: 0.3}, fn=f)
    msg = str(err.value)
    right = 0.5 * np.exp(0.15)
    assert "sympy.diff check failed for exp(w*x)" in msg
    assert "w: 0.3" in msg and "x: 0.5" in msg
    numbers = [float(s) for s in re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?", msg.split("\n", 1)[1])]
    assert any(np.isclose(v, 2 * right, rtol=1e-12) for v in numbers), msg  # the compiled value
    assert any(np.isclose(v, right, rtol=1e-12) for v in numbers), msg  # the reference


def test_finite_differences_alone_also_catch_it(monkeypatch):
    _with_rule(monkeypatch, "tanh", lambda e, a, out: 1 - out)  # should be 1 - out**2
    f = sg.compile(sp.tanh(w * x), wrt=[w], args=[x])
    with pytest.raises(sg.GradientMismatch, match=r"finite-difference check failed for tanh\(w\*x\)"):
        sg.check_grads(sp.tanh(w * x), wrt=[w], at={x: 0.5, w: 0.3}, fn=f, modes=("fd",))


def test_forward_against_reverse_catches_a_broken_forward_program():
    e = sp.sin(w * x)
    f = sg.compile(e, wrt=[w], args=[x])
    forward = f.functions["forward"]
    f.functions["forward"] = lambda *a: (lambda v, d: (v, 1.5 * d))(*forward(*a))
    with pytest.raises(sg.GradientMismatch, match=r"forward/reverse check failed") as err:
        sg.check_grads(e, wrt=[w], at={x: 0.5, w: 0.3}, fn=f)
    assert "⟨u, Jv⟩" in str(err.value) and "⟨Jᵀu, v⟩" in str(err.value)


def test_a_correct_rule_passes_again_after_the_patch_is_undone():
    sg.check_grads(sp.exp(w * x), wrt=[w], at={x: 0.5, w: 0.3})


def test_missing_value_in_at():
    with pytest.raises(InputError, match=r"check_grads needs a value for 'x' in at"):
        sg.check_grads(sp.exp(w * x), wrt=[w], at={w: 0.3})


def test_symbolic_values_and_names_in_at():
    sg.check_grads(sp.exp(w * x), wrt=["w"], at={"x": sp.Rational(1, 2), w: sp.pi / 10})
    with pytest.raises(InputError, match="still contains symbols"):
        sg.check_grads(sp.exp(w * x), wrt=[w], at={x: y, w: 0.3})


# ---------------------------------------------------------------------------- networks

from symgrad import check, nn  # noqa: E402
from symgrad import ops_matrix as O  # noqa: E402
from symgrad import oracle, reference  # noqa: E402

B = sp.Symbol("B", integer=True, positive=True)


def _mlp_point(seed=0, sizes=(3, 4, 2), batch=5):
    net = nn.mlp(list(sizes), activation="tanh", loss="softmax_cross_entropy")
    rng = np.random.default_rng(seed)
    at = dict(nn.init_params(net, seed=seed), X=rng.standard_normal((batch, sizes[0])),
              Y=np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)])
    at = {k: v + 0.1 * rng.standard_normal(np.shape(v)) if k.startswith("b") else v for k, v in at.items()}
    return net, at


def test_tanh_mlp_with_softmax_cross_entropy_passes_all_three_checks():
    net, at = _mlp_point()
    assert sg.check_grads(net.loss, wrt=net.params, at=at) is None
    # keyed by MatrixSymbols, with an explicit SymPy matrix for one of them, works the same
    keyed = {p: at[p.name] for p in net.params}
    keyed.update({net.inputs: sp.Matrix(at["X"]), net.targets: at["Y"]})
    sg.check_grads(net.loss, wrt=[p.name for p in net.params], at=keyed)


def test_network_oracle_is_the_hand_written_backprop():
    """The oracle multiplies everything out and differentiates with SymPy: no part of symgrad's
    compiler is involved, and it agrees with careful hand backprop to rounding."""
    net, at = _mlp_point(1)
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    refs = oracle.network_oracle(net.loss, f, list(net.params), check.numeric_values(at))
    _, hand = reference.mlp_value_and_grad({p.name: at[p.name] for p in net.params}, at["X"], at["Y"])
    for k in hand:
        np.testing.assert_allclose(refs[k], hand[k], rtol=1e-11, atol=1e-14)


def test_network_with_a_scalar_parameter_inside_applyfunc():
    X, Y = sp.MatrixSymbol("X", B, 3), sp.MatrixSymbol("Y", B, 2)
    W, b, alpha = sp.MatrixSymbol("W", 3, 2), sp.MatrixSymbol("b", 1, 2), sp.Symbol("alpha")
    A = (X * W + sp.OneMatrix(B, 1) * b).applyfunc(lambda t: sp.tanh(alpha * t) + sg.softplus(t) / alpha)
    L = sp.Trace((A - Y).T * (A - Y)) / B
    rng = np.random.default_rng(2)
    at = {X: rng.standard_normal((4, 3)), Y: rng.standard_normal((4, 2)), W: rng.standard_normal((3, 2)),
          b: rng.standard_normal((1, 2)), alpha: 0.7}
    sg.check_grads(L, wrt=[W, b, alpha], at=at)
    sg.check_grads(L, wrt=[alpha], at=at)  # alpha alone, the matrices as data
    f = sg.compile(L, wrt=[W, b, alpha], args=[X, Y])
    refs = oracle.network_oracle(L, f, [W, b, alpha], check.numeric_values(at))
    assert isinstance(refs["alpha"], float)
    assert refs["alpha"] == pytest.approx(f.value_and_grad(**{k.name: v for k, v in at.items()})[1]["alpha"], rel=1e-12)


def _with_matrix_rule(monkeypatch, op, vjp):
    monkeypatch.setattr(op, "vjp", classmethod(lambda cls, args, i, g, out, shapes: vjp(args, i, g, out, shapes)))


def test_catches_a_deliberately_wrong_matrix_rule_on_a_network(monkeypatch):
    net, at = _mlp_point(3)
    # the transpose of a bias broadcast is a column sum; twice that is wrong
    _with_matrix_rule(monkeypatch, O.bcast_rows, lambda args, i, g, out, shapes: 2 * O.colsum(g))
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    with pytest.raises(sg.GradientMismatch) as err:
        sg.check_grads(net.loss, wrt=net.params, at=at, fn=f)
    msg = str(err.value)
    assert msg.startswith("sympy.diff check failed for ") and "X: 5×3 array" in msg, msg
    assert re.search(r"W1 +\(3×4\) agrees with the reference", msg), msg  # the weights are still right
    assert re.search(r"b1 +\(1×4\) differs most at b1\[0, \d\]: compiled = ", msg), msg
    assert re.search(r"b2 +\(1×2\) differs most at b2\[0, \d\]", msg), msg
    _, hand = reference.mlp_value_and_grad({p.name: at[p.name] for p in net.params}, at["X"], at["Y"])
    numbers = [float(v) for v in re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?", msg.split("\n", 1)[1])]
    worst = np.argmax(np.abs(hand["b2"]))
    assert any(np.isclose(v, 2 * hand["b2"][0, worst], rtol=1e-9) for v in numbers), msg
    assert any(np.isclose(v, hand["b2"][0, worst], rtol=1e-9) for v in numbers), msg
    # each numerical check catches it alone as well
    with pytest.raises(sg.GradientMismatch, match="finite-difference check failed"):
        sg.check_grads(net.loss, wrt=net.params, at=at, fn=f, modes=("fd",))
    with pytest.raises(sg.GradientMismatch, match="forward/reverse check failed"):
        sg.check_grads(net.loss, wrt=net.params, at=at, fn=f, modes=("fwd-rev",))


def test_catches_a_wrong_elementwise_rule_inside_a_network(monkeypatch):
    _with_rule(monkeypatch, "tanh", lambda e, a, out: 1 - out)  # should be 1 - out**2
    net, at = _mlp_point(4)
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    with pytest.raises(sg.GradientMismatch, match=r"(?s)sympy.diff check failed.*W1 +\(3×4\) differs most"):
        sg.check_grads(net.loss, wrt=net.params, at=at, fn=f)


def test_oracle_is_skipped_for_many_entries_but_the_numerical_checks_still_run(monkeypatch):
    net, at = _mlp_point(5)
    _with_matrix_rule(monkeypatch, O.bcast_rows, lambda args, i, g, out, shapes: 2 * O.colsum(g))
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    # this network has 3*4 + 4 + 4*2 + 2 = 26 entries (patched where check_grads reads it: doctest
    # collection may import symgrad/check.py a second time)
    monkeypatch.setitem(sg.check_grads.__globals__, "ORACLE_ENTRIES", 20)
    sg.check_grads(net.loss, wrt=net.params, at=at, fn=f, modes=("sympy",))  # skipped: no error
    with pytest.raises(sg.GradientMismatch, match="finite-difference"):
        sg.check_grads(net.loss, wrt=net.params, at=at, fn=f)


def test_network_forward_program_broken_is_caught():
    net, at = _mlp_point(6)
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    forward = f.functions["forward"]
    f.functions["forward"] = lambda *a: (lambda v, d: (v, 1.5 * d))(*forward(*a))
    with pytest.raises(sg.GradientMismatch, match=r"forward/reverse check failed") as err:
        sg.check_grads(net.loss, wrt=net.params, at=at, fn=f)
    assert "⟨u, Jv⟩" in str(err.value)


def test_matrix_valued_expression_and_products_powers_transposes():
    X, W, v = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("W", 2, 2), sp.MatrixSymbol("v", 2, 1)
    rng = np.random.default_rng(7)
    at = {X: rng.standard_normal((3, 2)), W: rng.standard_normal((2, 2)), v: rng.standard_normal((2, 1))}
    sg.check_grads(sp.HadamardProduct(X * W ** 2 * v, (X * v).applyfunc(sp.sin)), wrt=[W, v], at=at)
    sg.check_grads(sp.Trace(W.T * sp.Identity(2) * W) * sp.Trace(sp.HadamardPower(X * W, 3).T * X), wrt=[W], at=at)
    f = sg.compile(X * W, wrt=[W], args=[X], reduce="mean")
    sg.check_grads(X * W, wrt=[W], at=at, fn=f)


def test_network_missing_value_and_bad_shape():
    net, at = _mlp_point()
    with pytest.raises(InputError, match=r"check_grads needs a value for 'W2' in at"):
        sg.check_grads(net.loss, wrt=net.params, at={k: v for k, v in at.items() if k != "W2"})
    with pytest.raises(InputError, match=r"W2 has shape \(2, 4\) but the expression needs \(4, 2\)"):
        sg.check_grads(net.loss, wrt=net.params, at=dict(at, W2=at["W2"].T))


def test_explicit_spells_out_every_matrix_operation():
    X, W, b = sp.MatrixSymbol("X", B, 3), sp.MatrixSymbol("W", 3, 2), sp.MatrixSymbol("b", 1, 2)
    a = sp.Symbol("a")
    rng = np.random.default_rng(8)
    v = {"X": rng.standard_normal((4, 3)), "W": rng.standard_normal((3, 2)), "b": rng.standard_normal((1, 2))}
    H = v["X"] @ v["W"] + v["b"]
    Z = X * W + sp.OneMatrix(B, 1) * b
    vals = {X: sp.Matrix(v["X"]), W: sp.Matrix(v["W"]), b: sp.Matrix(v["b"]), a: sp.Rational(1, 2)}
    cases = [(sp.Trace(sp.OneMatrix(1, B) * Z.applyfunc(sp.tanh) * sp.OneMatrix(2, 1)), np.tanh(H).sum()),
             (sp.Trace(sp.HadamardPower(Z.applyfunc(sp.exp), a) * sp.OneMatrix(2, B)), np.exp(H / 2).sum()),
             (sp.Trace(sp.HadamardProduct(Z, Z).T * Z) / B, np.trace((H * H).T @ H) / 4),
             (sp.Trace((W.T * W) ** 3 + sp.Identity(2) + sp.ZeroMatrix(2, 2)),
              np.trace(np.linalg.matrix_power(v["W"].T @ v["W"], 3)) + 2),
             (sp.log(sp.Trace(W.T * W)) * a, 0.5 * np.log(np.sum(v["W"] ** 2)))]
    for expr, expected in cases:
        got = oracle.explicit(expr, vals, {B: 4})
        assert float(got) == pytest.approx(expected, rel=1e-12), expr
    m = oracle.explicit(Z.T, {"X": v["X"], "W": v["W"], "b": v["b"]}, {B: 4})
    np.testing.assert_allclose(np.array(m.tolist(), float), H.T, rtol=1e-12)


def test_oracle_gradient_is_sympy_diff_of_the_whole_expression():
    """The oracle takes SymPy's derivative of each operation once (chain rule over the distinct
    subexpressions) instead of ``sympy.diff`` of the whole tree once per entry: the same numbers."""
    p, q = sp.symbols("p q", real=True)
    c = sp.Symbol("c", real=True)
    e = (sp.Piecewise((p ** 2 * q, (p > 0) & (q > 0)), (sp.sin(p), True)) + sp.Max(p, c * q) + sp.Abs(p * q)
         + sp.log(1 + sp.exp(-p * q)) * sg.sigmoid(q) + sp.tanh(c * p) ** 3 / (1 + q ** 2) + sg.softplus(p - q))
    for point in ({p: 0.5, q: 2.0, c: 0.3}, {p: -0.7, q: 1.5, c: -2.0}):
        got = oracle.sympy_gradient(e, [p, q], point)
        subs = {k: sp.Float(v, 30) for k, v in point.items()}
        want = [float(sp.diff(e, s).xreplace(subs).evalf(30)) for s in (p, q)]
        np.testing.assert_allclose(got, want, rtol=1e-13)
    # and on a multiplied-out network
    X, W, b = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("W", 2, 2), sp.MatrixSymbol("b", 1, 2)
    L = sp.Trace(sp.OneMatrix(1, B) * (X * W + sp.OneMatrix(B, 1) * b).applyfunc(sp.tanh).applyfunc(sp.exp)
                 * sp.OneMatrix(2, 1))
    ws = sp.symbols("w0:4", real=True)
    bs = sp.symbols("b0:2", real=True)
    out = oracle.explicit(L, {X: [[0.5, -1.0], [2.0, 0.25], [1.0, 1.0]], W: sp.Matrix(2, 2, ws), b: sp.Matrix([bs])},
                         {B: 3})
    rng = np.random.default_rng(0)
    point = dict(zip(ws + bs, rng.standard_normal(6)))
    got = oracle.sympy_gradient(out, list(ws + bs), point)
    want = [float(sp.diff(out, s).xreplace({k: sp.Float(v, 30) for k, v in point.items()}).evalf(30)) for s in ws + bs]
    np.testing.assert_allclose(got, want, rtol=1e-13)
