"""The rule table: one entry per operation kind, with its local partial for each argument.

A partial is a SymPy expression in the node's arguments that may use the node's own
output ``out`` (d exp = out, dσ = out·(1 − out), d tanh = 1 − out², d(1/a) = −out²), so
the generated code reuses values the forward pass already computed. Operations without
an entry of their own get their partial from ``sympy.diff`` on the node's small local
expression, so any SymPy ``Function`` with ``fdiff`` works without registration.

>>> import sympy as sp
>>> a, out = sp.symbols("a out")
>>> rule_for(sp.exp(a)).name, rule_for(sp.exp(a)).partial(sp.exp(a), a, out)
('exp', out)
>>> rule_for(1/a).partial(1/a, a, out)
-out**2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp
from sympy.core.function import Application

from . import functions as F
from .errors import UnsupportedError

__all__ = ["Rule", "RULES", "rule_for", "local_partials"]


def _diff(e, a, out):
    return sp.diff(e, a)


def _is_pow(exponent):
    return lambda e: e.is_Pow and e.exp == exponent


def _max_min(e, a, out):
    # The argument strictly above (Max) or below (Min) all others gets the whole derivative;
    # at a tie nobody does, which gives relu'(0) = 0 for Max(x, 0).
    rel = (lambda p, q: p > q) if isinstance(e, sp.Max) else (lambda p, q: p < q)
    cond = sp.And(*[rel(a, b) for b in e.args if b != a])
    return sp.Piecewise((1, cond), (0, True))


@dataclass(frozen=True, slots=True)
class Rule:
    """One operation kind: how to recognise it and its partial w.r.t. an argument."""

    name: str
    matches: Callable
    partial: Callable = _diff
    description: str = ""


RULES: tuple = (
    Rule("add", lambda e: e.is_Add, description="linear combination"),
    Rule("mul", lambda e: e.is_Mul, description="product"),
    Rule("reciprocal", _is_pow(-1), lambda e, a, out: -out**2, "1/a; d = -out**2"),
    Rule("sqrt", _is_pow(sp.S.Half), lambda e, a, out: 1 / (2 * out), "square root; d = 1/(2 out)"),
    Rule("square", _is_pow(2), description="a**2"),
    Rule("pow", lambda e: e.is_Pow and e.exp.is_Number, description="power with a constant exponent"),
    Rule("powvar", lambda e: e.is_Pow,
         lambda e, a, out: out * sp.log(e.base) if a == e.exp else sp.diff(e, a),
         "power with a variable exponent; d/d exponent = out log(base)"),
    Rule("exp", lambda e: isinstance(e, sp.exp), lambda e, a, out: out, "exponential; d = out"),
    Rule("log", lambda e: isinstance(e, sp.log), description="natural logarithm; d = 1/a"),
    Rule("sigmoid", lambda e: isinstance(e, F.sigmoid),
         lambda e, a, out: out * (1 - out), "logistic sigmoid; d = out (1 - out)"),
    Rule("tanh", lambda e: isinstance(e, sp.tanh), lambda e, a, out: 1 - out**2, "tanh; d = 1 - out**2"),
    Rule("abs", lambda e: isinstance(e, sp.Abs), lambda e, a, out: sp.sign(a), "absolute value; d = sign(a), 0 at 0"),
    Rule("max", lambda e: isinstance(e, (sp.Max, sp.Min)), _max_min, "maximum / minimum; 0 at ties"),
    Rule("piecewise", lambda e: isinstance(e, sp.Piecewise), description="branches; d flows into the taken branch"),
    Rule("function", lambda e: isinstance(e, Application), description="function; d from its fdiff"),
)


def rule_for(e) -> Rule:
    """The first rule in ``RULES`` that recognises the local expression ``e``.

    >>> import sympy as sp
    >>> rule_for(sp.tanh(sp.Symbol("a"))).name
    'tanh'
    """
    for rule in RULES:
        if rule.matches(e):
            return rule
    raise UnsupportedError("no derivative rule for %s (%s)" % (sp.sstr(e), type(e).__name__))


def local_partials(node) -> tuple:
    """``((arg, ∂node/∂arg), ...)`` for each argument of ``node``, in output-reuse form.

    The node's output appears as ``node.symbol``. Raises UnsupportedError, naming the
    function, when SymPy knows no derivative for it.

    >>> import sympy as sp
    >>> from symgrad.graph import decompose
    >>> x = sp.Symbol("x")
    >>> g = decompose(sp.tanh(x))
    >>> local_partials(g.nodes[0])
    ((x, 1 - ξ1**2),)
    """
    rule = rule_for(node.expr)
    out = []
    for a in node.args:
        p = rule.partial(node.expr, a, node.symbol)
        if p.has(sp.Derivative, sp.Subs):
            f = node.expr.func if isinstance(node.expr, sp.Function) else type(node.expr)
            raise UnsupportedError(
                "no derivative known for %s in %s: SymPy cannot differentiate it; define it as a "
                "sympy.Function subclass with an fdiff method, or rewrite it with differentiable functions"
                % (getattr(f, "__name__", f), sp.sstr(node.source)))
        out.append((a, p))
    return tuple(out)
