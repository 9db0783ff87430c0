"""The lecture's node interface: ``forward_pass(inputs)`` and ``backward_pass(inputs, incoming_gradient)``
of an elementary function, generated from its rule in the registry.

The backward pass multiplies the incoming gradient by the rule's local partial; where the
rule reuses the node's output (dσ = σ·σ(−a), d exp = out, d tanh = 1 − out²) the forward
value is computed first and reused, as the lecture writes it. Functions of several inputs
take them as a tuple and return one gradient per input.

>>> print(node_code("sigmoid"))
import numpy as np
<BLANKLINE>
<BLANKLINE>
def forward_pass(inputs):
    return (1/(1 + np.exp(-(inputs))))
<BLANKLINE>
<BLANKLINE>
def backward_pass(inputs, incoming_gradient):
    # ∂sigmoid/∂inputs = sigmoid*sigmoid(-inputs): the registry's rule 'sigmoid' (reuses the forward value)
    sigmoid = (1/(1 + np.exp(-(inputs))))
    return incoming_gradient*sigmoid*(1/(1 + np.exp(inputs)))
"""

from __future__ import annotations

import keyword

import sympy as sp

from . import functions as F
from .errors import InputError
from .ir import Node, Xi
from .naming import comment
from .parse import FUNCTIONS
from .printing import CodePrinter, text
from .rules import RULES, local_partials, rule_for

__all__ = ["node_code", "node_names"]

_a, _b = sp.Symbol("a"), sp.Symbol("b")
# A representative node for each registry rule that is not a named function.
_RULE_NODES = {"add": _a + _b, "mul": _a * _b, "reciprocal": 1 / _a, "square": _a ** 2, "pow": _a ** 3,
               "powvar": _a ** _b, "max": sp.Max(_a, _b), "step": sp.Heaviside(_a),
               "piecewise": sp.Piecewise((_a, _a > 0), (0, True)), "sinc": sp.sinc(_a)}
_SKIP = {"Piecewise", "atan2", "Heaviside", "Max", "Min", "max", "min", "abs"}  # spelled another way above


def node_names() -> list:
    """Every name ``node_code`` accepts: the registry's rules and the functions the parser knows.

    >>> "sigmoid" in node_names() and "add" in node_names() and "sin" in node_names()
    True
    """
    names = [r.name for r in RULES if r.name != "function"]
    names += [n for n in FUNCTIONS if n not in _SKIP and n not in names]
    return names


def _node_expr(fn):
    if isinstance(fn, str):
        if fn in _RULE_NODES:
            return _RULE_NODES[fn]
        if fn == "logsumexp":
            return F.logsumexp(_a, _b)
        if fn == "hypot":
            return F.hypot(_a, _b)
        if fn in FUNCTIONS:
            f, low, _ = FUNCTIONS[fn]
            return f(*([_a, _b][:max(low, 2 if fn == "leaky_relu" else 1)]))
        import difflib

        close = difflib.get_close_matches(fn, node_names(), 1)
        raise InputError("no elementary function %r%s; known: %s" % (
            fn, " (did you mean %r?)" % close[0] if close else "", ", ".join(node_names())))
    if isinstance(fn, type) and issubclass(fn, sp.Function):
        return fn(_a)
    raise InputError("node_code takes a function name such as 'sigmoid' (or a SymPy Function class), got %r" % (fn,))


def _out_name(fn, expr) -> str:
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", "out")
    if not name.isidentifier() or keyword.iskeyword(name) or name in dir(__builtins__) or name in (
            "np", "inputs", "incoming_gradient", "a", "b") or name in _RULE_NODES:
        return "out"
    return name


def node_code(fn) -> str:
    """Python source of ``forward_pass`` and ``backward_pass`` for the function ``fn`` (a name
    from ``node_names()`` or a SymPy Function class), NumPy only. Raises InputError for an
    unknown name, with a suggestion."""
    expr = _node_expr(fn)
    args = [s for s in (_a, _b) if s in expr.free_symbols]
    out = Xi.of(1)
    node = Node(out, expr, tuple(args), expr)
    parts = local_partials(node, {})
    rule = rule_for(expr)
    g = sp.Symbol("incoming_gradient")
    outname = _out_name(fn, expr)
    names = {out: outname, g: "incoming_gradient"}
    names.update({_a: "inputs"} if len(args) == 1 else {s: s.name for s in args})
    printer = CodePrinter(names)
    forward = printer.doprint(expr)
    reuse = any(p.has(out) for _, p in parts)
    lines = ["def backward_pass(inputs, incoming_gradient):"]
    shown = {out: sp.Symbol(outname)} | {s: sp.Symbol(names[s]) for s in args}
    for a, p in parts:
        lines.append("    # %s" % comment("∂%s/∂%s = %s: the registry's rule %r%s" % (
            outname, names[a], text(p.xreplace(shown)), rule.name, " (reuses the forward value)" if p.has(out) else "")))
    if len(args) > 1:
        lines.append("    %s = inputs" % ", ".join(names[s] for s in args))
    if reuse:
        lines.append("    %s = %s" % (outname, forward))
    grads = [printer.doprint(p * g) if p != 0 else "np.zeros_like(incoming_gradient)" for _, p in parts]
    lines.append("    return " + (grads[0] if len(grads) == 1 else "(%s,)" % ", ".join(grads)))
    head = ["def forward_pass(inputs):"]
    if len(args) > 1:
        head.append("    %s = inputs" % ", ".join(names[s] for s in args))
    head.append("    return " + forward)
    imports = ["import numpy as np"] + (["import scipy.special"] if "scipy." in forward + "".join(grads) else [])
    helpers = sorted(printer.helpers)
    if helpers:
        raise InputError("the node code of %r needs symgrad's helper %s; use symgrad.compile for it" % (fn, helpers[0]))
    return "\n".join(imports + ["", ""] + head + ["", ""] + lines)
