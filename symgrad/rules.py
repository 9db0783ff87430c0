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
from itertools import combinations
from typing import Callable

import sympy as sp
from sympy.core.function import Application

from . import functions as F
from . import ops_matrix as O
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


# ---------------------------------------------------------------------------------------------
# Kinks: slopes one or a few nodes down, Max/Min ties, Piecewise boundaries, roots of even powers

_DEPTH = 6  # links a look-down follows below a Max/Min argument
_ENUMERATE = 5  # up to this many arguments a Max/Min partial lists every tie pattern; above, one linear formula
_EXPAND = 16  # nodes a Piecewise branch may have for its boundary to get the kink convention


def _ind(cond):
    """1 where ``cond`` holds, else 0 (a number when cond is decided)."""
    return sp.Piecewise((1, cond), (0, True))


def _smooth(e) -> bool:
    """Whether a look-down may differentiate through node ``e``: differentiable, with partials that
    are finite for all finite arguments (no kink, step, branch, pole or root, no matrix operation)."""
    if isinstance(e, O.MatOp):
        return False
    if e.is_Pow:
        return e.exp.is_Integer and e.exp >= 0
    if isinstance(e, (sp.Piecewise, sp.Heaviside, sp.sign, sp.floor, sp.ceiling) + _KINKED):
        return False
    try:
        return finite_everywhere(e)
    except UnsupportedError:
        return False


def _own_partial(d, u, out):
    rule = rule_for(d)
    return rule.partial(d, u, out, None) if rule.uses_defs else rule.partial(d, u, out)


def _candidates(t, defs):
    """[(base, d t/d base)] for a Max/Min argument, nearest base first; None for a constant.

    ``t`` itself is the first base (slope 1). Below it the look-down follows nodes of one
    variable (ξ1 = x**2: base x, slope 2*x; ξ1 = 0.1*x: slope 0.1) through smooth operations,
    multiplying the local partials (in output-reuse form, so they read computed values). A node
    of several inputs that are all leaves (ξ1 = a*x) ends the walk with one base per input,
    the others held fixed (base x, slope a; base a, slope x).
    """
    if not t.free_symbols:
        return None
    out = [(t, sp.S.One)]
    cur, s = t, sp.S.One
    for _ in range(_DEPTH):
        d = defs.get(cur) if defs else None
        if d is None or not _smooth(d):
            break
        syms = sorted(d.free_symbols, key=sp.default_sort_key)
        if len(syms) == 1:
            s = s * _own_partial(d, syms[0], cur)
            cur = syms[0]
            out.append((cur, s))
            continue
        if not any(cur2 in defs for cur2 in syms):
            out.extend((u, s * _own_partial(d, u, cur)) for u in syms)
        break
    return out


def _groups(args, defs):
    """(group, slope) for each Max/Min argument; (None, 0) for a constant.

    Arguments that are functions of one common base b share a group, with slope d arg/d b
    (the nearest base all of them reach): Max(x, x**2, -x) is one group over x with slopes
    1, 2*x, -1. Arguments in different groups are unrelated.
    """
    cands = [_candidates(t, defs) for t in args]
    groups = []  # [member indices, common bases nearest first]
    for j, c in enumerate(cands):
        if c is None:
            continue
        bases = [b for b, _ in c]
        for g in groups:
            common = [b for b in g[1] if b in bases]
            if common:
                g[0].append(j)
                g[1] = common
                break
        else:
            groups.append([[j], bases])
    out = [(None, sp.S.Zero)] * len(args)
    for k, (members, common) in enumerate(groups):
        for j in members:
            out[j] = (k, dict(cands[j])[common[0]])
    return out


def _split(left, right):
    """The weight w on the left one-sided derivative such that w·left + (1 − w)·right is the
    derivative the kink convention picks (exact numbers when the slopes are numbers)."""
    if F.KINK == "right":
        return sp.S.Zero
    if F.KINK == "mean":
        return sp.S.Half
    F.at_kink(0, 1)  # refuses an unknown convention
    if sp.expand(right - left) == 0:
        return sp.S.One
    # min-norm: the point of [left, right] closest to 0
    return sp.Piecewise((right / (right - left), left * right < 0), (1, sp.Abs(left) <= sp.Abs(right)), (0, True))


def _pick(left, right):
    """The derivative the kink convention picks from the one-sided ``left`` and ``right``."""
    left, right = sp.sympify(left), sp.sympify(right)
    if left.is_Number and right.is_Number:
        return F.at_kink(left, right)
    if F.KINK == "right":
        return right
    if F.KINK == "mean":
        return (left + right) / 2
    F.at_kink(0, 1)
    return sp.Max(sp.Min(left, right), sp.Min(0, sp.Max(left, right)))


