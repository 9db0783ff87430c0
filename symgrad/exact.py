"""Large exact numbers by name: a table's exact values as a graph, not as expanded trees.

An exact value that would grow large (a chain of 30 nested sines is a tree of depth 60) is
kept as a ``Shared`` atom: a name (``ξ27``, ``dL/dξ5``) standing for its ``definition``, a
small expression over numbers and earlier ``Shared`` values. SymPy treats the atom as a
number, like ``pi``: it evaluates to any precision (``sp.N(v, 50)``), compares and takes
signs, so ``sin``, ``Max`` or a ``Piecewise`` condition over it evaluate as over any exact
number. Evaluation walks the definitions in creation order, once per working precision, so
it is linear in their number and never recurses; each result is confirmed at twice the
working precision (more while the two disagree), so cancellation is caught.

>>> import sympy as sp
>>> a = Shared("ξ3", sp.sin(1) + 1)
>>> b = Shared("ξ4", sp.sin(a))
>>> b, sp.N(b, 20), sp.N(sp.sin(sp.sin(1) + 1), 20)
(ξ4, 0.96359072454183340696, 0.96359072454183340696)
>>> exact_text(b), b > 0
('sin(ξ3)', True)
"""

from __future__ import annotations

import itertools

import mpmath
import sympy as sp
from mpmath.libmp import prec_to_dps

from .checkreport import depth
from .printing import text

__all__ = ["Shared", "share", "has_shared", "exact_text", "definitions", "EXACT_DEPTH", "EXACT_SIZE"]

EXACT_DEPTH = 12  # an exact value nested deeper than this is shared by name
EXACT_SIZE = 120  # ... and so is one whose tree has more nodes than this
_LADDER = (128, 256, 512, 1024, 2048, 4096, 8192)  # working precisions (bits)
_BAD = (sp.zoo, sp.nan, sp.oo, -sp.oo)


class Shared(sp.AtomicExpr):
    """An exact number named ``label`` that stands for ``definition``. Text prints the name (so a
    definition reads by reference: ``sin(ξ3)``); LaTeX, which only table cells use, its decimal."""

    is_number = True
    is_commutative = True
    _serial = itertools.count()

    def __new__(cls, label: str, definition):
        obj = super().__new__(cls)
        obj.label, obj.definition = label, sp.sympify(definition)
        obj.key = next(cls._serial)
        obj.refs = tuple(sorted(obj.definition.atoms(Shared), key=lambda s: s.key))
        obj.at = {}  # working precision (bits) -> value there (an mpmath number)
        return obj

    def _hashable_content(self):
        return (self.key,)

    def __getnewargs__(self):  # pickle and copy: a new number of the same name and definition
        return (self.label, self.definition)

    def _eval_is_extended_real(self):
        v = _value(self, _LADDER[0])
        return None if mpmath.isnan(v) else isinstance(v, mpmath.mpf)

    def _eval_is_finite(self):
        v = _value(self, _LADDER[0])
        return None if mpmath.isnan(v) else not mpmath.isinf(v)

    def _sign(self):
        """-1, 0 or 1 where the value is real and its sign is certain (two precisions agree), else None."""
        v, wp, agreed = self._converged(16)
        if not isinstance(v, mpmath.mpf) or mpmath.isnan(v) or not agreed:
            return None  # complex, undefined, or noise around an exact zero that SymPy did not see
        return (v > 0) - (v < 0)

    def _eval_is_extended_positive(self):
        s = self._sign()
        return None if s is None else s > 0

    def _eval_is_extended_negative(self):
        s = self._sign()
        return None if s is None else s < 0

    def _eval_is_zero(self):
        s = self._sign()
        return None if s is None else s == 0

    def __float__(self):
        v = self._converged(60)[0]
        if not isinstance(v, mpmath.mpf):
            raise TypeError("%s is not a real number (it is %s)" % (self.label, mpmath.nstr(v, 10)))
        return float(v)

    def _sympystr(self, printer):
        return "(%s)" % self.label if "/" in self.label or " " in self.label else self.label

    def _latex(self, printer):
        return r"\approx " + printer._print(sp.Float(sp.N(self, 10), 10))

    def _sympyrepr(self, printer):
        return "Shared(%r)" % self.label

    def _eval_evalf(self, prec):
        """This number to ``prec`` bits: at two working precisions, raised until they agree.
        Inside the evaluation of a definition at some working precision, its value there."""
        if _working:
            return _number(_value(self, _working[-1]), _working[-1])
        return _number(*self._converged(prec)[:2])

    def _converged(self, prec):
        """(value, working precision, whether two working precisions agreed to ``prec`` bits)."""
        rungs = [p for p in _LADDER if p >= prec + 64] or [_LADDER[-1]]
        low = _value(self, rungs[0])
        for wp in rungs[1:] + [2 * rungs[-1]]:
            high = _value(self, wp)
            if _close(low, high, prec):
                return high, wp, True
            low = high
        return high, wp, False


_working: list = []  # the working precision of the definitions being evaluated


