"""The ξ graph: a SymPy expression broken into elementary nodes in topological order.

>>> import sympy as sp
>>> x, y, w = sp.symbols("x y w")
>>> print(decompose(-y*sp.log(1/(1 + sp.exp(-w*x)))))
ξ1 = -w*x
ξ2 = exp(ξ1)
ξ3 = 1 + ξ2
ξ4 = 1/ξ3
ξ5 = log(ξ4)
ξ6 = -y*ξ5
"""

from __future__ import annotations

import re
import sympy as sp
from sympy.core.function import Application

from .errors import InputError, UnsupportedError
from .ir import Graph, Node, Xi, build_postorder, is_leaf

_RESERVED = re.compile(r"ξ\d+")

__all__ = ["Xi", "Node", "Graph", "decompose", "is_leaf", "build_postorder", "scalar_split"]


def scalar_split(e):
    """The children of ``e`` that become nodes or leaves, and a function rebuilding ``e`` from them.

    Numeric coefficients are folded into their consumer: ``1 - a*b`` is one node over ``a*b``,
    ``-w*x`` one node over w and x, ``x**2`` one node over x.
    """
    if e is sp.I:
        raise InputError("the expression contains the imaginary unit I (SymPy writes sqrt(-2) as sqrt(2)*I and "
                         "log(-1) as I*pi); it is not a real number: symgrad differentiates real functions only")
    if e.is_Add:
        coeffs, kids = [], []
        for term in e.args:
            c, rest = term.as_coeff_Mul() if term.is_Mul else (sp.S.One, term)
            coeffs.append(c)
            kids.append(rest)
        return kids, lambda atoms: sp.Add(*[c * a for c, a in zip(coeffs, atoms)])
    if e.is_Mul:
        return list(e.args), lambda atoms: sp.Mul(*atoms)
    if e.is_Pow:
        return list(e.args), lambda atoms: sp.Pow(*atoms)
    if isinstance(e, sp.Piecewise):
        values = [pair.expr for pair in e.args]
        conds = [pair.cond for pair in e.args]
        return values, lambda atoms: sp.Piecewise(*zip(atoms, conds))
    if isinstance(e, Application):
        return list(e.args), lambda atoms: e.func(*atoms)
    raise UnsupportedError(
        "cannot decompose %s (a %s): symgrad handles sums, products, powers, functions and "
        "Piecewise of scalars; rewrite it with those" % (sp.sstr(e), type(e).__name__)
    )


def check_constant(e):
    """Refuse a constant subexpression that is not a real number (``(-8)**(1/3)`` is SymPy's
    principal, complex cube root), naming it; checked once per constant node."""
    if e.is_extended_real is False or (e.is_extended_real is None and not sp.im(sp.N(e, 15)).is_zero):
        raise InputError("the constant %s is not a real number (its value is %s); symgrad differentiates real "
                         "functions only: for a real root write sympy.real_root, for example real_root(-8, 3)"
                         % (sp.sstr(e), sp.sstr(sp.N(e, 6))))


def check_leaf(e):
    """Refuse a leaf that is not a finite real number or a symbol, naming it."""
    if e.is_Symbol or e.is_NumberSymbol:
        return
    if e.is_Number and not e.is_finite:
        raise InputError("the expression contains %s, which is not a finite number" % e)
    if e == sp.I or (e.is_Number and not e.is_real):
        raise InputError("the expression contains the imaginary unit; symgrad differentiates real functions only")


def decompose(expr, share: bool = True) -> Graph:
    """Break a SymPy expression into ξ nodes in topological (evaluation) order.

    Every non-atomic subexpression becomes one node, with numeric coefficients folded in.
    With ``share=True`` (default) a repeated subexpression is one node with several
    consumers; ``share=False`` gives the tree. Numbering is deterministic.
    Raises InputError / UnsupportedError for what cannot be differentiated.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> g = decompose(sp.sin(x)**2 + sp.sin(x))
    >>> print(g)
    ξ1 = sin(x)
    ξ2 = ξ1**2
    ξ3 = ξ1 + ξ2
    >>> len(decompose(sp.sin(x)**2 + sp.sin(x), share=False))
    4
    """
    try:
        expr = sp.sympify(expr, strict=True)
    except (sp.SympifyError, TypeError):
        raise InputError("expected a SymPy expression, got %r (%s); build it from sympy symbols, "
                         "or parse a string with symgrad.parse_expr" % (expr, type(expr).__name__)) from None
    if not isinstance(expr, sp.Expr) or isinstance(expr, sp.MatrixBase):
        raise InputError("expected a scalar SymPy expression, got %s (%s)" % (sp.sstr(expr), type(expr).__name__))

    nodes: list[Node] = []
    leaves: dict = {}
    memo: dict = {}

    def atom_of(e):
        """A leaf stays itself; a shared subexpression already built returns its ξ."""
        if is_leaf(e):
            check_leaf(e)
            if e.is_Symbol and e not in leaves:
                leaves[e] = None
            return e
        if share:
            return memo.get(e)
        return None

    def make_node(e, rebuild, atoms):
        sym = Xi.of(len(nodes) + 1)
        local = rebuild(atoms)
        args = list(dict.fromkeys(a for a in atoms if a.is_Symbol))
        if not args:
            check_constant(e)
        if isinstance(local, sp.Piecewise):
            for pair in local.args:
                for s in sorted(pair.cond.free_symbols, key=sp.default_sort_key):
                    atom_of(s)
        nodes.append(Node(sym, local, tuple(args), e))
        if share:
            memo[e] = sym
        return sym

    root = atom_of(expr)
    if root is None:
        root = build_postorder(expr, scalar_split, atom_of, make_node)

    names: dict = {}
    for s in leaves:
        if _RESERVED.fullmatch(s.name):
            raise InputError("the symbol name %r is reserved for symgrad's intermediate variables; "
                             "rename the symbol" % s.name)
        if s.name in names:
            raise InputError("two different symbols are both called %r (%s and %s, with different assumptions); "
                             "values are passed by name, so rename one"
                             % (s.name, sp.srepr(names[s.name]), sp.srepr(s)))
        names[s.name] = s
    return Graph(tuple(nodes), root, tuple(leaves), expr)


_split = scalar_split  # the name the matrix frontend used
