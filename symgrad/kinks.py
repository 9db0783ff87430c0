"""Derivatives at kinks: Max/Min ties and Piecewise boundaries, by one convention (functions.KINK).

At a kink the one-sided derivatives differ. For a tie between two values that are functions
of one common value b (a chain of one-variable, smooth nodes: ξ1 = x**2 over x, ξ2 = 0.1*x),
the slopes d value/d b are known locally, so the one-sided derivatives are too, and KINK picks
between them: Max(x, x**2) at 0 has slopes 1 and 0, min-norm gives 0; at 1 it has 1 and 2 and
gives 1. Slopes that are expressions are compared when the code runs. A constant has slope 0
against any value. Values with no common base are unrelated and split the derivative equally
(0 under min-norm when a constant is tied as well: the subgradients then contain 0).

Max/Min with up to five arguments list every tie pattern; with more, one formula whose size is
linear in the number of arguments reads the tie set at run time. A Piecewise whose conditions
compare one value u with numbers (relu written as Piecewise((x, x >= 0), (0, True)), a clamp)
has its boundaries found when it is compiled; where the branches on either side meet with
equal values, the derivative follows KINK instead of the branch that holds there as written.

>>> import sympy as sp
>>> import symgrad as sg
>>> x = sp.Symbol("x")
>>> [sg.compile(e, wrt=[x]).grad(x=0.0)["x"] for e in (sp.Max(x, x**2), sp.Piecewise((x, x >= 0), (0, True)))]
[0.0, 0.0]
"""

from __future__ import annotations

from itertools import combinations

import sympy as sp

from . import functions as F

_DEPTH = 4  # nodes a slope look-down follows below a tied value
_ENUMERATE = 5  # up to this many Max/Min arguments the partial lists every tie pattern


def _ind(cond):
    return sp.Piecewise((1, cond), (0, True))


def chain(t, defs, local):
    """[(base, d t/d base)] nearest first, ``t`` itself first; None for a number.

    ``local(d, u, out)`` is the partial of definition ``d`` in its one input ``u``, or None
    where the look-down stops (a kink, a branch, a pole: see ``rules.lookdown``).

    >>> import sympy as sp
    >>> x, xi = sp.symbols("x xi")
    >>> chain(xi, {xi: 3 * x**2}, lambda d, u, out: sp.diff(d, u))
    [(xi, 1), (x, 6*x)]
    """
    if not t.free_symbols:
        return None
    out = [(t, sp.S.One)]
    cur, s = t, sp.S.One
    for _ in range(_DEPTH):
        d = defs.get(cur) if defs else None
        if d is None or len(d.free_symbols) != 1:
            break
        (u,) = d.free_symbols
        p = local(d, u, cur)
        if p is None:
            break
        s, cur = s * p, u
        out.append((cur, s))
    return out


def common(ta, tb, defs, local, prefer=None):
    """(base, slope of ta, slope of tb) over their nearest common base; base None if unrelated."""
    ca, cb = chain(ta, defs, local), chain(tb, defs, local)
    if ca is None and cb is None:
        return None, sp.S.Zero, sp.S.Zero
    if ca is None or cb is None:
        c = cb if ca is None else ca
        base, s = next(((b, s) for b, s in c if b == prefer), c[0])
        return (base, sp.S.Zero, s) if ca is None else (base, s, sp.S.Zero)
    db = dict(cb)
    for base, s in ca:
        if base in db and (prefer is None or base == prefer or prefer not in db):
            return base, s, db[base]
    return None, sp.S.One, sp.S.One


def _target(left, right):
    """The derivative KINK picks between the one-sided ``left`` and ``right`` (symbolic allowed)."""
    if left.is_Number and right.is_Number:
        return F.at_kink(left, right)
    if F.KINK == "right":
        return right
    if F.KINK == "mean":
        return (left + right) / 2
    F.at_kink(sp.S.Zero, sp.S.One)  # refuses an unknown convention
    return sp.Max(sp.Min(left, right), sp.Min(0, sp.Max(left, right)))  # the point nearest 0


