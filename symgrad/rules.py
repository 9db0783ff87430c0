"""The rule table: one entry per operation kind, with its local partial for each argument.

A partial is a SymPy expression in the node's arguments that may use the node's own
output ``out`` (d exp = out, dσ = out·(1 − out), d tanh = 1 − out², d(1/a) = −out²), so
the generated code reuses values the forward pass already computed. Operations without
an entry of their own get their partial from ``sympy.diff`` on the node's small local
expression, so any SymPy ``Function`` with ``fdiff`` works without registration.

Kinks. Where a function's one-sided derivatives differ, one setting decides for every
spelling: ``symgrad.functions.KINK`` (default ``"min-norm"``, change it temporarily with
``with symgrad.rules.kink("mean"): ...``). The default takes the one-sided derivative
closest to 0 (the minimum-norm subgradient), which is the lecture's and PyTorch's choice:
relu'(0) = 0 for relu(x), Max(x, 0), Max(0, x) and Piecewise((x, x > 0), (0, True));
leaky_relu'(0) = α for leaky_relu(x, α), Max(α·x, x) and Piecewise((x, x > 0), (α·x, True))
(0 ≤ α ≤ 1); |x|'(0) = 0 for Abs(x) and Max(x, -x); Min(x, 0)'(0) = 0. At a Max/Min tie the
rule looks one node down: constants and multiples c·b of one value b have known one-sided
slopes, and KINK chooses among them; ties between unrelated arguments split the derivative
equally (Max(x, y) at x = y gives 1/2 each). A Piecewise boundary belongs to the branch
whose condition holds there, as written. ``kink_note(expr)`` says which convention a node
follows, for tables. ``"mean"`` averages the one-sided derivatives; ``"right"`` takes the
derivative from the right.

>>> import sympy as sp
>>> a, out = sp.symbols("a out")
>>> rule_for(sp.exp(a)).name, rule_for(sp.exp(a)).partial(sp.exp(a), a, out)
('exp', out)
>>> rule_for(1/a).partial(1/a, a, out)
-out**2
"""

from __future__ import annotations

from contextlib import contextmanager
import functools
from dataclasses import dataclass
from typing import Callable

import sympy as sp
from sympy.core.function import Application

from . import functions as F
from . import kinks
from .ops_matrix import MatOp
from .errors import UnsupportedError

__all__ = ["Rule", "RULES", "rule_for", "local_partials", "safe_point", "finite_everywhere", "kink_note", "kink"]


def _diff(e, a, out):
    return sp.diff(e, a)


@functools.lru_cache(maxsize=16)
def _linear_coefficients(e) -> dict:
    """{atom: coefficient} of a sum of numeric multiples of atoms, in one pass (None otherwise)."""
    coeffs: dict = {}
    for t in e.args:
        c, rest = t.as_coeff_Mul() if t.is_Mul else (sp.S.One, t)
        if not (rest.is_Atom and c.is_Number):
            return None
        coeffs[rest] = coeffs.get(rest, 0) + c
    return coeffs


def _mul_partial(e, a, out):
    # c·a·b·… differentiated by a factor that appears once is the product of the others;
    # e/a cancels symbolically (no division is left), and avoids sympy.diff's overhead per node
    return e / a if e.args.count(a) == 1 else sp.diff(e, a)


def _add_partial(e, a, out):
    # sympy.diff of a sum walks every term: for an n-term node, n partials would cost n² steps
    coeffs = _linear_coefficients(e)
    return coeffs.get(a, sp.S.Zero) if coeffs is not None else sp.diff(e, a)



def _is_pow(exponent):
    return lambda e: e.is_Pow and e.exp == exponent


def _powvar_partial(e, a, out):
    # d/d base = exp·base**(exp - 1) (not exp·out/base, which is 0/0 at base 0); d/d exponent =
    # out·log(base), which is 0·(-inf) at base 0 where the truth is 0 (for a positive exponent)
    base, ex = e.base, e.exp
    terms = []
    if a == base:
        terms.append(ex * base ** (ex - 1) if not ex.has(base) else sp.diff(e, a).xreplace({e: out}))
    if a == ex and a != base:
        terms.append(sp.Piecewise((0, sp.Eq(out, 0)), (out * sp.log(base), True)))
    if a != base and a != ex:
        return sp.diff(e, a)
    return sp.Add(*terms)


def _step_partial(e, a, out):
    if isinstance(e, sp.Heaviside) and len(e.args) == 2 and a == e.args[1] and a != e.args[0]:
        return sp.Piecewise((1, sp.Eq(e.args[0], 0)), (0, True))
    return sp.S.Zero


