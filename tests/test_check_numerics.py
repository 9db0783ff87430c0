"""check_grads without false alarms: steps scaled to the point, inside the domain, kinks reported as
kinks; and still catching wrong rules at exactly those points, naming the node and the function."""

import dataclasses
import re

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad import numdiff, rules
from symgrad.rules import rule_for

w, x, b = sp.symbols("w x b")
B = sp.Symbol("B", integer=True, positive=True)

HARD_POINTS = {  # correct derivatives that an absolute step of 1e-6 reported as wrong
    "w**2 at 1e8": (w ** 2, 1e8),
    "w**4 at 1e5": (w ** 4, 1e5),
    "log(w) at 1e-7": (sp.log(w), 1e-7),
    "sqrt(w) at 1e-10": (sp.sqrt(w), 1e-10),
    "exp(w) at 700": (sp.exp(w), 700.0),
    "tanh(w) at -30": (sp.tanh(w), -30.0),
    "w*log(w) at 1e-12": (w * sp.log(w), 1e-12),
}


def _scaled_rule(monkeypatch, expr, factor):
    """Make the rule symgrad uses for the operation at the top of ``expr`` off by ``factor``."""
    name = rule_for(expr).name
    table = tuple(dataclasses.replace(r, partial=lambda e, a, out, p=r.partial: factor * p(e, a, out))
                  if r.name == name else r for r in rules.RULES)
    monkeypatch.setattr(rules, "RULES", table)
    return name


@pytest.mark.parametrize("case", HARD_POINTS)
def test_correct_derivatives_pass_at_large_and_tiny_magnitudes(case):
    expr, at = HARD_POINTS[case]
    r = sg.check_grads(expr, wrt=[w], at={w: at}, report=True)
    assert [(c.name, c.status) for c in r.checks] == [("sympy", "passed"), ("fd", "passed"), ("fwd-rev", "passed")]
    assert r.independent == ("sympy", "fd")


# (tanh' at -30 is 4e-26 next to tanh = -1: no finite difference in float64 resolves it; sympy.diff does)
@pytest.mark.parametrize("case", [c for c in HARD_POINTS if c not in ("w*log(w) at 1e-12", "tanh(w) at -30")])
def test_a_rule_off_by_a_tenth_of_a_percent_is_still_caught_there(case, monkeypatch):
    expr, at = HARD_POINTS[case]
    name = _scaled_rule(monkeypatch, expr, 1.001)
    f = sg.compile(expr, wrt=[w])
    truth = float(sp.diff(expr, w).subs(w, sp.Float(at, 30)).evalf(30))
    assert f.grad(w=at)["w"] == pytest.approx(1.001 * truth, rel=1e-9)  # the patch took effect
    for modes in (("fd",), ("sympy",)):
        with pytest.raises(sg.GradientMismatch) as err:
            sg.check_grads(expr, wrt=[w], at={w: at}, fn=f, modes=modes)
        msg = str(err.value)
        assert "ξ1 = " in msg and "symgrad's rule %r" % name in msg, msg


def test_finite_differences_alone_see_a_small_relative_error_at_a_large_point(monkeypatch):
    """An error of 1e-4 relative at w = 1e8 (truth 2e8): the step is relative, so it is resolved."""
    _scaled_rule(monkeypatch, w ** 3, 1 + 1e-4)
    f = sg.compile(w ** 3, wrt=[w])
    with pytest.raises(sg.GradientMismatch, match="finite-difference check failed"):
        sg.check_grads(w ** 3, wrt=[w], at={w: 1e8}, fn=f, modes=("fd",))


def test_numdiff_slope_against_known_derivatives():
    for f, x0, d in [(np.log, 1e-7, 1e7), (np.sqrt, 1e-10, 0.5e5), (np.exp, 700.0, np.exp(700.0)),
                     (lambda t: t ** 4, 1e5, 4e15)]:
        v = numdiff.scaled_direction(x0, 1.0)
        s = numdiff.slope(lambda t: (f(x0 + t * v), abs(f(x0))))
        assert s.value == pytest.approx(d * v, rel=1e-8)
        assert s.error < 1e-6 * abs(d * v)
    assert numdiff.slope(lambda t: np.log(-1.0 + 0 * t)) is None  # never inside the domain


KINKS = {
    "abs(w) at 0": (sp.Abs(w), (-1.0, 1.0)),
    "Max(w, 0) at 0": (sp.Max(w, 0), (0.0, 1.0)),
    "relu(w) at 0": (sg.relu(w), (0.0, 1.0)),
    "Min(w, 2*w) at 0": (sp.Min(w, 2 * w), (2.0, 1.0)),
    "Piecewise relu at 0": (sp.Piecewise((w, w >= 0), (0, True)), (0.0, 1.0)),
}


