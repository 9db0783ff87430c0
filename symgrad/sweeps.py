"""Forward (tangent) and reverse (adjoint) programs: ordered assignments built from graph + rules.

A program is a list of ``Assign(target, expr, note)``. Forward mode computes
``ξk_dot = Σ ∂ξk/∂a · a_dot``; reverse mode seeds the output's adjoint with 1 and walks the
nodes backwards, ``a_bar += ∂ξk/∂a · ξk_bar``. Both read the same local partials, so no
derivative is written twice. Terms that are zero are never emitted, factors of 1 vanish,
and an adjoint or tangent that is just another variable is an alias, not a copy.

>>> import sympy as sp
>>> from symgrad.graph import decompose
>>> x, w = sp.symbols("x w")
>>> s = sweeps(decompose(sp.exp(-w*x)), [w])
>>> for a in s.reverse: print(a)
w_bar = -x*ξ2
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from . import functions as F
from . import ops_matrix as O
from .ir import Graph, Xi, XiBar, XiDot
from .ops import is_matrix_op
from .rules import finite_everywhere, local_partials, safe_point

__all__ = ["Assign", "XiDot", "XiBar", "Sweeps", "sweeps", "branch_conditions"]  # XiDot, XiBar: from ir


def _label(base) -> str:
    return sp.sstr(base)


@dataclass(frozen=True, slots=True)
class Assign:
    """One statement ``target = expr``; ``note`` says where it came from (a user subexpression)."""

    target: sp.Symbol
    expr: sp.Expr
    note: str = ""
    acc: tuple = ()  # an accumulation ``target = previous + term``: (previous, term), kept for printing

    def __str__(self) -> str:
        return "%s = %s" % (sp.sstr(self.target), sp.sstr(self.expr))


@dataclass(frozen=True)
class Sweeps:
    """The value, forward and reverse programs of a graph for the parameters ``wrt``.

    ``tangent[b]`` / ``adjoint[b]`` give the expression holding b's tangent / adjoint once
    the respective program has run (a variable, another variable it aliases, or a number).
    ``partials[k]`` holds node k+1's local partials (as the tables show them).
    ``guards`` maps each node that only Piecewise branches need to the condition under
    which its value is used; the programs evaluate such a node on safe arguments elsewhere.
    """

    graph: Graph
    wrt: tuple
    partials: tuple
    values: list
    forward: list
    reverse: list
    seeds: dict
    tangent: dict = field(default_factory=dict)
    adjoint: dict = field(default_factory=dict)
    guards: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)  # of every matrix-shaped variable of the programs


def _active(graph: Graph, wrt) -> set:
    active = set(wrt)
    for n in graph.nodes:
        if any(a in active for a in n.args):
            active.add(n.symbol)
    return active


def branch_conditions(graph: Graph) -> dict:
    """{ξ: condition under which its value is used}, for the nodes that only Piecewise branches need.

    A node that feeds the output through anything but a branch value (or a condition) is
    needed everywhere and is absent. Conditions are built from the Piecewise conditions.

    >>> import sympy as sp
    >>> from symgrad.graph import decompose
    >>> x = sp.Symbol("x")
    >>> branch_conditions(decompose(sp.Piecewise((sp.sqrt(x), x > 0), (x, True))))
    {ξ1: x > 0}
    """
    if not graph.nodes or not isinstance(graph.output, Xi):
        return {}
    need = {graph.output: sp.true}
    for n in reversed(graph.nodes):
        c = need.get(n.symbol, sp.true)
        uses = []
        if isinstance(n.expr, sp.Piecewise):
            before = []
            for pair in n.expr.args:
                if isinstance(pair.expr, Xi):
                    uses.append((pair.expr, sp.And(c, pair.cond, *[sp.Not(b) for b in before])))
                uses.extend((s, c) for s in sorted(pair.cond.free_symbols, key=sp.default_sort_key)
                            if isinstance(s, Xi))
                before.append(pair.cond)
        else:
            uses = [(a, c) for a in n.args if isinstance(a, Xi)]
        for a, cond in uses:
            need[a] = sp.Or(need.get(a, sp.false), cond)
    return {n.symbol: need[n.symbol] for n in graph.nodes if need.get(n.symbol, sp.true) is not sp.true}


def sweeps(graph: Graph, wrt, all_adjoints: bool = False, guard: bool = True, inline_tangents: bool = False) -> Sweeps:
    """Build the three programs. ``all_adjoints`` also gives adjoints of nodes that do not
    depend on ``wrt`` (tables show them); compiled code only needs the active ones.
    ``inline_tangents=True`` (compiled code) lets a scalar tangent with one consumer wait for it,
    so that a division in it can cancel (x·(x_dot/x) is x_dot); tables and second order keep
    one tangent variable per active node.

    NaN-safe branches (``guard=True``): a node that only a Piecewise branch needs, and whose
    operation has a restricted domain (log, sqrt, 1/a, exp, acosh, …; ``rules.safe_point``), is
    evaluated on ``where(taken, a, safe)`` instead of its argument ``a`` — the "double where".
    Where the branch is not taken it then computes a harmless finite number that the
    Piecewise discards, its partials are finite, and the zero adjoint the Piecewise sends it
    stays exactly zero (never 0·inf = nan). Where the branch is taken nothing changes.

    >>> import sympy as sp
    >>> from symgrad.graph import decompose
    >>> x, w = sp.symbols("x w")
    >>> s = sweeps(decompose(sp.sin(w*x)), [w])
    >>> for a in s.forward: print(a)
    ξ1_dot = x*w_dot
    ξ2_dot = ξ1_dot*cos(ξ1)
    """
    wrt = tuple(wrt)
    defs = {n.symbol: n.expr for n in graph.nodes}
    partials = tuple(None if is_matrix_op(n.expr) else local_partials(n, defs) for n in graph.nodes)
    active = _active(graph, wrt)
    guards = branch_conditions(graph) if guard else {}
    values, used = [], []  # ``used``: the partials the programs evaluate (guarded where needed)
    masked = {}  # node -> condition outside which its derivative contributions are zeroed
    small = graph.small_sources()
    for n, parts in zip(graph.nodes, partials):
        expr, cond = n.expr, guards.get(n.symbol)
        safe = safe_point(n.expr) if cond is not None and parts is not None else None
        if safe is not None:
            sub = {a: F.where(cond, a, safe) for a in n.args}
            expr = expr.xreplace(sub)
            parts = tuple((a, p.xreplace(sub)) for a, p in parts)
        elif cond is not None and (not finite_everywhere(n.expr) or any(a in masked for a in n.args)):
            # no safe input known (atan2, polygamma, a user function with a pole), or an argument that
            # may be nan off the branch: the node's derivative contributions are masked instead
            masked[n.symbol] = cond
        values.append(Assign(n.symbol, expr, graph.note(n, small)))
        used.append(parts)

    shapes = dict(graph.shapes or {})  # derivative variables have their variable's shape
    shape = shapes.get if graph.is_matrix else (lambda s, default=(): ())

    def var(cls, base, suffix):
        v = cls("%s_%s" % (_label(base), suffix))
        if graph.is_matrix and graph.shape(base):
            shapes[v] = graph.shape(base)
        return v

    def shape_of(e):
        return O.shape_of(e, lambda s: shape(s, ())) if graph.is_matrix else ()

    seeds = {w: var(XiDot, w, "dot") for w in wrt}
    tangent = dict(seeds)
    forward = []
    # A scalar tangent with one consumer waits for it: where the consumer's partial cancels it
    # (x·(x_dot/x) in x·log(x) is x_dot) no statement is written, and nothing overflows on the way.
    consumers = _consumers(graph) if inline_tangents and not graph.is_matrix else {}
    pending: dict = {}

    def emit(a):
        total, note = pending.pop(a)
        target = var(XiDot, a, "dot")
        forward.append(Assign(target, total, note))
        tangent[a] = target

    def term(a, p):
        if a in pending:
            total = pending[a][0]
            inline = p * total
            before = _divisions(total)
            if before and _divisions(inline) < _divisions(p) + before:  # the tangent's division cancelled
                del pending[a]
                return inline
            emit(a)
        return p * tangent[a]

    for n, parts in zip(graph.nodes, used):
        if n.symbol not in active:
            continue
        if parts is None:
            for a in n.expr.args:
                if a in pending:
                    emit(a)
            total = O.jvp(n.expr, {a: tangent[a] for a in n.expr.args if a in tangent}, n.symbol)
            if total is None:
                continue
        else:
            total = sp.Add(*[term(a, p) for a, p in parts if a in tangent and p != 0])
            if n.symbol in masked and total != 0:
                total = F.where(masked[n.symbol], total, 0)
        if total.is_Atom:
            tangent[n.symbol] = total
        elif consumers.get(n.symbol) == 1 and n.symbol != graph.output and n.symbol not in masked:
            pending[n.symbol] = (total, values[n.index - 1].note)
            tangent[n.symbol] = None
        else:
            target = var(XiDot, n.symbol, "dot")
            forward.append(Assign(target, total, values[n.index - 1].note))
            tangent[n.symbol] = target
    for a in list(pending):
        emit(a)

    needs_adjoint = (lambda a: a.is_Symbol) if all_adjoints else (lambda a: a in active)
    adjoint: dict = {}
    reverse = []
    if graph.nodes:
        out_shape = graph.shape(graph.output)
        adjoint[graph.output] = O.fill(sp.S.One, *out_shape) if out_shape else sp.S.One
    for n, parts in zip(reversed(graph.nodes), reversed(used)):
        bar = adjoint.get(n.symbol)
        if bar is None:
            continue
        if parts is None:  # a matrix operation: its transpose rule, once per position an argument holds
            contribs = []
            for a in n.args:
                if needs_adjoint(a):
                    terms = [O.vjp(n.expr, i, bar, n.symbol, lambda s: shape_of(s))
                             for i, x in enumerate(n.expr.args) if x == a]
                    contribs.append((a, _strip_fill(sp.Add(*terms), shape_of)))
        else:
            contribs = [(a, _reduce(_strip_fill(p * bar, shape_of), graph.shape(a), shape_of))
                        for a, p in parts if needs_adjoint(a) and p != 0]
            if n.symbol in masked:
                contribs = [(a, F.where(masked[n.symbol], c, 0)) for a, c in contribs]
        for a, contrib in contribs:
            target = var(XiBar, a, "bar")
            note = "∂%s/∂%s" % (n.name, _label(a))
            if a in adjoint:
                reverse.append(Assign(target, adjoint[a] + contrib, note, (adjoint[a], contrib)))
                adjoint[a] = target
            elif _cheap(contrib):
                adjoint[a] = contrib
            else:
                reverse.append(Assign(target, contrib, note))
                adjoint[a] = target
    if not graph.nodes and graph.output in wrt:
        adjoint[graph.output] = sp.S.One
    return Sweeps(graph, wrt, partials, values, forward, reverse, seeds, tangent, adjoint, guards, shapes)


def _divisions(e) -> int:
    """How many divisions (negative powers) expression ``e`` has."""
    return sum(1 for t in sp.preorder_traversal(e) if t.is_Pow and t.exp.is_negative)


def _consumers(graph: Graph) -> dict:
    """{ξ: how many nodes read it} (a Piecewise condition counts as a read)."""
    count: dict = {}
    for n in graph.nodes:
        for a in set(n.args) | n.expr.free_symbols:
            count[a] = count.get(a, 0) + 1
    return count


def _cheap(e) -> bool:
    """An adjoint that needs no statement of its own: a variable, a number, or a view of one."""
    return e.is_Atom or (isinstance(e, (O.fill, O.T)) and e.args[0].is_Atom)


def _strip_fill(e, shape_of):
    """A broadcast scalar inside a product whose other factors already have the full shape is the
    scalar itself: ``fill(g, B, n)·p`` is ``g·p`` when p is B × n (NumPy broadcasts it)."""
    if not e.is_Mul:
        return e
    fills = [f for f in e.args if isinstance(f, O.fill)]
    if len(fills) != 1:
        return e
    f = fills[0]
    rest = [a for a in e.args if a is not f]
    others = O.broadcast(*[shape_of(a) for a in rest])
    if others and O.broadcast(others, tuple(f.args[1:])) == others:
        return sp.Mul(f.args[0], *rest)
    return e


def _reduce(e, target, shape_of):
    """An elementwise contribution summed down to its argument's shape (a scalar parameter
    inside an elementwise function of matrices receives the sum over all entries)."""
    got = shape_of(e)
    if got == tuple(target) or not got:
        return e
    if not target:
        if e.is_Mul:
            mats = [a for a in e.args if shape_of(a)]
            if len(mats) == 2 and shape_of(mats[0]) == shape_of(mats[1]):
                return sp.Mul(*[a for a in e.args if not shape_of(a)]) * O.frob(*mats)
        return O.sumall(e)
    if target[0] == 1 and target[1] == got[1]:
        return O.colsum(e)
    if target[1] == 1 and target[0] == got[0]:
        return O.rowsum(e)
    return O.sumall(e)