def _abs(e, a, out):
    at0 = F.at_kink(-1, 1)
    return sp.sign(a) if at0 == 0 else sp.Piecewise((1, a > 0), (-1, a < 0), (at0, True))


@dataclass(frozen=True, slots=True)
class Rule:
    """One operation kind: how to recognise it and its partial w.r.t. an argument."""

    name: str
    matches: Callable
    partial: Callable = _diff
    description: str = ""
    # The argument value at which the operation and its partials are finite: compiled code
    # feeds it to a node that only an untaken Piecewise branch needs (see symgrad.sweeps).
    # None means the operation is finite everywhere (add, mul, sigmoid, tanh, ...).
    safe: object = None
    # The partial also receives ``defs`` ({ξ: its definition}) to look one node down.
    uses_defs: bool = False


RULES: tuple = (
    Rule("add", lambda e: e.is_Add, _add_partial, "linear combination; d = the coefficient"),
    Rule("mul", lambda e: e.is_Mul, _mul_partial, "product; d = the other factors"),
    Rule("reciprocal", _is_pow(-1), lambda e, a, out: -out**2, "1/a; d = -out**2", safe=1),
    Rule("sqrt", _is_pow(sp.S.Half), lambda e, a, out: 1 / (2 * out), "square root; d = 1/(2 out)", safe=1),
    Rule("square", _is_pow(2), description="a**2"),
    Rule("pow", lambda e: e.is_Pow and e.exp.is_Number, description="power with a constant exponent", safe=1),
    Rule("powvar", lambda e: e.is_Pow, _powvar_partial,
         "power with a variable exponent; d/d base = exp·base**(exp - 1), d/d exponent = out log(base) "
         "(0 where out is 0)", safe=1),
    Rule("exp", lambda e: isinstance(e, sp.exp), lambda e, a, out: out, "exponential; d = out", safe=0),
    Rule("log", lambda e: isinstance(e, sp.log), description="natural logarithm; d = 1/a", safe=1),
    Rule("log1p", lambda e: isinstance(e, F.log1p), description="log(1 + a), accurate for small a; d = 1/(1 + a)",
         safe=0),
    Rule("expm1", lambda e: isinstance(e, F.expm1), lambda e, a, out: out + 1,
         "exp(a) - 1, accurate for small a; d = out + 1", safe=0),
    Rule("logsumexp", lambda e: isinstance(e, F.logsumexp), lambda e, a, out: sp.exp(a - out),
         "max-shifted log-sum-exp; d = exp(a - out), the softmax weight"),
    Rule("sigmoid", lambda e: isinstance(e, F.sigmoid),
         lambda e, a, out: out * F.sigmoid(-a),
         "logistic sigmoid; d = out·sigmoid(-a) (out·(1 - out) is 0 for a > 37, where the truth is e**-a)"),
    Rule("tanh", lambda e: isinstance(e, sp.tanh), lambda e, a, out: 1 - out**2, "tanh; d = 1 - out**2"),
    Rule("hypot", lambda e: isinstance(e, F.hypot), lambda e, a, out: sp.Piecewise((0, sp.Eq(out, 0)), (a / out, True)),
         "hypot(a, b); d/da = a/out, 0 at the origin (the cone's minimum-norm subgradient)"),
    Rule("abs", lambda e: isinstance(e, sp.Abs), _abs, "absolute value; d = sign(a), kink at 0"),
    Rule("max", lambda e: isinstance(e, (sp.Max, sp.Min)), lambda e, a, out, defs=None: kinks.max_min_partial(e, a, out, defs, lookdown),
         "maximum / minimum; d = 1 for the extreme argument, kink convention at ties", uses_defs=True),
    Rule("step", lambda e: isinstance(e, (sp.Heaviside, sp.sign, sp.floor, sp.ceiling)), _step_partial,
         "piecewise-constant step; d = 0, also at the jump (the kink convention); Heaviside(x, h0) "
         "is h0 at x = 0, so d/dh0 = 1 there"),
    Rule("sinc", lambda e: isinstance(e, sp.sinc),
         lambda e, a, out: sp.Piecewise((0, sp.Eq(a, 0)), ((sp.cos(a) - out) / a, True)),
         "sin(a)/a; d = (cos(a) - out)/a, 0 at a = 0"),
    Rule("piecewise", lambda e: isinstance(e, sp.Piecewise),
         lambda e, a, out, defs=None: kinks.piecewise_partial(e, a, out, defs, lookdown),
         "branches; d flows into the taken branch, the kink convention where branches meet", uses_defs=True),
    Rule("function", lambda e: isinstance(e, Application), description="function; d from its fdiff"),
)