def pair_weight(p, q, left, right):
    """Weight w on the value with slope ``p`` (the other, slope ``q``, gets 1 − w) such that
    w·p + (1 − w)·q is the derivative KINK picks from the one-sided ``left`` and ``right``."""
    t = _target(left, right)
    if p.is_Number and q.is_Number:
        return sp.S.Half if p == q else (t - q) / (p - q)
    if F.KINK == "mean":
        return sp.S.Half
    same = sp.Eq(p, q)
    # NumPy evaluates every branch, so the division must not be 1/0 where the slopes are equal:
    # there q is replaced by p + 1 (a value the Piecewise discards)
    qs = F.where(same, p + 1, q)
    return sp.Piecewise((sp.S.Half, same), ((t - qs) / (p - qs), True))


def _max_pair(a, b, is_max, defs, local):
    """Weight of ``a`` at a tie of Max(a, b) / Min(a, b)."""
    base, p, q = common(a, b, defs, local)
    if base is None:  # unrelated values
        return sp.S.Half
    lo, hi = sp.Min(p, q), sp.Max(p, q)  # numbers when both slopes are
    left, right = (lo, hi) if is_max else (hi, lo)
    return pair_weight(p, q, left, right)


def _slope(t, defs, local):
    """(base, c) with t = c·base for a number c, through the look-down; (None, 0) for a number."""
    c = chain(t, defs, local)
    if c is None:
        return None, sp.S.Zero
    base, s = next(((b, s) for b, s in reversed(c) if s.is_Number), c[0])
    return base, s


def tie_weights(tied, is_max):
    """Weights, summing to at most 1, that tied arguments with numeric slopes (base, c) get."""
    bases = {b for b, _ in tied if b is not None}
    n = len(tied)
    if len(bases) > 1:
        if F.KINK == "min-norm" and any(b is None for b, _ in tied):
            return [sp.S.Zero] * n
        return [sp.S.One / n if b is not None else sp.S.Zero for b, _ in tied]
    cs = [c for _, c in tied]
    lo, hi = min(cs), max(cs)
    left, right = (lo, hi) if is_max else (hi, lo)
    target = F.at_kink(left, right)
    w = [sp.S.Zero] * n
    for i, c in enumerate(cs):
        if c == target:
            w[i] = sp.S.One if tied[i][0] is not None else sp.S.Zero
            return w
    i_lo, i_hi = cs.index(lo), cs.index(hi)
    lam = (hi - target) / (hi - lo)
    w[i_lo] += lam if tied[i_lo][0] is not None else 0
    w[i_hi] += (1 - lam) if tied[i_hi][0] is not None else 0
    return w


def max_min_partial(e, a, out, defs, local):
    """∂ Max(...)/∂a (or Min): 1 for the argument strictly above (below) the others, KINK at ties."""
    is_max = isinstance(e, sp.Max)
    rel = (lambda p, q: p > q) if is_max else (lambda p, q: p < q)
    args = list(e.args)
    i = args.index(a)
    others = [t for t in args if t != a]
    if len(args) == 2:
        b = others[0]
        return sp.Piecewise((1, rel(a, b)), (_max_pair(a, b, is_max, defs, local), sp.Eq(a, b)), (0, True))
    slopes = [_slope(t, defs, local) for t in args]
    branches = [(1, sp.And(*[rel(a, b) for b in others]))]
    if len(args) > _ENUMERATE:
        return _max_min_linear(args, i, out, slopes, is_max, branches)
    rest = [j for j in range(len(args)) if j != i]
    for size in range(len(rest), 0, -1):
        for combo in combinations(rest, size):
            tie = [i] + list(combo)
            w = tie_weights([slopes[j] for j in tie], is_max)[0]
            if w != 0:  # the tie sets are disjoint events, so zero branches can go to the default
                branches.append((w, sp.And(*[sp.Eq(args[j], out) for j in tie],
                                           *[sp.Ne(args[j], out) for j in rest if j not in combo])))
    return sp.Piecewise(*branches, (0, True), evaluate=False)


