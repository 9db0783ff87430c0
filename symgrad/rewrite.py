"""Stability rewrites: numerically unstable spellings replaced by stable equivalents, node by node.

``symgrad.compile`` applies them by default (``rewrite=False`` turns them off) and keeps the
list of what fired as ``f.rewrites``; tables show the user's literal chain. Each pattern
looks at one node whose children are already rewritten and returns a replacement or None:

====================  =================================================  =========================
pattern               before                                             after
====================  =================================================  =========================
sigmoid               1/(1 + exp(u))                                     sigmoid(-u)
one-minus-sigmoid     1 - sigmoid(u)                                     sigmoid(-u)
log-sigmoid           log(sigmoid(u))                                    -softplus(-u)
log-exp               log(exp(u))                                        u
softplus              log(1 + exp(u))                                    softplus(u)
sigmoid-ratio         exp(u)/(1 + exp(u))                                sigmoid(u)
softmax-ratio         exp(u)/(exp(a) + exp(b) + …)                       exp(u - logsumexp(a, b, …))
log-cosh              log(cosh(u))                                       u + softplus(-2u) - log 2
root-of-square        sqrt(x**2), (x**4)**(1/2), (x**2)**(3/2)           |x|, x**2, |x|**3
hypot                 sqrt(a**2 + b**2 + …)                              hypot(a, b, …)
logsumexp             log(exp(a) + exp(b) + … [+ c > 0])                 logsumexp(a, b, …)
log1p                 log(1 + x)                                         log1p(x)
expm1                 exp(x) - 1  (k·exp(x) - k, plus any other terms)   expm1(x)  (k·expm1(x))
====================  =================================================  =========================

They compose bottom-up, so the lecture's ``log(1/(1 + exp(-w*x)))`` becomes sigmoid(w*x)
and then ``-softplus(-w*x)``, and ``log(1 - 1/(1 + exp(-z)))`` becomes ``-softplus(z)``.
Every replacement is the same function (values agree to rounding); what changes is that
no intermediate overflows or cancels: at w·x = 800 the literal chain computes
log(1/(1 + inf)) = -inf, the rewritten one ``-logaddexp(0, -800)`` = -0.

The walk visits each distinct subexpression once (a memoised, iterative post-order pass
over the expression DAG); it never calls simplify, expand or cse on the whole expression,
which on deep expressions would visit every path instead of every node (DESIGN.md).
To add a pattern (e.g. row-wise matrix log-sum-exp), write ``f(node) -> replacement | None``
and append ``Pattern(name, f, description)`` to ``PATTERNS`` or pass your own tuple.

>>> import sympy as sp
>>> x, y, w = sp.symbols("x y w")
>>> e, report = stabilize(-y*sp.log(1/(1 + sp.exp(-w*x))))
>>> e
y*softplus(-w*x)
>>> for r in report: print(r)
sigmoid: 1/(1 + exp(-w*x)) → sigmoid(w*x)
log-sigmoid: log(1/(1 + exp(-w*x))) → -softplus(-w*x)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp

from . import functions as F

__all__ = ["Rewrite", "Pattern", "PATTERNS", "stabilize"]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One fired rewrite: ``rule`` turned the user's subexpression ``before`` into ``after``."""

    rule: str
    before: sp.Expr
    after: sp.Expr

    def __str__(self) -> str:
        return "%s: %s → %s" % (self.rule, sp.sstr(self.before, order="none"), sp.sstr(self.after, order="none"))


@dataclass(frozen=True, slots=True)
class Pattern:
    """A rewrite: ``apply(node)`` gives the stable replacement of ``node`` or None."""

    name: str
    apply: Callable
    description: str = ""


def _exp_arg(t):
    """u if t is exp(u), else None."""
    return t.args[0] if isinstance(t, sp.exp) else None


def _one_plus(e):
    """x if e is 1 + x (x may be a sum), else None."""
    if e.is_Add:
        c, rest = e.as_coeff_Add()
        if c == 1:
            return rest
    return None


