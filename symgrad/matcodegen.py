"""Matrix ξ graph -> NumPy source (value, reverse and forward sweeps) -> a compiled function.

The operation table ``symgrad.matrix.OPS`` supplies each node's value, vector-Jacobian and
Jacobian-vector code; this module owns the statements: names, order, accumulation, aliases.

>>> import numpy as np, sympy as sp, symgrad as sg
>>> B = sp.Symbol("B", integer=True, positive=True)
>>> X, w = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("w", 2, 1)
>>> f = sg.compile(sp.Trace((X*w).T*(X*w)), wrt=[w], args=[X])
>>> f.grad(X=np.array([[1.0, 2.0], [3.0, 4.0]]), w=np.array([[1.0], [0.0]]))["w"].tolist()
[[20.0], [28.0]]
"""

from __future__ import annotations

import hashlib
import linecache
import math

import numpy as np
import sympy as sp

from .codegen import HEADER, Module, identifier_names
from .compiled import CompiledFunction, _plain
from .errors import InputError
from .graph import Xi
from .matrix import _D, check_shapes, decompose_matrix, matrix_leaves, source_text
from .matrules import ELEMENTWISE_VJP, INPLACE_PARTIALS, INPLACE_VALUES, OPS
from .matrules import pre_statements as _pre
from .printing import CodePrinter
from .rules import rule_for

__all__ = ["MatrixCompiledFunction", "generate_matrix", "compile_matrix"]


class _Ctx:
    """What an OPS entry sees: argument code ``a``, output name ``o``, and ``code(expr, extra)``."""

    def __init__(self, node, a, o, names):
        self.node, self.a, self.o, self._names = node, a, o, names

    def code(self, expr, extra):
        names = dict(self._names)
        # Dummies print through their own printer method; stand plain symbols in for them.
        stand = {k: sp.Symbol("_sg_arg%d" % i) for i, k in enumerate(extra)}
        names.update({stand[k]: v for k, v in extra.items()})
        return CodePrinter(names).doprint(sp.sympify(expr).xreplace(stand))


def _leaf_code(e, names):
    if isinstance(e, sp.OneMatrix):
        return "np.ones((%s, %s))" % (CodePrinter(names).doprint(e.rows), CodePrinter(names).doprint(e.cols))
    if isinstance(e, sp.ZeroMatrix):
        return "np.zeros((%s, %s))" % (CodePrinter(names).doprint(e.rows), CodePrinter(names).doprint(e.cols))
    if isinstance(e, sp.Identity):
        return "np.eye(%s)" % CodePrinter(names).doprint(e.rows)
    return CodePrinter(names).doprint(e)


