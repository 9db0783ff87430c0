"""What users pass in: parameter lists (``wrt``, ``args``) normalised and checked, shared by
``compile``, ``table`` and ``check_grads``.

>>> import sympy as sp
>>> w, x = sp.symbols("w x")
>>> as_symbols("w", "wrt", known=[w, x])
[w]
>>> sorted(free_symbols(sp.exp(w*x) + w), key=str)
[w, x]
"""

from __future__ import annotations

import decimal
import difflib
import math
import numbers

import numpy as np
import sympy as sp

from .errors import InputError

__all__ = ["as_symbols", "check_wrt", "free_symbols", "float_array", "real_number", "broadcast_message"]


def as_symbols(items, what: str, known=(), strict: bool = True) -> list:
    """Check a list of symbols (a single symbol or name is accepted too) and return it as a list.

    A name (str) is resolved to the symbol of that name in ``known`` (the expression's symbols),
    so ``wrt="w"`` works even when the expression's w carries assumptions; a symbol that only
    shares its name with one of ``known`` raises InputError saying so.
    """
    if items is None:
        return []
    if isinstance(items, (sp.Basic, str)):
        items = [items]
    by_name = {k.name: k for k in known}
    out, seen = [], set()
    for s in items:
        if isinstance(s, str):
            if s not in by_name and known and strict:
                close = difflib.get_close_matches(s, list(by_name), 1)
                raise InputError("%s names %r, which is not in the expression%s; its symbols: %s"
                                 % (what, s, " (did you mean %r?)" % close[0] if close else "",
                                    ", ".join(sorted(by_name))))
            s = by_name.get(s, sp.Symbol(s))
        elif isinstance(s, sp.Symbol) and s.name in by_name and by_name[s.name] != s:
            raise InputError("%s %s is not the expression's %s: they differ in their assumptions (%s vs %s), so "
                             "SymPy treats them as different symbols; pass the expression's symbol or its name "
                             "as a string" % (what, s.name, s.name, _assumptions(s), _assumptions(by_name[s.name])))
        if not isinstance(s, (sp.Symbol, sp.MatrixSymbol)):
            raise InputError("%s must be SymPy symbols, got %s (%s)" % (what, sp.sstr(s), type(s).__name__))
        if s in seen:
            raise InputError("%s lists %s twice" % (what, s))
        seen.add(s)
        out.append(s)
    return out


def _assumptions(s) -> str:
    given = {k: v for k, v in s.assumptions0.items() if k in ("real", "positive", "negative", "integer",
                                                            "nonnegative", "complex")}
    return ", ".join("%s=%s" % kv for kv in sorted(given.items())) or "no assumptions"


def free_symbols(expr) -> set:
    """The symbols of ``expr``, visiting each distinct subexpression once.

    ``expr.free_symbols`` walks every path of the tree, which is exponential in the depth
    of an expression with shared subexpressions (a chain of tanh layers).
    """
    seen, out, stack = set(), set(), [expr]
    while stack:
        e = stack.pop()
        if e.is_Symbol:
            out.add(e)
        elif e not in seen:
            seen.add(e)
            stack.extend(e.args)
    return out


def check_wrt(expr, wrt, args, free=None):
    """A parameter may be absent from the expression (its derivative is 0, as sympy.diff and JAX
    say); it must not also be an argument."""
    wrt_set = set(wrt)
    overlap = [a for a in args if a in wrt_set]
    if overlap:
        raise InputError("%s is both in args and in wrt; list it once" % overlap[0])


# ---- values: the slow path of binding (symgrad.compiled converts floats and float arrays itself) ----

def _shown(v) -> str:
    text = repr(v) if not isinstance(v, sp.Basic) else sp.sstr(v)
    return text if len(text) < 60 else "a %s" % type(v).__name__


def real_number(name: str, v, where: str = "") -> float:
    """``v`` as a Python float, for a value NumPy cannot read as a number by itself: a SymPy
    number (``Integer``, ``Rational``, ``Float``, ``pi``, ``sqrt(2)``), a ``Fraction``, a
    ``Decimal``, an int beyond int64, any real object with ``__float__``. Raises InputError
    for complex and non-real values, for expressions with symbols, for numbers that do not
    fit in a float64 (10**400) and for anything that is not a number. A NaN or inf stays one
    (the caller's finiteness check reports it). ``where``: " at index (i, j)" for an array entry.

    >>> from fractions import Fraction
    >>> real_number("x", Fraction(1, 4)), real_number("x", sp.Rational(1, 2)), real_number("x", 2**70)
    (0.25, 0.5, 1.1805916207174113e+21)
    """
    what = "value of %r%s" % (name, where)
    if isinstance(v, sp.Basic):
        return _sympy_number(what, v)
    if isinstance(v, (str, bytes, np.ndarray)) or v is None:
        raise InputError("%s is %s (%s), not a number or numeric array" % (what, _shown(v), type(v).__name__))
    if isinstance(v, numbers.Complex) and not isinstance(v, numbers.Real):
        raise InputError("%s is %s, a complex number; symgrad computes with real float64 values: pass the real "
                         "part (v.real) if the imaginary part is 0" % (what, _shown(v)))
    try:
        f = float(v)
    except OverflowError:
        raise InputError("%s: %s does not fit in a float64 (largest about 1.8e308); rescale the input"
                         % (what, _int_text(v))) from None
    except (TypeError, ValueError, ArithmeticError):
        raise InputError("%s is %s (%s), not a number or numeric array" % (what, _shown(v), type(v).__name__)) from None
    if math.isinf(f):
        try:
            infinite = v == math.inf or v == -math.inf
        except Exception:  # noqa: BLE001 - a comparison the value does not support: treat as given inf
            infinite = True
        if not infinite:
            raise InputError("%s: %s does not fit in a float64 (largest about 1.8e308); rescale the input"
                             % (what, _int_text(v)))
    return f