# Points inside the domain of functions that the generic "function" rule handles.
SAFE_POINTS = {sp.asin: 0, sp.acos: 0, sp.atanh: 0, sp.acosh: 2, sp.asec: 2, sp.acsc: 2, sp.acoth: 2,
               sp.sinh: 0, sp.cosh: 0, sp.tan: 0, sp.sec: 0, sp.csc: 1, sp.cot: 1, sp.coth: 1,
               sp.gamma: 1, sp.loggamma: 1, sp.digamma: 1, sp.erfinv: 0, sp.LambertW: 0}

_KINKED = (sp.Max, sp.Min, sp.Abs, F.relu, F.leaky_relu)


def safe_point(e):
    """The argument value at which node ``e`` is finite (None: finite everywhere).

    >>> import sympy as sp
    >>> a = sp.Symbol("a")
    >>> safe_point(sp.log(a)), safe_point(sp.acosh(a)), safe_point(sp.sin(a))
    (1, 2, None)
    """
    rule = rule_for(e)
    if rule.name == "function":
        return SAFE_POINTS.get(e.func)
    return rule.safe


_FINITE = ("add", "mul", "square", "exp", "logsumexp", "sigmoid", "tanh", "hypot", "abs", "max", "step")


def finite_everywhere(e) -> bool:
    """True when node ``e``'s operation and partials are finite for all finite arguments.

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b")
    >>> finite_everywhere(sp.tanh(a)), finite_everywhere(sp.atan2(a, b)), finite_everywhere(sp.sin(a))
    (True, False, True)
    """
    rule = rule_for(e)
    if rule.name == "function":
        return e.func in (sp.sin, sp.cos, sp.atan, sp.erf, sp.erfc, F.relu, F.leaky_relu, F.softplus)
    return rule.name in _FINITE


def lookdown(d, u, out):
    """∂d/∂u for a definition ``d`` of one input ``u`` that a kink rule may differentiate through
    (finite partials, no kink, branch or matrix operation); None where the look-down stops."""
    if isinstance(d, MatOp) or isinstance(d, (sp.Piecewise,) + _KINKED):
        return None
    if d.is_Pow and not (d.exp.is_Integer and d.exp >= 0):
        return None
    try:
        if not d.is_Pow and not finite_everywhere(d):
            return None
        rule = rule_for(d)
    except UnsupportedError:
        return None
    return rule.partial(d, u, out, None) if rule.uses_defs else rule.partial(d, u, out)


def kink_note(e) -> str:
    """A line saying which kink convention node ``e``'s derivative follows ('' if it has no kink).

    Tables show it next to relu, leaky_relu, Abs, Max, Min and Piecewise nodes.

    >>> import sympy as sp
    >>> print(kink_note(sp.Max(sp.Symbol("x"), 0)))
    kink convention min-norm: the one-sided derivative closest to 0 (minimum-norm subgradient): relu'(0) = 0, leaky_relu'(0) = α, |x|'(0) = 0, as PyTorch
    >>> kink_note(sp.exp(sp.Symbol("x")))
    ''
    """
    if isinstance(e, sp.Piecewise):
        return "at a branch boundary the derivative is that of the branch whose condition holds there"
    if isinstance(e, _KINKED):
        return "kink convention %s: %s" % (F.KINK, F.KINKS[F.KINK])
    return ""


@contextmanager
def kink(name: str):
    """Temporarily use another kink convention (one of ``symgrad.functions.KINKS``).

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> with kink("mean"):
    ...     sp.diff(F.relu(x), x).subs(x, 0)
    1/2
    >>> sp.diff(F.relu(x), x).subs(x, 0)
    0
    """
    if name not in F.KINKS:
        raise ValueError("unknown kink convention %r; use one of %s" % (name, ", ".join(F.KINKS)))
    old, F.KINK = F.KINK, name
    try:
        yield
    finally:
        F.KINK = old


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


def local_partials(node, defs=None) -> tuple:
    """``((arg, ∂node/∂arg), ...)`` for each argument of ``node``, in output-reuse form.

    The node's output appears as ``node.symbol``. ``defs`` ({ξ: definition}) lets a rule look
    one node down (Max/Min use it to find slopes at ties). Raises UnsupportedError, naming the
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
        p = rule.partial(node.expr, a, node.symbol, defs) if rule.uses_defs else rule.partial(node.expr, a, node.symbol)
        if p.has(sp.Derivative, sp.Subs):
            f = node.expr.func if isinstance(node.expr, sp.Function) else type(node.expr)
            raise UnsupportedError(
                "no derivative known for %s in %s: SymPy cannot differentiate it; define it as a "
                "sympy.Function subclass with an fdiff method, or rewrite it with differentiable functions"
                % (getattr(f, "__name__", f), sp.sstr(node.source)))
        out.append((a, p))
    return tuple(out)
