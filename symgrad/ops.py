"""The one operation registry of the IR: every operation's entry, elementwise or matrix-level.

Elementwise operations (sums, products, powers, exp, tanh, σ, Piecewise, any SymPy function
with ``fdiff``) are the entries of ``symgrad.rules.RULES``: one partial per argument, in
output-reuse form. Matrix operations are the classes of ``symgrad.ops_matrix``: linear and
bilinear ones state their transpose, custom ones a tangent as well. ``entry(expr)`` finds
the entry of a node's expression; ``kind(expr)`` says which sweep rule applies to it.

>>> import sympy as sp
>>> a, b = sp.symbols("a b")
>>> kind(sp.tanh(a)), kind(O.mm(a, b)), kind(O.lse_rows(a))
('elementwise', 'bilinear', 'custom')
>>> entry(sp.tanh(a)).name, entry(O.T(a)).__name__
('tanh', 'T')
>>> sorted(REGISTRY)[:3]
['T', 'abs', 'add']
"""

from __future__ import annotations

from . import ops_matrix as O
from .rules import RULES, rule_for

__all__ = ["entry", "kind", "REGISTRY", "is_matrix_op"]

REGISTRY = {**{r.name: r for r in RULES}, **{op.__name__: op for op in O.MATRIX_OPS}}


def is_matrix_op(expr) -> bool:
    """True for a node whose operation is a matrix operation (rules by transpose or tangent)."""
    return isinstance(expr, O.MatOp)


def entry(expr):
    """The registry entry of an IR expression: a ``rules.Rule`` or an ``ops_matrix`` class."""
    return type(expr) if isinstance(expr, O.MatOp) else rule_for(expr)


def kind(expr) -> str:
    """"elementwise", or the matrix operation's kind ("linear", "bilinear", "custom", "constant")."""
    return type(expr).kind if isinstance(expr, O.MatOp) else "elementwise"