def _sigmoid(e):
    if e.is_Pow and e.exp == -1:
        rest = _one_plus(e.base)
        u = _exp_arg(rest) if rest is not None else None
        if u is not None:
            return F.sigmoid(-u)
    return None


def _one_minus_sigmoid(e):
    rest = _one_plus(e)
    if rest is not None and rest.is_Mul:
        c, s = rest.as_coeff_Mul()
        if c == -1 and isinstance(s, F.sigmoid):
            return F.sigmoid(-s.args[0])
    return None


def _log_of(f):
    """A pattern on log(a) nodes: f(a) gives the replacement or None."""
    def apply(e):
        if isinstance(e, sp.log) and len(e.args) == 1:
            return f(e.args[0])
        return None
    return apply


def _log_sigmoid(a):
    return -F.softplus(-a.args[0]) if isinstance(a, F.sigmoid) else None


def _log_exp(a):
    return _exp_arg(a)


def _softplus(a):
    rest = _one_plus(a)
    u = _exp_arg(rest) if rest is not None else None
    return F.softplus(u) if u is not None else None


def _logsumexp(a):
    # Every term must be c·exp(u) or a constant c, with c > 0; then log Σ = logsumexp(u + log c, …).
    if not a.is_Add:
        return None
    args, n_exp = [], 0
    for t in a.args:
        c, rest = t.as_coeff_Mul() if t.is_Mul else (sp.S.One, t)
        if t.is_Number:
            c, rest = t, sp.S.One
        if not (c.is_Number and c > 0):
            return None
        if rest == 1:
            args.append(sp.log(c))
            continue
        u = _exp_arg(rest)
        if u is None:
            return None
        n_exp += 1
        args.append(u + sp.log(c) if c != 1 else u)
    return F.logsumexp(*args) if n_exp and len(args) > 1 else None


def _log1p(a):
    rest = _one_plus(a)
    return F.log1p(rest) if rest is not None else None


def _expm1(e):
    if not e.is_Add:
        return None
    c, rest = e.as_coeff_Add()
    if c == 0:
        return None
    terms = list(sp.Add.make_args(rest))
    for i, t in enumerate(terms):
        k, f = t.as_coeff_Mul() if t.is_Mul else (sp.S.One, t)
        if isinstance(f, sp.exp) and k == -c:
            return sp.Add(k * F.expm1(f.args[0]), *terms[:i], *terms[i + 1:])
    return None


def _softplus_term(t):
    """(c, u) for a term c·softplus(u) with c free of softplus, else None."""
    factors = sp.Mul.make_args(t)
    sps = [f for f in factors if isinstance(f, F.softplus)]
    if len(sps) != 1:
        return None
    rest = sp.Mul(*[f for f in factors if f is not sps[0]])
    return (rest, sps[0].args[0]) if not rest.has(F.softplus) else None


def _bce_logits(e):
    # c·softplus(-u) + (1 - c)·softplus(u) = softplus(u) - c·u: the binary cross-entropy with
    # logits, whose derivative σ(u) - c needs one exponential instead of two.
    if not e.is_Add:
        return None
    terms = list(e.args)
    parts = [_softplus_term(t) for t in terms]
    found = [(i, p) for i, p in enumerate(parts) if p is not None]  # a long sum has few softplus terms
    for i, pi in found:
        for j, pj in found:
            if i == j:
                continue
            (ci, ui), (cj, uj) = pi, pj
            if ui == -uj and sp.expand(ci + cj) == 1:
                rest = [t for k, t in enumerate(terms) if k not in (i, j)]
                # c·u stays a product over u itself, so u is one node shared with softplus(u)
                return sp.Add(F.softplus(uj), -sp.Mul(ci, uj, evaluate=False), *rest)
    return None


def _exp_terms(a):
    """[(c, u), ...] if ``a`` is a sum of positive multiples c·exp(u) (at least two), else None."""
    if not a.is_Add:
        return None
    out = []
    for t in a.args:
        c, rest = t.as_coeff_Mul()
        u = _exp_arg(rest)
        if u is None or not (c.is_positive and c.is_Number):
            return None
        out.append((c, u))
    return out if len(out) >= 2 else None