def _int_text(v) -> str:
    """A huge number shortened: 10**400 prints as an integer of 401 digits."""
    if isinstance(v, int) and not isinstance(v, bool):
        digits = len(str(abs(v)))
        if digits > 20:
            return "an integer of %d digits (about %s1e%d)" % (digits, "-" if v < 0 else "", digits - 1)
    text = str(v)
    return text if len(text) <= 40 else text[:20] + "..." + text[-10:]


def _sympy_number(what: str, v) -> float:
    if not isinstance(v, sp.Expr):
        raise InputError("%s is %s (%s), not a number or numeric array" % (what, _shown(v), type(v).__name__))
    if v.free_symbols:
        raise InputError("%s is the expression %s, which still has the symbol(s) %s; pass a number (substitute "
                         "values first with .subs)" % (what, _shown(v), ", ".join(sorted(map(str, v.free_symbols)))))
    n = v if v.is_Float or v.is_Rational else v.evalf(30)
    if n.is_extended_real is False or (not n.is_Number and n.has(sp.I)):
        raise InputError("%s is %s, which is not a real number; symgrad computes with real float64 values"
                         % (what, _shown(v)))
    if not n.is_Number:
        raise InputError("%s is %s, which SymPy cannot evaluate to a number; pass a number" % (what, _shown(v)))
    f = float(n)
    if math.isinf(f) and n.is_finite:
        raise InputError("%s: %s does not fit in a float64 (largest about 1.8e308); rescale the input"
                         % (what, _int_text(int(n)) if n.is_Integer else sp.sstr(n.evalf(6))))
    return f


def float_array(name: str, v, a=None) -> np.ndarray:
    """``v`` as a float64 array (0-d for a single value), when ``np.asarray`` did not give a real
    numeric array (``a``: its result, or None where it failed): an object array or list of SymPy
    numbers, Fractions, Decimals or huge ints converts entry by entry (``real_number``); a
    complex array, strings or a ragged list raise InputError naming ``name``. Never writes into
    ``v``.

    >>> from fractions import Fraction
    >>> float_array("x", [Fraction(1, 2), sp.Integer(3)])
    array([0.5, 3. ])
    """
    if a is None:
        try:
            a = np.asarray(v, dtype=object)
        except Exception:  # noqa: BLE001 - anything NumPy cannot read is the user's value
            a = None
        if a is None or (a.dtype.kind == "O" and any(isinstance(e, (list, tuple, np.ndarray)) for e in a.flat)):
            raise InputError("value of %r is %s (%s), not a number or numeric array (a ragged list?); pass a "
                             "number or an array of numbers of one shape" % (name, _shown(v), type(v).__name__))
    kind = a.dtype.kind
    if a.ndim == 0 and kind in "cO":
        return np.array(real_number(name, a[()] if isinstance(v, (list, tuple, np.ndarray)) else v))
    if kind == "c":
        raise InputError("value of %r is a complex array; symgrad computes with real float64 values: pass its real "
                         "part (np.real) if the imaginary parts are 0" % name)
    if kind != "O":
        raise InputError("value of %r is %s (%s, dtype %s), not a number or numeric array" % (
            name, _shown(v), type(v).__name__, a.dtype))
    out = np.empty(a.shape)
    for idx, e in np.ndenumerate(a):
        out[idx] = real_number(name, e, " at index %s" % (idx,))
    return out


def broadcast_message(items, fix: str = "") -> str:
    """The InputError text for values whose shapes do not broadcast together. ``items``: (name,
    shape, is_parameter) in binding order (arguments first). Names the first value that clashes
    and what it clashes with."""
    acc, seen, culprit = (), [], None
    for n, s, param in items:
        try:
            acc = np.broadcast_shapes(acc, s)
        except ValueError:
            culprit = (n, s, param)
            break
        seen.append((n, s))
    if culprit is None:  # pragma: no cover - the caller saw a mismatch
        return "the shapes of %s do not broadcast together" % ", ".join("%s %s" % (n, s) for n, s, _ in items)
    n, s, param = culprit
    rule = "NumPy broadcasting: axes, compared from the right, must be equal or 1"
    if param:
        batch = ", ".join("%s: %s" % (m, t) for m, t in seen if t)
        return ("the parameter %s has shape %s, which does not broadcast against the batch shape %s (%s) (%s); pass %s "
                "as a number, or as an array whose shape broadcasts against %s" % (n, s, acc, batch, rule, n, acc))
    partner = None
    for m, t in seen:
        try:
            np.broadcast_shapes(t, s)
        except ValueError:
            partner = (m, t)
            break
    if partner is not None:
        m, t = partner
        return ("%s has shape %s and %s has shape %s, which do not broadcast together (%s); pass arrays of one batch "
                "shape, or reshape one of them (a trailing axis of size 1 makes a grid)" % (m, t, n, s, rule))
    return ("%s has shape %s, which does not broadcast against the shape %s of %s (%s); pass arrays of one batch "
            "shape" % (n, s, acc, ", ".join("%s %s" % (m, t) for m, t in seen if t), rule))