@pytest.mark.parametrize("case", KINKS)
def test_kinks_pass_with_a_note_on_the_one_sided_derivatives(case):
    expr, (left, right) = KINKS[case]
    r = sg.check_grads(expr, wrt=[w], at={w: 0.0}, report=True)
    assert all(c.status in ("passed", "kink") for c in r.checks), r
    for note in r.kinks:
        assert note.startswith("kink: one-sided derivatives differ (left ")
        assert "symgrad uses the min-norm subgradient" in note
    sympy_kinks = [n for n in r.kinks if " along w;" in n]
    for n in sympy_kinks:  # the coordinate direction: the one-sided slopes by hand
        assert "(left %.10g, right %.10g)" % (left, right) in n, n
    if any(c.name == "fd" and c.status == "kink" for c in r.checks):
        v = r.direction["w"]
        lo, hi = sorted((left * v, right * v))  # along v the one-sided slopes are left·v and right·v
        got = [float(t) for t in re.search(r"left (\S+), right (\S+)\)", r.kinks[-1]).groups()]
        assert sorted(got) == pytest.approx([lo, hi], abs=1e-9)
    assert sg.check_grads(expr, wrt=[w], at={w: 0.0}) is None


def test_relu_at_zero_has_a_kink_note_from_both_checks():
    r = sg.check_grads(sg.relu(w) + sp.Max(w, 0), wrt=[w], at={w: 0.0}, report=True)
    text = str(r)
    assert "fd kink" in text and "kink: one-sided derivatives differ" in text


def test_a_wrong_derivative_at_a_kink_is_still_a_failure(monkeypatch):
    """|w|'(0) = 3 is outside the one-sided derivatives [-1, 1]: not a kink convention, a bug."""
    table = tuple(dataclasses.replace(r, partial=lambda e, a, out: sp.sign(a) + 3) if r.name == "abs" else r
                  for r in rules.RULES)
    monkeypatch.setattr(rules, "RULES", table)
    f = sg.compile(sp.Abs(w), wrt=[w])
    assert f.grad(w=0.0)["w"] == 3.0
    with pytest.raises(sg.GradientMismatch, match=r"sympy.diff check failed"):
        sg.check_grads(sp.Abs(w), wrt=[w], at={w: 0.0}, fn=f)
    with pytest.raises(sg.GradientMismatch, match=r"finite-difference check failed"):
        sg.check_grads(sp.Abs(w), wrt=[w], at={w: 0.0}, fn=f, modes=("fd",))


class wrongsin(sp.Function):
    """sin with a wrong fdiff: d/dt sin(t) given as 3 cos(t)."""

    def fdiff(self, argindex=1):
        return 3 * sp.cos(self.args[0])

    def _numpycode(self, printer):
        return "%s(%s)" % (printer._module_format("numpy.sin"), printer._print(self.args[0]))


class goodsin(wrongsin):
    def fdiff(self, argindex=1):
        return sp.cos(self.args[0])


def test_a_wrong_fdiff_in_a_user_function_is_caught_and_named():
    e = 2 * wrongsin(w * x) + b
    at = {x: 0.5, w: 0.3, b: 1.0}
    with pytest.raises(sg.GradientMismatch) as err:
        sg.check_grads(e, wrt=[w, b], at=at)
    msg = str(err.value)
    assert msg.startswith("finite-difference check failed for"), msg  # sympy.diff uses the same fdiff: it agrees
    assert re.search(r"wrong rule: node ξ2 = wrongsin\(ξ1\) = wrongsin\(w\*x\): its derivative in ξ1 "
                     r"\(the fdiff of the user function wrongsin\)", msg), msg
    assert "parameter w disagrees" in msg and "parameter b agrees" in msg, msg
    assert "not independent: sympy.diff (it reuses the fdiff of wrongsin)" in msg, msg
    assert err.value.report.independent == ("fd",)  # the sympy check passed but was not independent
    # the message's numbers: ⟨∇f, v⟩ with the hand-derived gradient 2 x cos(w x) for w and 1 for b
    v = {n: float(s) for n, s in re.findall(r"v_(\w) = (\S+?)(?:;|$)", msg, re.M)}
    truth = 2 * 0.5 * np.cos(0.15) * v["w"] + v["b"]
    wrong = 3 * 2 * 0.5 * np.cos(0.15) * v["w"] + v["b"]
    line = msg.splitlines()[1]
    got, ref = [float(s) for s in re.findall(r"= ([-+]?\d+\.\d+(?:e[-+]?\d+)?)", line)[:2]]
    assert got == pytest.approx(wrong, rel=1e-12) and ref == pytest.approx(truth, rel=1e-8)


def test_a_correct_user_function_passes_and_says_which_checks_were_independent():
    r = sg.check_grads(2 * goodsin(w * x), wrt=[w], at={x: 0.5, w: 0.3}, report=True)
    assert r.independent == ("fd",)
    sympy = next(c for c in r.checks if c.name == "sympy")
    assert sympy.status == "passed" and not sympy.independent and "goodsin" in sympy.note
    assert "sympy passed (consistency only)" in str(r)