def _softmax_ratio(e):
    # exp(u)·(Σ c·exp(v))⁻¹ → exp(u - logsumexp(v + log c, …)): a softmax written as a ratio
    # overflows at logits near 710; the max-shifted form never does
    if not e.is_Mul:
        return None
    num = [f for f in e.args if isinstance(f, sp.exp)]
    den = [f for f in e.args if f.is_Pow and f.exp == -1 and _exp_terms(f.base) is not None]
    if len(num) != 1 or len(den) != 1:
        return None
    terms = _exp_terms(den[0].base)
    rest = [f for f in e.args if f is not num[0] and f is not den[0]]
    lse = F.logsumexp(*[v + sp.log(c) if c != 1 else v for c, v in terms])
    return sp.Mul(sp.exp(num[0].args[0] - lse), *rest)


def _sigmoid_ratio(e):
    # exp(u)·sigmoid(-u), which the sigmoid pattern makes of exp(u)/(1 + exp(u)), is sigmoid(u)
    if not e.is_Mul:
        return None
    for f in e.args:
        if isinstance(f, sp.exp):
            for g in e.args:
                if isinstance(g, F.sigmoid) and g.args[0] == -f.args[0]:
                    return sp.Mul(F.sigmoid(f.args[0]), *[h for h in e.args if h is not f and h is not g])
    return None


def _hypot(e):
    # sqrt(a**2 + b**2 + …) → hypot(hypot(a, b), …): the squares overflow at 1e155, hypot does not
    if not (e.is_Pow and e.exp == sp.S.Half and e.base.is_Add and len(e.base.args) >= 2):
        return None
    parts = []
    for t in e.base.args:
        if not (t.is_Pow and t.exp == 2):
            return None
        parts.append(t.base)
    out = F.hypot(parts[0], parts[1])
    for p in parts[2:]:
        out = F.hypot(out, p)
    return out


def _root_of_even_power(e):
    # sqrt(x**2) → |x|, (x**4)**(1/2) → x**2: for real x the same function; the literal chain's
    # derivative 1/(2 sqrt(x**2))·2x is inf·0 = NaN at 0, the rewritten one is the kink rule's 0
    if not (e.is_Pow and e.exp.is_Rational and not e.exp.is_Integer and e.base.is_Pow):
        return None
    b, n = e.base.base, e.base.exp
    if not (n.is_Integer and n.is_even and n > 0):
        return None
    p = n * e.exp
    return b ** p if p.is_Integer and p.is_even else sp.Abs(b) ** p


def _log_cosh(a):
    # log(cosh(u)) = u + softplus(-2u) - log 2: cosh overflows at 710, this never does
    if isinstance(a, sp.cosh):
        u = a.args[0]
        return u + F.softplus(-2 * u) - sp.log(2)
    return None


PATTERNS: tuple = (
    Pattern("sigmoid", _sigmoid, "1/(1 + exp(u)) → sigmoid(-u): no overflow of exp, no 0·inf in its derivative"),
    Pattern("one-minus-sigmoid", _one_minus_sigmoid, "1 - sigmoid(u) → sigmoid(-u): no cancellation for large u"),
    Pattern("log-sigmoid", _log_of(_log_sigmoid), "log(sigmoid(u)) → -softplus(-u): finite for any u"),
    Pattern("log-exp", _log_of(_log_exp), "log(exp(u)) → u"),
    Pattern("sigmoid-ratio", _sigmoid_ratio, "exp(u)/(1 + exp(u)) → sigmoid(u): no inf/inf at large u"),
    Pattern("softmax-ratio", _softmax_ratio,
            "exp(u)/(exp(a) + exp(b) + …) → exp(u - logsumexp(a, b, …)): a softmax without overflow"),
    Pattern("log-cosh", _log_of(_log_cosh), "log(cosh(u)) → u + softplus(-2u) - log 2: finite for any u"),
    Pattern("root-of-square", _root_of_even_power, "sqrt(x**2) → |x|: no inf·0 in the derivative at 0"),
    Pattern("hypot", _hypot, "sqrt(a**2 + b**2) → hypot(a, b): no overflow of the squares"),
    Pattern("softplus", _log_of(_softplus), "log(1 + exp(u)) → softplus(u), computed as logaddexp(0, u)"),
    Pattern("logsumexp", _log_of(_logsumexp), "log of a sum of exponentials → max-shifted logsumexp"),
    Pattern("log1p", _log_of(_log1p), "log(1 + x) → log1p(x): accurate for small x"),
    Pattern("expm1", _expm1, "exp(x) - 1 → expm1(x): accurate for small x"),
    Pattern("bce-logits", _bce_logits,
            "c·softplus(-u) + (1 - c)·softplus(u) → softplus(u) - c·u: cross-entropy with logits, d = σ(u) - c"),
)