def generate_matrix(graph, args, wrt, inplace: bool = True) -> Module:
    """Source for ``value``, ``value_and_grad`` (reverse) and ``jvp`` (forward) of a matrix graph.

    ``inplace=False`` keeps every intermediate value intact (tables read them all)."""
    params = list(args) + list(wrt)
    names = identifier_names(params)
    dims = []
    for p in params:
        if isinstance(p, sp.MatrixSymbol):
            for axis, d in enumerate(p.shape):
                if d.is_Symbol and d not in names and d not in [x for x, _ in dims]:
                    dims.append((d, "%s.shape[%d]" % (names[p], axis)))
    for d, _ in dims:
        names[d] = identifier_names([d])[d] if d.name not in names.values() else d.name + "_"
    for n in graph.nodes:
        names[n.symbol] = "xi%d" % n.index if hasattr(n, "index") else "xi%d" % n.symbol.index

    def code_of(a):
        return names[a] if a in names else _leaf_code(a, names)

    # A bias broadcast read only by sums is not materialised: NumPy broadcasts the (1, n) row.
    consumers: dict = {}
    for n in graph.nodes:
        for a in n.args:
            consumers.setdefault(a, []).append(n)
    inline = {n.symbol for n in graph.nodes if inplace and n.op == "broadcast_rows" and n.symbol != graph.output
              and all(c.op == "add" for c in consumers.get(n.symbol, []))}
    for n in graph.nodes:
        if n.symbol in inline:
            names[n.symbol] = code_of(n.args[0])

    ctxs = {n.symbol: _Ctx(n, [code_of(a) for a in n.args], names[n.symbol], names) for n in graph.nodes}
    head = ["    %s = %s  # dimension" % (names[d], src) for d, src in dims]
    values = []
    per_node = []  # the value statements of each node, for interleaving with tangents
    fresh = set()
    for n in graph.nodes:
        c = ctxs[n.symbol]
        start = len(values)
        values += ["    " + s for s in _pre(c)]
        note = source_text(n.source)
        first = n.args[0] if n.args else None
        if n.symbol in inline:
            values.append("    # %s: %s broadcast over the rows by NumPy in the sum below" % (n.name, c.a[0]))
        elif (inplace and n.op == "add" and all(k == 1 for k in n.param) and isinstance(first, Xi)
              and len(consumers.get(first, [])) == 1 and graph.nodes[first.index - 1].op == "matmul"):
            # X@W + b: add in place into the fresh product nobody else reads
            values.append("    %s = %s  # %s" % (c.o, c.a[0], note))
            values.append("    %s += %s" % (c.o, " + ".join(c.a[1:])))
        else:
            code = OPS[n.op]["value"](c)
            kernel = INPLACE_VALUES.get(rule_for(n.param).name) if n.op == "elementwise" else None
            if (inplace and kernel and first in fresh and len(consumers.get(first, [])) == 1
                    and n.param.args == (_D,)):
                # tanh(X@W + b) overwrites the fresh pre-activation nobody else reads
                values += ["    " + ln for ln in kernel(c.a[0])]
                code = c.a[0]
            values.append("    %s = %s  # %s" % (c.o, code, note))
        if n.op in ("matmul", "add") and n.symbol not in inline:
            fresh.add(n.symbol)  # a new buffer whose own derivative rules never read it
        per_node.append(values[start:])
    out = code_of(graph.output)

    active = set(wrt)
    for n in graph.nodes:
        if any(a in active for a in n.args):
            active.add(n.symbol)

    # reverse sweep
    adj = {}
    rev = []
    owned = set()  # adjoint arrays created here and read by one consumer only: safe to update in place
    if graph.nodes:
        adj[graph.output] = "1.0" if graph.nodes[-1].shape == () else "np.ones_like(%s)" % out
    for n in reversed(graph.nodes):
        g = adj.get(n.symbol)
        if g is None:
            continue
        c = ctxs[n.symbol]
        active_args = [a for a in n.args if a in active]
        for i, a in enumerate(n.args):
            if a not in active:
                continue
            contrib = OPS[n.op]["vjp"](c, i, g)
            if (n.op == "sum" and isinstance(a, Xi) and graph.nodes[a.index - 1].op in ELEMENTWISE_VJP
                    and len(consumers.get(a, [])) == 1):
                contrib = g  # the scalar adjoint broadcasts inside the next elementwise product
            target = "%s_bar" % (code_of(a) if not isinstance(a, Xi) else "xi%d" % a.index)
            note = "# ∂%s/∂%s" % (n.name, sp.sstr(a))
            if a in adj:
                rev.append("    %s = %s + %s  %s" % (target, adj[a], contrib, note))
                adj[a] = target
                owned.add(target)
            elif contrib.isidentifier():
                adj[a] = contrib
                owned.discard(contrib)  # now shared by two variables
            elif (inplace and n.op == "elementwise" and g in owned and len(active_args) == 1
                  and contrib.startswith(g + "*") and isinstance(a, Xi)):
                kernel = INPLACE_PARTIALS.get(rule_for(n.param).name)
                lines = kernel(g, c.o) if kernel else ["%s *= %s" % (g, contrib[len(g) + 1:])]
                rev += ["    " + ln for ln in lines]
                rev[-1] += "  %s (in place: %s = %s)" % (note, target, g)
                adj[a] = g
            else:
                rev.append("    %s = %s  %s" % (target, contrib, note))
                adj[a] = target
                if not contrib.startswith("np.broadcast_to"):
                    owned.add(target)
    grads = ", ".join(adj.get(w, "np.zeros_like(%s)" % names[w]) for w in wrt)
    for n in graph.nodes:  # where each node's adjoint lives once the reverse sweep has run (tables read it)
        if n.symbol in adj:
            names["bar:%d" % n.symbol.index] = adj[n.symbol]

    # forward sweep, interleaved with the values
    dot = {w: "%s_dot" % names[w] for w in wrt}
    fwd = []
    for n, lines in zip(graph.nodes, per_node):
        c = ctxs[n.symbol]
        fwd += lines
        if n.symbol not in active:
            continue
        t = OPS[n.op]["jvp"](c, [dot.get(a) for a in n.args])
        if t is None:
            continue
        if t.isidentifier():
            dot[n.symbol] = t
        else:
            dot[n.symbol] = "%s_dot" % c.o
            fwd.append("    %s = %s" % (dot[n.symbol], t))

    sig = ", ".join(names[p] for p in params)
    value_src = "def value(%s):\n%s\n    return %s\n" % (sig, "\n".join(head + values), out)
    if not inplace:  # the table's tape: every value and adjoint by name
        grads = "locals()"
    reverse_src = "def value_and_grad(%s):\n%s\n    return %s, (%s,)\n" % (
        sig, "\n".join(head + values + rev), out, grads)
    forward_src = "def jvp(%s, %s):\n%s\n    return %s, %s\n" % (
        sig, ", ".join("%s_dot" % names[w] for w in wrt), "\n".join(head + fwd), out, dot.get(graph.output, "0.0"))
    source = HEADER.format(expr=sp.sstr(graph.expr)[:2000].replace('"""', "'''"), extra="")
    source += "\n\n" + value_src + "\n\n" + reverse_src + "\n\n" + forward_src
    filename = "<symgrad-%s>" % hashlib.sha1(source.encode()).hexdigest()[:12]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)
    functions = {"value": namespace["value"], "reverse": namespace["value_and_grad"], "forward": namespace["jvp"]}
    return Module(source, {"value": value_src, "reverse": reverse_src, "forward": forward_src},
                  functions, {str(k): v for k, v in names.items()}, filename)