def test_a_failure_names_the_parameter_the_node_and_the_direction(monkeypatch):
    _scaled_rule(monkeypatch, sp.exp(b), 2)
    e = sp.sin(w * x) + sp.exp(b)
    f = sg.compile(e, wrt=[w, b], args=[x])
    with pytest.raises(sg.GradientMismatch) as err:
        sg.check_grads(e, wrt=[w, b], at={x: 2.0, w: 0.3, b: 0.5}, fn=f, modes=("fd",))
    msg = str(err.value)
    assert "parameter w agrees" in msg and "parameter b disagrees" in msg
    assert re.search(r"wrong rule: node ξ\d = exp\(b\): its derivative in b \(symgrad's rule 'exp' for exp\)", msg)
    assert "direction v (random normal, each coordinate scaled by max(|x_i|, 1)): v_w = " in msg
    assert len(err.value.culprits) == 1 and err.value.culprits[0].definition == "exp(b)"


def test_network_with_relu_at_exactly_zero_preactivations():
    X, Wm, bm = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("W", 2, 3), sp.MatrixSymbol("b", 1, 3)
    L = sp.Trace(sp.OneMatrix(1, B) * (X * Wm + sp.OneMatrix(B, 1) * bm).applyfunc(sg.relu) * sp.OneMatrix(3, 1))
    rng = np.random.default_rng(3)
    Xv, Wv = rng.standard_normal((4, 2)), rng.standard_normal((2, 3))
    bv = -(Xv @ Wv)[:1]  # the first row's pre-activations are exactly 0: every one a kink
    assert np.all((Xv @ Wv + bv)[0] == 0)
    r = sg.check_grads(L, wrt=[Wm, bm], at={X: Xv, Wm: Wv, bm: bv}, report=True)
    assert all(c.status in ("passed", "kink") for c in r.checks), r
    # the kink convention by hand: rows with positive pre-activations only
    Z = Xv @ Wv + bv
    want = (Z > 0).astype(float).sum(axis=0, keepdims=True)
    np.testing.assert_allclose(sg.compile(L, wrt=[Wm, bm], args=[X]).grad(X=Xv, W=Wv, b=bv)["b"], want)


def test_readme_shows_the_real_kink_report():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    m = re.search(r">>> print\(sg\.check_grads\(sp\.Max\(w, 0\) \* x, wrt=\[w\], at=\{w: 0\.0, x: 2\.0\}, "
                  r"report=True\)\)\n(.*?)\n```", readme, re.S)
    assert m, "README no longer shows the kink report"
    r = sg.check_grads(sp.Max(w, 0) * x, wrt=[w], at={w: 0.0, x: 2.0}, report=True)
    assert m.group(1) == str(r)
    assert "(left 0, right 2) along w" in m.group(1)  # by hand: d/dw max(w, 0)·2 is 0 on the left, 2 on the right


def _mlp_point(seed):
    from symgrad import nn

    net = nn.mlp([3, 4, 2], activation="tanh", loss="softmax_cross_entropy")
    rng = np.random.default_rng(seed)
    at = dict(nn.init_params(net, seed=seed), X=rng.standard_normal((5, 3)), Y=np.eye(2)[rng.integers(0, 2, 5)])
    return net, at


def test_a_wrong_matrix_rule_in_a_network_is_traced_to_its_node(monkeypatch):
    from symgrad import ops_matrix as O

    net, at = _mlp_point(3)
    monkeypatch.setattr(O.bcast_rows, "vjp", classmethod(lambda cls, args, i, g, out, shapes: 2 * O.colsum(g)))
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    for modes, head in ((("sympy",), "sympy.diff"), (("fd",), "finite-difference")):
        with pytest.raises(sg.GradientMismatch) as err:
            sg.check_grads(net.loss, wrt=net.params, at=at, fn=f, modes=modes)
        msg = str(err.value)
        assert msg.startswith(head + " check failed"), msg
        assert re.search(r"wrong rule: node ξ\d+ = bcast_rows\(b1, B\): its derivative in b1 \(the vjp of the "
                         r"matrix operation bcast_rows\)", msg), msg
        assert {c.definition for c in err.value.culprits} == {"bcast_rows(b1, B)", "bcast_rows(b2, B)"}


def test_a_wrong_elementwise_rule_in_a_network_is_traced_to_its_node(monkeypatch):
    table = tuple(dataclasses.replace(r, partial=lambda e, a, out: 1 - out) if r.name == "tanh" else r
                  for r in rules.RULES)
    monkeypatch.setattr(rules, "RULES", table)
    net, at = _mlp_point(4)
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    with pytest.raises(sg.GradientMismatch) as err:
        sg.check_grads(net.loss, wrt=net.params, at=at, fn=f, modes=("fd",))
    assert [c.definition for c in err.value.culprits] == ["tanh(ξ4)"], str(err.value)
    assert "symgrad's rule 'tanh' for tanh" in str(err.value)
