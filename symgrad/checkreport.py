"""What ``check_grads`` found: which checks ran, which of them were independent, and kink notes.

``check_grads(..., report=True)`` returns a ``GradCheck``; a failure raises
``GradientMismatch`` whose ``report`` is the same object. A check is *independent* when
nothing it computes comes from the rule it checks: ``sympy.diff`` is, except for a user
``Function`` (its derivative is the function's own ``fdiff``, which symgrad uses too);
finite differences always are (they only evaluate the function); forward against reverse is
a consistency check between two of symgrad's programs built from the same rules.

>>> r = GradCheck((Check("fd", "passed", True, ""), Check("fwd-rev", "passed", False, "")))
>>> r.independent
('fd',)
>>> print(r)
check_grads: fd passed (independent); fwd-rev passed (consistency only)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import sympy as sp

from .errors import InputError, SymgradError

__all__ = ["Check", "GradCheck", "GradientMismatch", "expr_text", "depth", "numeric_values"]

PRINT_DEPTH = 120  # SymPy's printers recurse once or more per level: deeper trees are described, not printed
LABEL = {"sympy": "sympy.diff", "fd": "finite differences", "fwd-rev": "forward/reverse"}


class GradientMismatch(AssertionError, SymgradError):
    """A derivative disagrees with its reference; the message shows both side by side, names
    the parameter, the direction and (where one is found) the node whose rule is wrong.
    ``report`` is the GradCheck so far, ``culprits`` the wrong nodes (``blame.Culprit``)."""

    report = None
    culprits = ()


class Check(NamedTuple):
    """One check: ``name`` ('sympy', 'fd', 'fwd-rev'), ``status`` ('passed', 'kink', 'skipped',
    'failed'), whether it was ``independent`` of symgrad's rules, and a ``note``."""

    name: str
    status: str
    independent: bool
    note: str = ""


@dataclass
class GradCheck:
    """The outcome of ``check_grads``: ``checks`` (Check, in the order they ran), ``notes``
    (kinks, one-sided differences, skipped oracles) and the finite-difference ``direction``."""

    checks: tuple = ()
    notes: tuple = ()
    direction: dict = field(default_factory=dict)

    @property
    def independent(self) -> tuple:
        """The names of the checks that ran and were independent of symgrad's rules."""
        return tuple(c.name for c in self.checks if c.independent and c.status != "skipped")

    @property
    def kinks(self) -> tuple:
        return tuple(n for n in self.notes if n.startswith("kink"))

    def __str__(self) -> str:
        parts = ["%s %s (%s)" % (c.name, c.status, "independent" if c.independent else "consistency only")
                 for c in self.checks]
        lines = ["check_grads: " + "; ".join(parts)]
        lines += ["  %s: %s" % (c.name, c.note) for c in self.checks if c.note]
        return "\n".join(lines + ["  " + n for n in self.notes])

    def summary(self) -> str:
        """One line for a failure message: which checks ran independently of the rules."""
        ind = [LABEL[c.name] for c in self.checks if c.independent and c.status != "skipped"]
        dep = ["%s (%s)" % (LABEL[c.name], c.note or "shares symgrad's rules") for c in self.checks
               if not c.independent and c.status != "skipped"]
        return "independent checks: %s%s" % (", ".join(ind) or "none",
                                             "; not independent: " + "; ".join(dep) if dep else "")


def depth(expr, cap: int = 10 ** 6) -> int:
    """The depth of a SymPy tree, counted without recursion."""
    best, stack, seen = 0, [(expr, 1)], set()
    while stack:
        e, d = stack.pop()
        best = max(best, d)
        if best >= cap:
            break
        for a in getattr(e, "args", ()):
            if (a, d) not in seen:
                seen.add((a, d))
                stack.append((a, d + 1))
    return best


def expr_text(expr, limit: int = 200) -> str:
    """``sstr(expr)`` for a message, shortened; a very deep tree (SymPy's printer recurses) is
    described by its depth instead."""
    d = depth(expr)
    if d > PRINT_DEPTH:
        return "%s(…) (an expression %d levels deep, too deep for SymPy's printer)" % (type(expr).__name__, d)
    s = sp.sstr(expr)
    return s if len(s) <= limit else s[:limit - 1] + "…"


def fmt(v) -> str:
    return np.array2string(np.asarray(v), precision=12) if np.ndim(v) else repr(float(v))


def numeric_values(at: dict) -> dict:
    """{symbol name: float or array} from a dict keyed by symbols or names."""
    out = {}
    for k, v in at.items():
        name = k.name if isinstance(k, (sp.Symbol, sp.MatrixSymbol)) else str(k)
        if isinstance(v, sp.MatrixBase):  # an explicit SymPy matrix of numbers
            if v.free_symbols:
                raise InputError("value of %r is %s, which still contains symbols" % (name, sp.sstr(v)))
            v = np.array(v.tolist(), dtype=float)
        elif isinstance(v, sp.Basic):
            if v.free_symbols:
                raise InputError("value of %r is %s, which still contains symbols" % (name, sp.sstr(v)))
            v = float(v)
        out[name] = v if isinstance(v, np.ndarray) else (float(v) if np.ndim(v) == 0 else np.asarray(v, float))
    return out