def _max_min_linear(args, i, out, slopes, is_max, branches):
    """The tie weights of ``max_min_partial`` for many arguments, from one formula of linear size.

    Arguments c·b over one base b can tie only where b = 0 (then all of them do): they get the
    weights ``tie_weights`` gives that group. A tie of several groups splits the derivative
    equally among them; under min-norm a tie that includes a constant gives 0.
    """
    a = args[i]
    base = slopes[i][0]
    tied = [sp.Eq(t, out) for t in args]
    consts = [j for j, (b, _) in enumerate(slopes) if b is None]
    groups: dict = {}
    for j, (b, _) in enumerate(slopes):
        if b is not None:
            groups.setdefault(b, []).append(j)
    mine = groups[base]
    if len(mine) > 1:
        zero_const = [j for j in consts if args[j] == 0]
        w = tie_weights([slopes[j] for j in mine] + [(None, sp.S.Zero)] * bool(zero_const), is_max)
        gw = sp.Piecewise((w[mine.index(i)], sp.Eq(base, 0)), (1, True))
    else:
        gw = sp.S.One
    # where a is tied its own group is; the others are counted at run time
    count = 1 + sp.Add(*[_ind(sp.Or(*[tied[j] for j in g])) for b, g in groups.items() if b != base])
    if F.KINK == "min-norm" and consts:
        others_tied = sp.Or(*[tied[j] for j in range(len(args)) if j not in mine])
        branches.append((0, sp.And(sp.Or(*[tied[j] for j in consts]), others_tied)))
    branches.append((gw / count, tied[i]))
    return sp.Piecewise(*branches, (0, True), evaluate=False)


# --------------------------------------------------------------------------------- Piecewise

def _breakpoints(e):
    """(u, sorted numbers) when every condition of Piecewise ``e`` compares one value u with
    numbers (combined with And/Or/Not); None otherwise."""
    u, points = None, set()
    for pair in e.args:
        cond = pair.cond
        if cond is sp.true:
            continue
        for rel in cond.atoms(sp.Rel):
            lhs, rhs = rel.lhs, rel.rhs
            if lhs.is_Number:
                lhs, rhs = rhs, lhs
            if not rhs.is_Number or not rhs.is_real or not lhs.free_symbols or lhs.free_symbols - {lhs}:
                return None
            if u is None:
                u = lhs
            if lhs != u:
                return None
            points.add(rhs)
        if cond.free_symbols - {u}:
            return None
    return (u, sorted(points)) if u is not None and points else None


def _branch_at(e, u, v):
    for k, pair in enumerate(e.args):
        if bool(pair.cond.subs(u, v)):
            return k
    return None


def piecewise_partial(e, a, out, defs, local):
    """∂ Piecewise/∂a: the indicator of the branches where ``a`` is the value, and KINK at
    boundaries where the branches on either side meet (see the module docstring)."""
    as_written = sp.diff(e, a)
    found = _breakpoints(e)
    if found is None:
        return as_written
    u, points = found
    fixes = []
    for k, b in enumerate(points):
        lo = (points[k - 1] + b) / 2 if k else b - 1
        hi = (points[k + 1] + b) / 2 if k + 1 < len(points) else b + 1
        kl, kr = _branch_at(e, u, lo), _branch_at(e, u, hi)
        if kl is None or kr is None or kl == kr:
            continue
        al, ar = e.args[kl].expr, e.args[kr].expr
        if a not in (al, ar) or _branch_at(e, u, b) not in (kl, kr):
            continue
        w = _boundary_weight(al, ar, u, defs, local)
        if w is None:
            continue
        wa = w * (1 if al == a else 0) + (1 - w) * (1 if ar == a else 0)
        fixes.append((wa, sp.And(sp.Eq(u, b), sp.Eq(al, ar))))
    if not fixes:
        return as_written
    return sp.Piecewise(*fixes, (as_written, True))


def _boundary_weight(al, ar, u, defs, local):
    """Weight on the left branch's value at a boundary in u; None to follow the branch as written."""
    base, p, q = common(al, ar, defs, local, prefer=u)
    if base != u:  # the kink is not along u: a jump in u, with the branches' values meeting by chance
        return None
    return pair_weight(p, q, p, q)