def _tie_weights(tied, is_max):
    """Weights, summing to at most 1, that the tied arguments of a Max/Min get at a tie.

    ``tied`` is a list of (group, slope) (``_groups``). When the tied arguments are functions of
    one base (constants fit any base with slope 0), the one-sided derivatives are the extreme
    slopes (for Max the largest from the right, the smallest from the left; Min the reverse)
    and KINK picks between them: the weight goes to the first argument with the extreme
    slope. Slopes that are expressions (2*x) give weights that are decided when the code runs.
    Unrelated arguments split the derivative equally (0 under min-norm when a constant ties).
    """
    n = len(tied)
    groups = {g for g, _ in tied if g is not None}
    if len(groups) > 1:
        if F.KINK == "min-norm" and any(g is None for g, _ in tied):
            return [sp.S.Zero] * n
        return [sp.S.One / n if g is not None else sp.S.Zero for g, _ in tied]
    if not groups:
        return [sp.S.Zero] * n
    s = [c for _, c in tied]
    # left: the argument that wins just below the tie (Max: smallest slope), right: just above
    below = (lambda p, q: p <= q) if is_max else (lambda p, q: p >= q)
    above = (lambda p, q: p >= q) if is_max else (lambda p, q: p <= q)

    if n == 2 and all(g is not None for g, _ in tied):  # the common case, in a form that reads well
        (p, q), w = s, []
        for i, (mine, other) in enumerate(((p, q), (q, p))):
            left = (lambda u, v: u < v) if is_max else (lambda u, v: u > v)  # i wins just below the tie
            w.append(sp.Piecewise((1 - i, sp.Eq(mine, other)), (_split(mine, other), left(mine, other)),
                                  (1 - _split(other, mine), True)))
        return w

    def first(i, better):  # i has the extreme slope and no earlier argument has it too
        return sp.And(*[better(s[i], s[j]) if j > i else sp.Not(better(s[j], s[i])) for j in range(n) if j != i])

    lo, hi = sp.Min(*s), sp.Max(*s)
    lam = _split(lo, hi) if is_max else _split(hi, lo)
    return [lam * _ind(first(i, below)) + (1 - lam) * _ind(first(i, above)) if tied[i][0] is not None
            else sp.S.Zero for i in range(n)]


def _max_min(e, a, out, defs=None):
    # The argument strictly above (Max) or below (Min) all others gets the whole derivative.
    # At a tie the derivative is the one KINK picks from the one-sided derivatives, which are
    # known locally when the tied arguments are constants or functions of one base (_groups):
    # Max(x, 0) and Min(x, 0) give 0 at 0, Max(α·x, x) gives α, Max(x, -x) gives 0,
    # Max(x, x**2) gives 0 at 0 and 1 at 1.
    is_max = isinstance(e, sp.Max)
    rel = (lambda p, q: p > q) if is_max else (lambda p, q: p < q)
    args = list(e.args)
    i = args.index(a)
    slopes = _groups(args, defs)
    others = [t for t in args if t != a]
    if len(args) == 2:
        w = _tie_weights(slopes, is_max)[i]
        b = others[0]
        return sp.Piecewise((1, rel(a, b)), (w, sp.Eq(a, b)), (0, True))
    if len(args) > _ENUMERATE:
        return _max_min_linear(args, i, out, slopes, is_max)
    branches = [(1, sp.And(*[rel(a, b) for b in others]))]
    rest = [j for j in range(len(args)) if j != i]
    for size in range(len(rest), 0, -1):
        for combo in combinations(rest, size):
            tie = [i] + list(combo)
            w = _tie_weights([slopes[j] for j in tie], is_max)[0]
            if w != 0:  # the tie sets are disjoint events, so zero branches can go to the default
                branches.append((w, sp.And(*[sp.Eq(args[j], out) for j in tie],
                                           *[sp.Ne(args[j], out) for j in rest if j not in combo])))
    return sp.Piecewise(*branches, (0, True), evaluate=False)


