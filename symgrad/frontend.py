"""``symgrad.decompose``: the one entry to both frontends (scalar and matrix expressions).

>>> import sympy as sp
>>> B = sp.Symbol("B", integer=True, positive=True)
>>> X, w = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("w", 2, 1)
>>> print(decompose(sp.Trace((X*w).T*(X*w))))
ξ1 = X@w
ξ2 = frob(ξ1, ξ1)
>>> print(decompose(sp.exp(-sp.Symbol("x"))))
ξ1 = -x
ξ2 = exp(ξ1)
"""

from __future__ import annotations

import sympy as sp

from .errors import InputError
from .graph import decompose as decompose_scalar
from .ir import Graph
from .matrix import decompose_matrix, is_matrix_expr

__all__ = ["decompose"]


def decompose(expr, share: bool = True) -> Graph:
    """Break a SymPy expression into ξ nodes in topological (evaluation) order.

    Scalar expressions: every non-atomic subexpression becomes one node, with numeric
    coefficients folded in; with ``share=True`` (default) a repeated subexpression is one
    node with several consumers, ``share=False`` gives the tree. Matrix expressions
    (networks): one node per matrix operation, and the body of each ``applyfunc`` broken
    into elementwise nodes. Numbering is deterministic. Raises InputError /
    UnsupportedError for what cannot be differentiated.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> print(decompose(sp.sin(x)**2 + sp.sin(x)))
    ξ1 = sin(x)
    ξ2 = ξ1**2
    ξ3 = ξ1 + ξ2
    """
    try:
        e = sp.sympify(expr, strict=True)
    except (sp.SympifyError, TypeError):
        e = None
    if isinstance(e, sp.Basic) and is_matrix_expr(e):
        if not share:
            raise InputError("share=False (the tree) is offered for scalar expressions only; a network's graph "
                             "always shares its layers")
        return decompose_matrix(e)[0]
    return decompose_scalar(expr, share=share)
