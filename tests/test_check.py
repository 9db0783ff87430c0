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