def _max_min_linear(args, i, out, slopes, is_max):
    """``_max_min`` for many arguments: the same weights as the tie patterns would list, from one
    formula whose size is linear in the number of arguments (the tie set is read at run time)."""
    a = args[i]
    g, s_i = slopes[i]
    tied = [sp.Eq(t, out) for t in args]
    count = sp.Add(*[_ind(c) for c in tied])
    consts = [j for j, (h, _) in enumerate(slopes) if h is None]
    # related: the tied members of a's group and the tied constants; an untied one reads as a's slope
    mine = [j for j, (h, _) in enumerate(slopes) if h == g or h is None]
    masked = [sp.Piecewise((slopes[j][1], tied[j]), (s_i, True)) for j in mine]
    lo, hi = sp.Min(*masked), sp.Max(*masked)
    left, right = (lo, hi) if is_max else (hi, lo)
    lam = _split(left, right)

    def first(target):  # a has the slope ``target`` and no earlier tied related argument has it
        return sp.And(sp.Eq(s_i, target), *[sp.Not(sp.And(tied[j], sp.Eq(slopes[j][1], target)))
                                            for j in mine if j < i])

    related = lam * _ind(first(left)) + (1 - lam) * _ind(first(right))
    if F.KINK == "min-norm" and consts:
        unrelated = sp.Piecewise((0, sp.Or(*[tied[j] for j in consts])), (1 / count, True))
    else:
        unrelated = 1 / count
    groups = sorted({h for h, _ in slopes if h is not None})
    pieces = [(1, sp.And(tied[i], sp.Eq(count, 1)))]
    if len(groups) > 1:
        present = sp.Add(*[_ind(sp.Or(*[tied[j] for j, (h, _) in enumerate(slopes) if h == k])) for k in groups])
        pieces += [(related, sp.And(tied[i], sp.Eq(present, 1))), (unrelated, tied[i])]
    else:
        pieces.append((related, tied[i]))
    return sp.Piecewise(*pieces, (0, True))


def _leaf_form(v, defs, seen=None):
    """Node ``v`` written in the inputs (a bounded expansion through smooth nodes), or None."""
    if not v.free_symbols:
        return v  # a number
    if not (defs and v in defs):
        return v if v.is_Symbol else None  # an input
    seen = {} if seen is None else seen
    if v in seen:
        return seen[v]
    d = defs[v]
    if len(seen) >= _EXPAND or not _smooth(d):
        return None
    seen[v] = None
    sub = {}
    for s in d.free_symbols:
        f = _leaf_form(s, defs, seen)
        if f is None:
            return None
        sub[s] = f
    seen[v] = d.xreplace(sub)
    return seen[v]


def _linear_boundary(c):
    """(f, symbols, up) when condition ``c`` is ``f > 0``, ``f >= 0``, ``f < 0`` or ``f <= 0`` with f
    linear, with number coefficients, in one or two inputs (``up``: c holds where f > 0); else None."""
    if not isinstance(c, (sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan, sp.LessThan)):
        return None
    f = c.lhs - c.rhs
    syms = sorted(f.free_symbols, key=sp.default_sort_key)
    if not 1 <= len(syms) <= 2:
        return None
    coeffs = [f.diff(u) for u in syms]
    if any(not k.is_number or k.is_zero is not False or not k.is_extended_real for k in coeffs):
        return None
    if (f - sum(k * u for k, u in zip(coeffs, syms))).expand().free_symbols:
        return None
    return f, syms, isinstance(c, (sp.StrictGreaterThan, sp.GreaterThan))


def _at(expr, sub):
    return sp.sympify(expr).xreplace(sub) if sub else expr


def _same(p, q) -> bool:
    d = sp.expand(p - q)
    return d == 0 or (sp.count_ops(d) < 60 and sp.simplify(d) == 0)


