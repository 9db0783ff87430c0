"""The one IR of both levels: nodes ``ξk = op(args)`` with a shape, in topological order.

A node's ``expr`` is a SymPy expression over its arguments (earlier ξ's and leaves). For
elementwise operations it is the ordinary scalar expression (``tanh(ξ3)``, ``1 - ξ4``); a
matrix operation is a SymPy function of ``symgrad.ops_matrix`` (``mm(X, W)`` for a matrix
product, ``T(ξ2)`` for a transpose), so every node, and every statement of a derivative
program built from them, is again an expression of registered operations: it can be printed
for an array library, evaluated at a point and differentiated again. ``shape`` is ``()`` for
elementwise or broadcast scalars and ``(rows, cols)`` (possibly symbolic) for matrices.

>>> import sympy as sp
>>> x = sp.Symbol("x")
>>> Node(Xi.of(1), sp.exp(x), (x,), sp.exp(x))
ξ1 = exp(x)
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.printing.str import StrPrinter

from .ir_svg import GraphPicture

__all__ = ["Xi", "XiDot", "XiBar", "MatLeaf", "Node", "Graph", "is_leaf", "build_postorder", "user_text"]


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


class XiDot(sp.Symbol):
    """The tangent (forward derivative) variable of a node or leaf; never equals a user symbol."""

    def _sympystr(self, printer):
        return self.name


class XiBar(sp.Symbol):
    """The adjoint (reverse derivative) variable of a node or leaf; never equals a user symbol."""

    def _sympystr(self, printer):
        return self.name


class MatLeaf(sp.Symbol):
    """A matrix input inside IR expressions: a plain symbol of the matrix's name, so that
    elementwise SymPy functions can take it (``tanh(X)``); ``matrix`` is the user's MatrixSymbol.

    >>> W = MatLeaf.of(sp.MatrixSymbol("W", 3, 2))
    >>> W, W.matrix.shape
    (W, (3, 2))
    """

    _matrices: dict = {}

    @classmethod
    def of(cls, m) -> "MatLeaf":
        leaf = cls(m.name)
        cls._matrices[leaf] = m
        return leaf

    @property
    def matrix(self):
        return self._matrices[self]

    @property
    def shape(self):
        return tuple(self.matrix.shape)


def is_leaf(e) -> bool:
    """True for what never becomes a node: symbols, numbers and constants such as pi.

    >>> import sympy as sp
    >>> is_leaf(sp.Symbol("x")), is_leaf(sp.pi), is_leaf(sp.Symbol("x") + 1)
    (True, True, False)
    """
    return e.is_Symbol or e.is_Number or e.is_NumberSymbol


@dataclass(frozen=True, slots=True)
class Node:
    """One operation: ``symbol = expr`` where expr uses leaves and earlier ξ's.

    ``args`` are the distinct symbols (leaves and earlier ξ's) the node reads, in order;
    ``source`` is the user's subexpression it stands for; ``shape`` is ``()`` for a scalar
    (elementwise over a batch) and ``(rows, cols)`` for a matrix.
    """

    symbol: Xi
    expr: sp.Expr
    args: tuple
    source: sp.Basic
    shape: tuple = ()

    @property
    def index(self) -> int:
        return self.symbol.index

    @property
    def name(self) -> str:
        return "ξ%d" % self.index

    def __repr__(self) -> str:
        return "%s = %s" % (self.name, sp.sstr(self.expr, order="none"))


@dataclass(frozen=True, slots=True)
class Graph(GraphPicture):
    """An ordered, immutable list of nodes; ``output`` is the last node's symbol (or a leaf).

    ``leaves`` are the inputs in first-use order (user symbols; ``MatLeaf`` for matrices).
    ``shapes`` maps every leaf and node symbol that is not a scalar to its shape.
    ``str(graph)`` lists the chain.
    """

    nodes: tuple
    output: sp.Expr
    leaves: tuple
    expr: sp.Basic
    shapes: dict = None
    dims: tuple = ()  # the symbolic dimensions (a batch size B), bound from the arrays at run time

    def __str__(self) -> str:
        return "\n".join(repr(n) for n in self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    @property
    def is_matrix(self) -> bool:
        return bool(self.shapes)

    def shape(self, s) -> tuple:
        """The shape of a leaf or node symbol (``()`` for scalars and numbers)."""
        if isinstance(s, MatLeaf):
            return s.shape
        return self.shapes.get(s, ()) if self.shapes else ()

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
        """{ξ: user subexpression} for the scalar nodes whose expression tree has at most
        ``limit`` nodes, found in one pass over the graph (tree sizes add up along the arguments).
        Matrix nodes keep their ξ name: their user subexpressions are not scalar expressions."""
        size, small = {}, {}
        for n in self.nodes:
            size[n.symbol] = 1 + sum(size.get(a, 0) for a in n.args)
            if size[n.symbol] <= limit and isinstance(n.source, sp.Expr) and not self.is_matrix:
                small[n.symbol] = n.source
        return small

    def note(self, node: Node, small: dict | None = None) -> str:
        """One line saying what ``node`` computes, for a code comment: the user's subexpression
        (``tanh(X*W1 + 1*b1)``) for a matrix node, the readable form for a scalar one."""
        if not self.is_matrix:
            return sp.sstr(self.readable(node, small), order="none")
        if self._tree_size(node.symbol) > 40:  # printing a deep network's whole subexpression per node
            text = sp.sstr(node.expr)           # costs O(depth) each; its own definition, by ξ names
        else:
            text = user_text(node.source)
        return text if len(text) <= 70 else text[:67] + "..."

    def _tree_size(self, symbol) -> int:
        """Nodes in ``symbol``'s expression tree (shared parts counted each time), up to it."""
        sizes = {}
        for n in self.nodes:
            sizes[n.symbol] = 1 + sum(sizes.get(a, 0) for a in n.args)
            if n.symbol == symbol:
                break
        return sizes.get(symbol, 1)

    def readable(self, node: Node, small: dict | None = None) -> sp.Expr:
        """What ``node`` computes for a person: its user subexpression if small, else its
        definition with the small parts spelled out."""
        small = self.small_sources() if small is None else small
        return small.get(node.symbol) if node.symbol in small else node.expr.xreplace(small)


class _UserPrinter(StrPrinter):
    """SymPy's text with applyfunc written as the user thinks of it: ``tanh(X*W)``, or
    ``(t ↦ leaky_relu(t, alpha))(X*W)`` when the function has more than its argument."""

    def _print_ElementwiseApplyFunction(self, e):
        f = e.function
        v, body = f.variables[0], f.expr
        inner = self._print(e.expr)
        if isinstance(body, sp.Function) and body.args == (v,):
            return "%s(%s)" % (self._print(body.func), inner)
        return "(t ↦ %s)(%s)" % (self._print(body.xreplace({v: sp.Symbol("t")})), inner)


def user_text(e) -> str:
    """One line of a user's (matrix) expression for comments and headers.

    >>> X = sp.MatrixSymbol("X", 2, 2)
    >>> user_text(X.applyfunc(sp.tanh) + X)
    'tanh(X) + X'
    """
    return _UserPrinter().doprint(e)


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