class MatrixCompiledFunction(CompiledFunction):
    """A compiled network loss (or matrix expression): same interface as CompiledFunction.

    Matrix values are 2-D arrays; symbolic dimensions (a batch size B) are bound from them.
    Each gradient has its parameter's shape. The loss is used as written (no extra reduction).
    """

    def __init__(self, expr, wrt, args, reduce="sum", check_finite=True):
        self.expr = expr
        self.wrt = tuple(wrt)
        self.args = tuple(args)
        self.reduce = reduce
        self.check_finite = check_finite
        self.graph = decompose_matrix(expr)
        self.module = generate_matrix(self.graph, self.args, self.wrt)
        self.params = self.args + self.wrt
        self.names = tuple(p.name for p in self.params)
        self._slot = {n: i for i, n in enumerate(self.names)}
        self._wrt_names = tuple(w.name for w in self.wrt)
        # per matrix argument: its slot and, per axis, a fixed size (int) or a dimension name (str)
        self._shape_plan = [(i, tuple(int(d) if d.is_Integer else str(d) for d in p.shape))
                            for i, p in enumerate(self.params) if isinstance(p, sp.MatrixSymbol)]

    def _bind(self, args, values):
        if not args and len(values) == len(self.names) and all(n in values for n in self.names):
            bound = [self._convert(n, values[n]) for n in self.names]  # the common call: all by name
        else:
            bound = super()._bind(args, values)
        sizes = {}
        for i, (e0, e1) in self._shape_plan:  # the fast check; check_shapes explains a mismatch
            shape = getattr(bound[i], "shape", ())
            if len(shape) != 2:
                check_shapes(self.params, dict(zip(self.names, bound)))
            n0, n1 = shape
            if (sizes.setdefault(e0, n0) if type(e0) is str else e0) != n0 or \
                    (sizes.setdefault(e1, n1) if type(e1) is str else e1) != n1:
                check_shapes(self.params, dict(zip(self.names, bound)))
        return bound

    def _convert(self, name, v):
        if type(v) is np.ndarray and v.dtype.kind == "f" and v.ndim == 2:
            # fast path: a NaN or inf makes the sum non-finite; only then look closer
            if self.check_finite and not math.isfinite(v.sum()) and not np.isfinite(v).all():
                raise InputError("value of %r contains nan or inf; symgrad needs finite inputs" % name)
            return v
        a = super()._convert(name, v)
        return np.asarray(a, dtype=float) if np.ndim(a) == 0 and isinstance(a, float) else a

    def value_and_grad(self, /, *args, **values):
        bound = self._bind_unchecked(args, values)  # a NaN/inf input shows in the loss: checked there
        with np.errstate(all="ignore"):
            value, grads = self.functions["reverse"](*bound)
        value = _plain(value)
        self._explain_nonfinite(bound, (value,))
        return value, dict(zip(self._wrt_names, map(np.asarray, grads)))

    def grad(self, /, *args, **values) -> dict:
        """{name: gradient}, each shaped like its parameter."""
        return self.value_and_grad(*args, **values)[1]

    def jvp(self, tangents, /, *args, **values):
        """(value, J·v): the directional derivative along ``tangents`` ({parameter name: array})."""
        wrt_names = self._check_tangents(tangents)
        bound = self._bind(args, values)
        dots = [np.asarray(tangents[k], float) if k in tangents else np.zeros(np.shape(bound[self._slot[k]]))
                for k in wrt_names]
        with np.errstate(all="ignore"):
            value, dot = self.functions["forward"](*bound, *dots)
        return _plain(value), _plain(dot)


def compile_matrix(expr, wrt, args, check_finite=True) -> MatrixCompiledFunction:
    """``symgrad.compile`` for expressions built from matrix symbols (called by it)."""
    mats, scalars, dims = matrix_leaves(expr)
    present = set(mats) | set(scalars)
    for w in wrt:
        if w not in present:
            raise InputError("%s is not in the expression (its symbols: %s); drop it from wrt or check the spelling"
                             % (w, ", ".join(s.name for s in mats + scalars)))
    if args is None:
        args = [s for s in mats + scalars if s not in wrt]
    missing = [s.name for s in mats + scalars if s not in wrt and s not in args]
    if missing:
        raise InputError("the expression uses %s, which is in neither args nor wrt; add it to args"
                         % ", ".join(missing))
    return MatrixCompiledFunction(expr, wrt, args, check_finite=check_finite)
