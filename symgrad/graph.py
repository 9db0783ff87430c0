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
from dataclasses import dataclass

import sympy as sp
from sympy.core.function import Application

from .errors import InputError, UnsupportedError

_RESERVED = re.compile(r"ξ\d+")

__all__ = ["Xi", "Node", "Graph", "decompose", "is_leaf", "build_postorder"]


class Xi(sp.Symbol):
    """The symbol of node k: prints as ξk, is a distinct class so it never equals a user symbol.

    >>> Xi.of(3), Xi.of(3).index
    (ξ3, 3)
    """

    @classmethod
    def of(cls, k: int) -> "Xi":
        return cls("xi%d" % k)

    @property
    def index(self) -> int:
        return int(self.name[2:])

    def _sympystr(self, printer):
        return "ξ%d" % self.index

    def _latex(self, printer):
        return r"\xi_{%d}" % self.index


def is_leaf(e) -> bool:
    """True for what never becomes a node: symbols, numbers and constants such as pi.

    >>> import sympy as sp
    >>> is_leaf(sp.Symbol("x")), is_leaf(sp.pi), is_leaf(sp.Symbol("x") + 1)
    (True, True, False)
    """
    return e.is_Symbol or e.is_Number or e.is_NumberSymbol


@dataclass(frozen=True, slots=True)
class Node:
    """One elementary operation: ``symbol = expr`` where expr uses leaves and earlier ξ's.

    ``args`` are the distinct symbols (leaves and earlier ξ's) the node reads, in order;
    ``source`` is the user's subexpression it stands for; ``shape`` is None for a scalar.
    """

    symbol: Xi
    expr: sp.Expr
    args: tuple
    source: sp.Expr
    shape: tuple | None = None

    @property
    def index(self) -> int:
        return self.symbol.index

    @property
    def name(self) -> str:
        return "ξ%d" % self.index

    def __repr__(self) -> str:
        return "%s = %s" % (self.name, sp.sstr(self.expr, order="none"))


@dataclass(frozen=True, slots=True)
class Graph:
    """An ordered, immutable list of nodes; ``output`` is the last node's symbol (or a leaf).

    ``leaves`` are the user's symbols in first-use order. ``str(graph)`` lists the chain.
    """

    nodes: tuple
    output: sp.Expr
    leaves: tuple
    expr: sp.Expr

    def __str__(self) -> str:
        return "\n".join(repr(n) for n in self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def node(self, symbol) -> Node:
        """The node whose symbol is ``symbol``."""
        return self.nodes[symbol.index - 1]

    def substituted(self, e: sp.Expr, small: dict | None = None) -> sp.Expr:
        """``e`` with each ξ replaced by the user subexpression it stands for, when that is small.

        A deep expression with shared parts is exponentially larger as a tree than as a graph,
        so large subexpressions keep their ξ name (``small`` from ``small_sources`` saves the walk).
        """
        return e.xreplace(self.small_sources() if small is None else small)

    def small_sources(self, limit: int = 40) -> dict:
        """{ξ: user subexpression} for the nodes whose expression tree has at most ``limit`` nodes,
        found in one pass over the graph (tree sizes add up along the arguments)."""
        size, small = {}, {}
        for n in self.nodes:
            size[n.symbol] = 1 + sum(size.get(a, 0) for a in n.args)
            if size[n.symbol] <= limit:
                small[n.symbol] = n.source
        return small

    def readable(self, node: Node, small: dict | None = None) -> sp.Expr:
        """What ``node`` computes for a person: its user subexpression if small, else its
        definition with the small parts spelled out."""
        small = self.small_sources() if small is None else small
        return small.get(node.symbol) if node.symbol in small else node.expr.xreplace(small)


def _split(e):
    """The children of ``e`` that become nodes or leaves, and a function rebuilding ``e`` from them.

    Numeric coefficients are folded into their consumer: ``1 - a*b`` is one node over ``a*b``,
    ``-w*x`` one node over w and x, ``x**2`` one node over x.
    """
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


def _check_leaf(e):
    if e.is_Symbol or e.is_NumberSymbol:
        return
    if e.is_Number and not e.is_finite:
        raise InputError("the expression contains %s, which is not a finite number" % e)
    if e == sp.I or (e.is_Number and not e.is_real):
        raise InputError("the expression contains the imaginary unit; symgrad differentiates real functions only")


def build_postorder(expr, split, atom_of, make):
    """Build the nodes of ``expr`` bottom-up without recursion; return the root's symbol.

    ``split(e)`` gives ``(kids, info)``; ``atom_of(k)`` gives a kid's existing symbol (a leaf or
    an already built, shared node) or None; ``make(e, info, atoms)`` builds the node of ``e``
    from its kids' atoms. Deep expressions never meet Python's recursion limit.
    """
    kids, info = split(expr)
    frames = [(expr, kids, info, [])]
    while True:
        e, kids, info, done = frames[-1]
        if len(done) < len(kids):
            k = kids[len(done)]
            a = atom_of(k)
            if a is not None:
                done.append(a)
            else:
                frames.append((k, *split(k), []))
            continue
        frames.pop()
        sym = make(e, info, done)
        if not frames:
            return sym
        frames[-1][3].append(sym)


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
            _check_leaf(e)
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
        root = build_postorder(expr, _split, atom_of, make_node)

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