def _boundaries(e, defs):
    """The boundary points of Piecewise ``e`` where the kink convention decides.

    Returns [(condition, {symbol: partial there})]: at points where ``condition`` holds, the
    derivative of ``e`` by each symbol (inputs, never the branch nodes, which get 0 there).
    A boundary qualifies when its condition is ``f > 0`` (≥, <, ≤) with f linear in one input u
    (``x >= 0``, ``2*x - 1 < 0``) or two (``x >= y``), the branch on each side of it is a number,
    an input or a node written in the inputs through at most _EXPAND smooth operations
    (``_smooth``: no kink, root, pole or branch inside), and which branch is taken on each side
    is decided there (statically, or at run time by conditions of other inputs):

    * one input u: the one-sided derivatives by u are those of the two branches, and KINK picks
      (also at a jump); the other inputs get the derivative of the branch taken at the point;
    * two inputs: only where the branches agree along the boundary (a kink, not a jump); the
      gradient is the combination of the two branches' gradients KINK picks (min-norm: the one of
      least norm, which gives Piecewise((x, x >= y), (y, True)) 1/2 each, as Max(x, y)).
    """
    pairs = e.args
    n = len(pairs)
    out = []
    for j in range(n - 1):
        lin = _linear_boundary(pairs[j].cond)
        if lin is None:
            continue
        f, syms, up = lin
        u = syms[0]
        k = f.diff(u)
        at = {u: sp.expand(-(f - k * u) / k)}  # the boundary: u as a number (or as a function of the other input)
        point = sp.Eq(u, at[u]) if len(syms) == 1 else sp.Eq(f, 0)

        def decided(c):  # c at the boundary: True/False when known there, else None; "tie" when c is on it
            if c is sp.true:
                return True
            for r in c.atoms(sp.core.relational.Relational) | ({c} if c.is_Relational else set()):
                if _same(_at(r.lhs - r.rhs, at), 0):
                    return "tie"  # a comparison of c changes at this boundary too: which branch is across is unclear
            v = c.xreplace(at)
            return bool(v) if v in (sp.true, sp.false) else None

        earlier = []
        for k in range(j):
            d = decided(pairs[k].cond)
            if d == "tie" or d is True:
                earlier = None
                break
            if d is None:
                earlier.append(sp.Not(pairs[k].cond))
        if earlier is None:
            continue
        others, runtime = [], []  # the branches that may be taken just across, with when
        for m in range(j + 1, n):
            d = decided(pairs[m].cond)
            if d == "tie":
                others = None
                break
            if d is False:
                continue
            when = [pairs[m].cond] if d is None else []
            others.append((m, sp.And(*when, *[sp.Not(c) for c in runtime])))
            if d is True:
                break
            runtime.append(pairs[m].cond)
        else:
            others = None  # no branch is sure to hold across the boundary
        if not others:
            continue
        fj = _leaf_form(pairs[j].expr, defs)
        if fj is None:
            continue
        holds = pairs[j].cond.xreplace(at) is sp.true  # whether branch j is the one taken at the point
        for m, when in others:
            fm = _leaf_form(pairs[m].expr, defs)
            if fm is None:
                continue
            parts = _boundary_partials(fj, fm, f, syms, up, at, holds)
            if parts is None:
                continue
            out.append((sp.And(point, *earlier, when), parts))
    return out


def _boundary_partials(fj, fm, f, syms, up, at, holds):
    """{symbol: derivative} at a boundary between branch fj (where the condition holds) and fm."""
    leaves = sorted((sp.sympify(fj).free_symbols | sp.sympify(fm).free_symbols) - set(syms), key=sp.default_sort_key)
    if len(syms) == 1:
        u = syms[0]
        sj, sm = _at(sp.diff(fj, u), at), _at(sp.diff(fm, u), at)
        if _same(sj, sm):
            return None  # no kink: the branch taken there has the derivative already
        right_is_j = up == bool(f.diff(u) > 0)  # branch j holds just above the threshold
        left, right = (sm, sj) if right_is_j else (sj, sm)
        taken = fj if holds else fm
        parts = {u: _pick(left, right)}
        parts.update({y: _at(sp.diff(taken, y), at) for y in leaves})
        return parts
    if not _same(_at(fj, at), _at(fm, at)):
        return None  # a jump along the boundary: the branch whose condition holds decides
    names = list(syms) + leaves
    gj = [_at(sp.diff(fj, y), at) for y in names]
    gm = [_at(sp.diff(fm, y), at) for y in names]
    if all(_same(p, q) for p, q in zip(gj, gm)):
        return None  # no kink
    if F.KINK == "right":
        lam = sp.S.One if up else sp.S.Zero
    elif F.KINK == "mean":
        lam = sp.S.Half
    else:
        F.at_kink(0, 1)
        dd = sp.Add(*[(p - q) ** 2 for p, q in zip(gj, gm)])
        md = sp.Add(*[-q * (p - q) for p, q in zip(gj, gm)])
        if dd == 0:
            lam = sp.S.One
        else:
            raw = md / sp.Piecewise((dd, sp.Ne(dd, 0)), (1, True))
            lam = sp.Max(0, sp.Min(1, raw))
    return {y: lam * p + (1 - lam) * q for y, p, q in zip(names, gj, gm)}