_MAX_STEPS = 8  # patterns applied in turn at one node; each strictly simplifies, this is a safety net


def _rebuild(e, args):
    return e.func(*args)


def stabilize(expr, patterns: tuple = PATTERNS):
    """``(stable_expr, report)``: ``expr`` with every matching subexpression rewritten.

    ``report`` is a tuple of :class:`Rewrite`, one per rewrite that fired, innermost first,
    each naming the user's subexpression it replaced. Shared subexpressions are rewritten
    once. An expression with nothing to rewrite comes back as the same object.

    >>> import sympy as sp
    >>> z = sp.Symbol("z")
    >>> stabilize(sp.log(1 + sp.exp(z)) + sp.exp(z) - 1)[0]
    expm1(z) + softplus(z)
    """
    expr = sp.sympify(expr)
    memo: dict = {}
    report: list = []
    kept: set = set()  # nodes left as written: their rewrite would have cancelled an input
    symbols: dict = {}  # free symbols per subexpression, each computed once (a DAG, not a tree)

    def free(e):
        stack = [e]
        while stack:
            t = stack[-1]
            if t in symbols:
                stack.pop()
                continue
            todo = [a for a in t.args if a not in symbols]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            symbols[t] = frozenset((t,)) if t.is_Symbol else frozenset().union(*(symbols[a] for a in t.args))
        return symbols[e]

    def visit(e):
        """Rewrite one node whose children are done."""
        args = [memo.get(a, a) for a in e.args]
        new = e if all(x is y for x, y in zip(args, e.args)) else _rebuild(e, args)
        for _ in range(_MAX_STEPS):
            for pat in patterns:
                out = pat.apply(new) if isinstance(new, sp.Basic) and not new.is_Atom else None
                if out is not None and out != new:
                    report.append(Rewrite(pat.name, e, out))
                    new = out
                    break
            else:
                break
        # log(exp(a - x)) + x would become a: the same number, but x (a batch, a parameter)
        # would no longer be an input of the value, so its shape and its gradient's would be lost
        if free(new) != free(e):
            new = e.func(*args, evaluate=False) if args != list(e.args) else e  # the rewritten terms, uncombined
            if free(new) != free(e):
                kept.add(e)
                new = e
        memo[e] = new

    # Iterative post-order: a node is visited after all its children, each distinct node once.
    stack = [(expr, False)]
    while stack:
        e, expanded = stack.pop()
        if e in memo or e.is_Atom or not e.args:
            continue
        if expanded:
            visit(e)
            continue
        stack.append((e, True))
        for a in reversed(e.args):
            if a not in memo and not a.is_Atom:
                stack.append((a, False))
    if kept:
        report = [r for r in report if r.before in _rewritten(expr, memo, kept)]
    return memo.get(expr, expr), tuple(report)


def _rewritten(expr, memo, kept):
    """The nodes of ``expr`` whose rewrite is part of the result (not under a node kept as written)."""
    used, stack = set(), [expr]
    while stack:
        e = stack.pop()
        if e in used or e in kept or e.is_Atom:
            continue
        used.add(e)
        stack.extend(e.args)
    return used
