"""Which node's rule is wrong: each node's local derivative against central differences of that node alone.

When ``check_grads`` finds a wrong gradient it runs the compiled program (without in-place
updates) to the failing point, then for every node ξk = F(a1, …) and every argument ai on a
path from the parameters compares symgrad's local derivative with central differences of F
alone (``numdiff.slope``): for an elementwise node ⟨G, ∂F/∂ai · u⟩, for a matrix operation
⟨vjp_i(G), u⟩ (its transpose rule, the one the reverse program uses), both along a random
u shaped like ai and a random cotangent G shaped like ξk. Only evaluating F is involved, so
the comparison is independent of the rule even for a user ``Function`` whose ``sympy.diff``
is its own ``fdiff``. (Elementwise partials are the ones ``f`` was compiled with; a matrix
operation's vjp is the one registered when the check runs.) A node at a kink passes when its derivative lies between the one-sided
ones.

>>> import sympy as sp, numpy as np, symgrad as sg
>>> x = sp.Symbol("x")
>>> wrong_nodes(sg.compile(sp.tanh(2 * x), wrt=[x]), {"x": 0.3}, np.random.default_rng(0))
[]
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numdiff
from . import ops_matrix as O
from .emit import generate
from .ir import XiBar
from .ops import kind
from .printing import CodePrinter
from .rules import rule_for

__all__ = ["Culprit", "wrong_nodes", "function_of"]


class Culprit:
    """A node whose local derivative in ``arg`` disagrees: ``node`` (ξ name), ``definition``,
    ``function`` (what computes the derivative), the two numbers and their error estimate."""

    def __init__(self, node, definition, arg, function, got, ref):
        self.node, self.definition, self.arg, self.function = node, definition, arg, function
        self.got, self.ref = got, ref

    def __str__(self):
        return ("node %s = %s: its derivative in %s (%s) gives %r along a random direction, central "
                "differences of %s alone give %r (± %.2g)" % (
                    self.node, self.definition, self.arg, self.function, self.got, self.node,
                    self.ref.value, self.ref.error))

    __repr__ = __str__


def function_of(expr) -> str:
    """What supplies a node's derivative, for a message: 'the rule tanh', 'the fdiff of myf', 'the vjp of mm'."""
    if kind(expr) != "elementwise":
        return "the vjp of the matrix operation %s" % type(expr).__name__
    head = expr.func
    if isinstance(expr, sp.Function) and not head.__module__.startswith(("sympy.", "symgrad.")):
        return "the fdiff of the user function %s" % head.__name__
    name = rule_for(expr).name
    return "symgrad's rule %r for %s" % (name, head.__name__)


def _env(f, bound):
    module = generate(f.sweeps, f._ir_args, inplace=False, tape=True)
    reverse = module.functions["reverse"]
    with np.errstate(all="ignore"):
        _, (tape,) = reverse(*bound)
    env = dict(reverse.__globals__)
    env.update(tape)
    return env, module.names


def wrong_nodes(f, vals: dict, rng, rtol: float = 1e-5, limit: int = 3) -> list:
    """[Culprit] for the first ``limit`` nodes of ``f`` whose local derivative disagrees with
    central differences of the node alone at the point ``vals`` ({name: value})."""
    bound = f._bind((), {k: v for k, v in vals.items() if k in f.names})
    env, names = _env(f, bound)
    printer = CodePrinter(names)
    sw, graph = f.sweeps, f.graph
    active = set(sw.tangent) | set(f._ir_wrt)
    shapes = lambda s: O.shape_of(s, lambda t: graph.shape(t)) if graph.is_matrix else ()  # noqa: E731
    small = graph.small_sources()
    out = []

    def ev(expr, scope):
        return eval(printer.doprint(expr), scope)  # noqa: S307 - our own generated names

    with np.errstate(all="ignore"):
        for n, parts in zip(graph.nodes, sw.partials):
            code = printer.doprint(n.expr)
            value = np.asarray(env[names[n.symbol]], dtype=float)
            for a in n.args:
                if a not in active:
                    continue
                base = np.asarray(env[names[a]], dtype=float)
                u = numdiff.scaled_direction(base, rng.standard_normal(base.shape))
                G = rng.standard_normal(value.shape)

                def total(t, a=a, base=base, u=u, G=G, code=code):
                    scope = dict(env)
                    scope[names[a]] = base + t * u
                    y = G * eval(code, scope)  # noqa: S307
                    return float(np.sum(y)), float(np.sum(np.abs(y)))

                if parts is None:  # a matrix operation: its transpose rule
                    g = XiBar("%s_check" % n.name)
                    names[g] = "_cotangent_check"
                    terms = [O.vjp(n.expr, i, g, n.symbol, shapes) for i, x in enumerate(n.expr.args) if x == a]
                    got = float(np.sum(ev(sp.Add(*terms), dict(env, **{names[g]: G})) * u))
                else:
                    p = dict(parts).get(a, sp.S.Zero)
                    got = float(np.sum(G * ev(p, env) * u)) if p != 0 else 0.0
                ref = numdiff.slope(total)
                if ref is None or numdiff.agree(got, ref, rtol):
                    continue
                left, right = numdiff.one_sided(total, -1), numdiff.one_sided(total, +1)
                if numdiff.kink(left, right, rtol) and numdiff.between(got, left, right, rtol):
                    continue
                out.append(Culprit(n.name, _definition(graph, n, small), sp.sstr(a), function_of(n.expr), got, ref))
                break
            if len(out) >= limit:
                break
    return out


def _definition(graph, n, small) -> str:
    d = sp.sstr(n.expr) if graph.is_matrix else sp.sstr(n.expr)
    if not graph.is_matrix:
        r = graph.readable(n, small)
        if r != n.expr:
            d += " = " + sp.sstr(r)
    return d