def _piecewise_joint(e, args, out, defs):
    """Partials of a Piecewise node: those of the branch taken, except at the boundaries where
    the kink convention decides (``_boundaries``), where the derivative goes straight to the
    inputs (the branch nodes get 0 there)."""
    found = _boundaries(e, defs)
    if not found:
        return None
    extra = sorted({y for _, parts in found for y in parts} - set(args), key=sp.default_sort_key)
    pairs = []
    for a in list(args) + extra:
        base = sp.diff(e, a) if a in args else sp.S.Zero
        tail = base.args if isinstance(base, sp.Piecewise) else ((base, True),)
        pieces = [(parts.get(a, sp.S.Zero), cond) for cond, parts in found]
        pairs.append((a, sp.Piecewise(*pieces, *tail)))
    return tuple(pairs)


def _root_joint(e, args, out, defs):
    """(b**p)**(1/p) with p even is |b|: its partial goes straight to b with the kink convention of
    Abs (sqrt(x**2) has derivative 0 at 0 under min-norm, not 0·∞); the square gets 0."""
    base, q = e.args
    d = defs.get(base) if defs else None
    if d is None or not d.is_Pow or not (d.exp.is_Integer and d.exp.is_even and d.exp > 0) or d.exp * q != 1:
        return None
    b = d.base
    if not b.is_Symbol:
        return None
    return ((base, sp.S.Zero), (b, _abs(sp.Abs(b), b, out)))


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
    # Optional ``joint(e, args, out, defs)``: all partials at once, ((symbol, partial), ...), or None for
    # the per-argument ones. It may differentiate by a symbol below the arguments (an input), where
    # a kink makes the chain through the arguments 0·∞ or unable to tell the one-sided slopes apart.
    joint: Callable = None


RULES: tuple = (
    Rule("add", lambda e: e.is_Add, _add_partial, "linear combination; d = the coefficient"),
    Rule("mul", lambda e: e.is_Mul, _mul_partial, "product; d = the other factors"),
    Rule("reciprocal", _is_pow(-1), lambda e, a, out: -out**2, "1/a; d = -out**2", safe=1),
    Rule("sqrt", _is_pow(sp.S.Half), lambda e, a, out: 1 / (2 * out), "square root; d = 1/(2 out)", safe=1,
         joint=_root_joint),
    Rule("square", _is_pow(2), description="a**2"),
    Rule("pow", lambda e: e.is_Pow and e.exp.is_Number, description="power with a constant exponent", safe=1,
         joint=_root_joint),
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
         lambda e, a, out: out * (1 - out), "logistic sigmoid; d = out (1 - out)"),
    Rule("tanh", lambda e: isinstance(e, sp.tanh), lambda e, a, out: 1 - out**2, "tanh; d = 1 - out**2"),
    Rule("abs", lambda e: isinstance(e, sp.Abs), _abs, "absolute value; d = sign(a), kink at 0"),
    Rule("max", lambda e: isinstance(e, (sp.Max, sp.Min)), _max_min,
         "maximum / minimum; d = 1 for the extreme argument, kink convention at ties", uses_defs=True),
    Rule("step", lambda e: isinstance(e, (sp.Heaviside, sp.sign, sp.floor, sp.ceiling)), _step_partial,
         "piecewise-constant step; d = 0, also at the jump (the kink convention); Heaviside(x, h0) "
         "is h0 at x = 0, so d/dh0 = 1 there"),
    Rule("sinc", lambda e: isinstance(e, sp.sinc),
         lambda e, a, out: sp.Piecewise((0, sp.Eq(a, 0)), ((sp.cos(a) - out) / a, True)),
         "sin(a)/a; d = (cos(a) - out)/a, 0 at a = 0"),
    Rule("piecewise", lambda e: isinstance(e, sp.Piecewise),
         description="branches; d flows into the taken branch, the kink convention at simple boundaries",
         joint=_piecewise_joint),
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


_FINITE = ("add", "mul", "square", "exp", "logsumexp", "sigmoid", "tanh", "abs", "max", "step")


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
    joint = rule.joint(node.expr, node.args, node.symbol, defs) if rule.joint is not None else None
    if joint is None:
        joint = [(a, rule.partial(node.expr, a, node.symbol, defs) if rule.uses_defs
                  else rule.partial(node.expr, a, node.symbol)) for a in node.args]
    out = []
    for a, p in joint:
        if p.has(sp.Derivative, sp.Subs):
            f = node.expr.func if isinstance(node.expr, sp.Function) else type(node.expr)
            raise UnsupportedError(
                "no derivative known for %s in %s: SymPy cannot differentiate it; define it as a "
                "sympy.Function subclass with an fdiff method, or rewrite it with differentiable functions"
                % (getattr(f, "__name__", f), sp.sstr(node.source)))
        out.append((a, p))
    return tuple(out)
