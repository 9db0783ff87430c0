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

import difflib

import sympy as sp

from .errors import InputError

__all__ = ["as_symbols", "check_wrt", "free_symbols"]


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