def _value(target: Shared, wp: int):
    """``target`` at working precision ``wp`` (an mpmath number): first what it refers to, in
    creation order, so that no evaluation recurses into another."""
    if wp in target.at:
        return target.at[wp]
    need, stack, seen = [], [target], set()
    while stack:
        s = stack.pop()
        if s.key in seen or wp in s.at:
            continue
        seen.add(s.key)
        need.append(s)
        stack.extend(s.refs)
    _working.append(wp)
    try:
        with mpmath.workprec(wp):
            for s in sorted(need, key=lambda s: s.key):
                try:
                    s.at[wp] = _mp(s.definition, wp)
                except (ValueError, TypeError, ZeroDivisionError):  # nothing numeric (nan, a symbolic leftover)
                    s.at[wp] = mpmath.mpf("nan")
    finally:
        _working.pop()
    return target.at[wp]


_FUNCTIONS = {sp.exp: mpmath.exp, sp.log: mpmath.log, sp.sin: mpmath.sin, sp.cos: mpmath.cos, sp.tan: mpmath.tan,
              sp.sinh: mpmath.sinh, sp.cosh: mpmath.cosh, sp.tanh: mpmath.tanh, sp.asin: mpmath.asin,
              sp.acos: mpmath.acos, sp.atan: mpmath.atan, sp.asinh: mpmath.asinh, sp.acosh: mpmath.acosh,
              sp.atanh: mpmath.atanh, sp.erf: mpmath.erf, sp.erfc: mpmath.erfc, sp.Abs: abs}


def _mp(e, wp):
    """``e`` (a definition: small, over numbers and evaluated Shared values) at ``wp`` bits, by
    mpmath for arithmetic and the common functions (no SymPy Float built: see ``_evalf``),
    else by SymPy's evalf."""
    if isinstance(e, Shared):
        return e.at[wp]
    if e.is_Rational:
        return mpmath.mpf(e.p) / e.q if e.q != 1 else mpmath.mpf(e.p)
    if e.is_Float:
        return mpmath.mpf(e._mpf_)
    if e.is_Add or e.is_Mul or e.is_Pow or type(e) in _FUNCTIONS:
        args = [_mp(a, wp) for a in e.args]
        if e.is_Add:
            return mpmath.fsum(args)
        if e.is_Mul:
            return mpmath.fprod(args)
        if e.is_Pow:
            return mpmath.power(*args)
        return _FUNCTIONS[type(e)](*args)
    try:
        return e._to_mpmath(wp)  # pi, I, a Piecewise, a user's function: SymPy (Shared inside: by the table)
    except (ValueError, TypeError):  # a function that evaluates itself only on Floats (relu)
        if not isinstance(e, sp.Function):
            raise
        return e.func(*[_number(_mp(a, wp), wp) for a in e.args])._to_mpmath(wp)


def _number(v, wp: int):
    """An mpmath number (computed at ``wp`` bits) as a SymPy one."""
    if isinstance(v, mpmath.mpc):
        return sp.Float._new(v.real._mpf_, wp) + sp.I * sp.Float._new(v.imag._mpf_, wp)
    return sp.Float._new(v._mpf_, wp) if not mpmath.isnan(v) else sp.nan


def _evalf(x: Shared, prec: int, options) -> tuple:
    """SymPy's evalf of a Shared number: (real mpf, imaginary mpf, their accuracies). Registered in
    SymPy's table, so that no Float is built on the way: Floats of equal value hash alike, and a
    chain converging to one number would fill SymPy's caches with colliding keys."""
    v = _value(x, _working[-1]) if _working else x._converged(prec)[0]
    if isinstance(v, mpmath.mpc):
        return v.real._mpf_ or None, v.imag._mpf_ or None, prec, prec
    if mpmath.isnan(v):
        raise NotImplementedError
    return (v._mpf_, None, prec, None) if v else (None, None, None, None)


def _register():
    from sympy.core import evalf as E
    if not E.evalf_table:
        E._create_evalf_table()
    E.evalf_table[Shared] = _evalf


def _close(a, b, prec) -> bool:
    if a == b or mpmath.isnan(a) or mpmath.isnan(b):
        return True
    return abs(a - b) <= abs(b) * mpmath.ldexp(1, -(prec + 4))


def has_shared(v) -> bool:
    """Whether ``v`` is or contains a Shared number (then it prints by reference)."""
    return isinstance(v, Shared) or (not v.is_Atom and v.has(Shared))


def share(v, label: str, always: bool = False):
    """``v`` itself while it is small and refers to no Shared number, else ``Shared(label, v)``
    (``always``: whenever it is not a plain number). Undefined values (zoo, nan) stay as they are,
    so that the table can name them."""
    if v.is_Atom or v.has(*_BAD):
        return v
    if not always and not has_shared(v) and depth(v, EXACT_DEPTH + 1) <= EXACT_DEPTH \
            and _size(v, EXACT_SIZE + 1) <= EXACT_SIZE:
        return v
    return Shared(label, v)


def _size(v, cap: int) -> int:
    n = 0
    for _ in sp.preorder_traversal(v):
        n += 1
        if n >= cap:
            break
    return n


def definitions(values) -> dict:
    """{label: definition text} of every Shared number the exact ``values`` refer to, directly
    or through other Shared numbers, in creation order (empty when none is shared)."""
    found, stack = {}, [a for v in values for a in (v.atoms(Shared) if has_shared(v) else ())]
    while stack:
        s = stack.pop()
        if s.key not in found:
            found[s.key] = s
            stack.extend(s.refs)
    return {s.label: text(s.definition) for _, s in sorted(found.items())}


def exact_text(v) -> str:
    """Text of an exact value; a Shared one is its definition, by the names it refers to."""
    return text(v.definition) if isinstance(v, Shared) else text(v)


_register()
