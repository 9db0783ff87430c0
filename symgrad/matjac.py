"""Matrix-valued outputs of matrix expressions: ``jacobian``, ``vjp`` and ``jvp`` (methods of ``compile``).

A matrix expression whose value is not one number (``X*W``, ``(X*W).applyfunc(tanh)``,
``W*x + b``) has a Jacobian, not a gradient:

- ``f.jvp(tangents, **values)``: (value, tangent of the output), both shaped like the output;
- ``f.vjp(cotangent, **values)``: ``{name: Σ cotangent ∘ ∂out/∂name}``, each shaped like its
  parameter; the cotangent has the output's shape. It is the ordinary reverse program of
  ⟨U, out⟩ = Σ U∘out for a cotangent input U (one node appended to the graph: the reverse
  sweep of a Frobenius product seeds the output's adjoint with U), so it costs one gradient;
- ``f.jacobian(**values)``: ``{name: array of shape out.shape + param.shape}`` (JAX's layout),
  by one-hot cotangents through the reverse program or one-hot tangents through the forward
  program, whichever needs fewer directions (output entries vs parameter entries).
  Either runs a chunk of directions per call through a version of the program whose
  derivative variables carry a leading axis of directions (``LeadingAxisPrinter``), so
  there is no Python loop per entry.

These are of the output itself; ``reduce`` plays no part. ``grad``, ``value_and_grad`` and the
second-order methods differentiate one number: for such an output they refuse unless
``compile(..., reduce="sum")`` (or ``"mean"``) was asked for explicitly, and then differentiate
the sum (mean) of the entries. The default of ``reduce`` is ``DEFAULT_REDUCE``, a "sum" that
knows it was not chosen.

>>> import numpy as np, sympy as sp, symgrad as sg
>>> X, W = sp.MatrixSymbol("X", 2, 2), sp.MatrixSymbol("W", 2, 1)
>>> f = sg.compile(X * W, wrt=[W], args=[X])
>>> f.jacobian(X=np.array([[1.0, 2.0], [3.0, 4.0]]), W=np.ones((2, 1)))["W"].shape
(2, 1, 2, 1)
>>> f.vjp(np.array([[1.0], [10.0]]), X=np.array([[1.0, 2.0], [3.0, 4.0]]), W=np.ones((2, 1)))
{'W': array([[31.],
       [42.]])}
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from . import ops_matrix as O
from .emit import HEADER, HELPERS, Names, assemble, dimension_lines, generate, short_text, statement_lines
from .errors import InputError
from .ir import Graph, Node, Xi, user_text
from .matrix import check_shapes
from .naming import docstring, identifier_names
from .passes import needed
from .printing import CodePrinter
from .sweeps import Assign, sweeps

__all__ = ["Cotangent", "DefaultReduce", "DEFAULT_REDUCE", "LeadingAxisPrinter", "STACKED_HELPERS", "MatrixOutputs",
           "seeded_graph", "generate_vjp", "generate_stacked_vjp", "generate_stacked_jvp"]


class DefaultReduce(str):
    """The default of ``compile``'s ``reduce``: equal to "sum" everywhere, but not chosen by the
    user, so a matrix-valued output (not 1×1) is never summed without being asked."""

    __slots__ = ()


DEFAULT_REDUCE = DefaultReduce("sum")


class Cotangent(sp.Symbol):
    """The cotangent input of a vjp program (shaped like the output); a class of its own, so it
    never equals a user's symbol, and not a ``MatLeaf``: its shape lives in the graph's shapes."""

    def _sympystr(self, printer):
        return self.name


STACKED_HELPERS = {
    "_mm": '''
def _mm(a, b):
    """a @ b where one operand has a leading axis of k directions: one matrix product over a
    reshaped view (NumPy's stacked matmul would run k small products)."""
    if a.ndim == 3 and b.ndim == 2:
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + (b.shape[-1],))
    if a.ndim == 2 and b.ndim == 3:
        k, r, c = b.shape
        return (a @ b.transpose(1, 0, 2).reshape(r, k * c)).reshape(a.shape[0], k, c).transpose(1, 0, 2)
    return a @ b
''',
}


class LeadingAxisPrinter(CodePrinter):
    """``CodePrinter`` for programs whose derivative variables carry a leading axis of k
    directions, (k, rows, cols), or (k, 1, 1) for a scalar, while the values keep their shapes:
    NumPy's broadcasting and ``@`` then treat the axis as a batch, so only the operations that
    name their axes print differently (over the last two), and a product is one matrix product
    over a reshaped view (``_mm``). ``second.StackedPrinter`` puts the axis in the middle
    instead, for Hessian blocks, which needs its unstacked operands lifted."""

    def _print_mm(self, e):
        self.helpers.add("_mm")
        return "_mm(%s, %s)" % (self._print(e.args[0]), self._print(e.args[1]))

    def _print_T(self, e):
        return "np.swapaxes(%s, -1, -2)" % self._print(e.args[0])

    def _print_bcast_rows(self, e):
        b = self._print(e.args[0])
        return "np.broadcast_to(%s, np.shape(%s)[:-2] + (%s, np.shape(%s)[-1]))" % (b, b, self._print(e.args[1]), b)

    def _print_bcast_cols(self, e):
        a = self._print(e.args[0])
        return "np.broadcast_to(%s, np.shape(%s)[:-1] + (%s,))" % (a, a, self._print(e.args[1]))

    def _print_colsum(self, e):
        return "np.sum(%s, axis=-2, keepdims=True)" % self._print(e.args[0])

    def _print_rowsum(self, e):
        return "np.sum(%s, axis=-1, keepdims=True)" % self._print(e.args[0])

    def _print_sumall(self, e):
        return "np.sum(%s, axis=(-2, -1), keepdims=True)" % self._print(e.args[0])

    def _print_fill(self, e):
        g, r, c = (self._print(a) for a in e.args)
        return "np.broadcast_to(%s, np.shape(%s)[:-2] + (%s, %s))" % (g, g, r, c)

    def _print_trace(self, e):
        return "np.trace(%s, axis1=-2, axis2=-1)[..., None, None]" % self._print(e.args[0])

    def _print_frob(self, e):
        return "np.sum(%s * %s, axis=(-2, -1), keepdims=True)" % tuple(self._operand(a) for a in e.args)


def seeded_graph(graph):
    """(graph of ⟨U, out⟩ = Σ U∘out, U): ``graph`` with one Frobenius-product node appended, so
    that its reverse sweep (the output's adjoint is 1·U) computes Uᵀ·J for the cotangent U."""
    out = graph.output
    u = Cotangent("cotangent")
    node = Node(Xi.of(len(graph.nodes) + 1), O.frob(u, out), (u, out), sp.Symbol("<cotangent, output>"), ())
    shapes = dict(graph.shapes or {})
    shapes[u] = graph.shape(out)
    return Graph(graph.nodes + (node,), node.symbol, graph.leaves + (u,), graph.expr, shapes, graph.dims), u


def generate_vjp(graph, wrt, args):
    """A module whose ``grad(args..., cotangent, wrt...)`` returns Uᵀ·J for each parameter: the
    gradient-only program of ``symgrad.emit`` for ⟨U, out⟩ (in-place updates, arrays of their own)."""
    seeded, u = seeded_graph(graph)
    return generate(sweeps(seeded, wrt), list(args) + [u])


def _module(graph, printer, src):
    """The module source around the function ``src``: header, imports, the helpers it calls."""
    extra = "import scipy.special\n" if any(m.startswith("scipy") for m in printer.module_imports) else ""
    source = HEADER.format(expr=docstring(short_text(graph)), extra=extra)
    for h in sorted(printer.helpers):
        source += STACKED_HELPERS[h] if h in STACKED_HELPERS else HELPERS[h]
    source = source.rstrip("\n") + "\n\n\n" + src
    return source


def generate_stacked_vjp(graph, wrt, args):
    """A module with ``vjp_stacked(args..., wrt..., cotangent)``: the cotangent has a leading axis of
    k directions, (k, rows, cols), and each returned adjoint too ((k, 1, 1) for a scalar
    parameter; None where the output does not depend on it): k rows of the Jacobian per call."""
    seeded, u = seeded_graph(graph)
    sw = sweeps(seeded, wrt)
    params = list(args) + list(sw.wrt)
    names = Names(identifier_names(params + [u] + list(seeded.dims)))
    printer = LeadingAxisPrinter(names)
    reuse = {a.expr: a.target for a in sw.values}
    reverse = [Assign(a.target, a.expr.xreplace(reuse), a.note, tuple(p.xreplace(reuse) for p in a.acc))
               for a in sw.reverse]
    adjoints = [sw.adjoint[w].xreplace(reuse) if w in sw.adjoint else None for w in sw.wrt]
    returned = [g for g in adjoints if g is not None]
    body = statement_lines(printer, needed(sw.values, reverse, returned) + reverse, names)
    head = dimension_lines(seeded, params, names)  # never read off the stacked cotangent
    results = ", ".join("None" if g is None else printer.doprint(g) for g in adjoints)
    src = "def vjp_stacked(%s):\n%s\n    return (%s,)\n" % (
        ", ".join([names[p] for p in params] + [names[u]]), "\n".join(head + body) or "    pass", results)
    return assemble(_module(graph, printer, src), {"vjp_stacked": src}, names,
                    kinds=(("vjp_stacked", "vjp_stacked"),))


def generate_stacked_jvp(sw, args):
    """A module with ``jvp_stacked(args..., wrt..., tangents...)``: every tangent has a leading axis
    of directions ((k, rows, cols), or (k, 1, 1) for a scalar parameter; 1 broadcasts) and so
    does the returned tangent of the output: k columns of the Jacobian per call. ``sw``: the
    sweeps of the compiled function (its forward program, values unstacked)."""
    graph = sw.graph
    params = list(args) + list(sw.wrt)
    names = Names(identifier_names(params + list(graph.dims)))
    printer = LeadingAxisPrinter(names)
    by_target = {a.target: a for a in sw.forward}
    program, known = [], {}
    for n, a in zip(graph.nodes, sw.values):
        program.append(a)
        known[a.expr] = a.target
        t = sw.tangent.get(n.symbol)
        if t in by_target:
            d = by_target.pop(t)
            program.append(Assign(d.target, d.expr.xreplace(known), d.note))
    t_out = sw.tangent.get(graph.output)
    t_out = sp.S.Zero if t_out is None else t_out
    body = statement_lines(printer, needed(program, [], [t_out]), names)
    head = dimension_lines(graph, params, names)
    sig = ", ".join([names[p] for p in params] + [printer._print(sw.seeds[w]) for w in sw.wrt])
    src = "def jvp_stacked(%s):\n%s\n    return %s\n" % (sig, "\n".join(head + body) or "    pass",
                                                       printer.doprint(t_out))
    return assemble(_module(graph, printer, src), {"jvp_stacked": src}, names,
                    kinds=(("jvp_stacked", "jvp_stacked"),))


def _plain(v):
    return float(v) if np.ndim(v) == 0 else v


def _shape_text(shape) -> str:
    return "×".join(str(d) for d in shape)


class MatrixOutputs:
    """Mixin of ``CompiledFunction``: ``jacobian`` and ``vjp`` of a matrix expression, the
    output tangent of ``jvp``, and the refusal of an implicit sum (see the module docstring)."""

    _vjp_module = _stacked_vjp_fn = _stacked_jvp_fn = None
    jacobian_budget = 2 ** 24  # entries the largest stacked array of one jacobian call may hold (128 MB)
    jacobian_mode = None  # "reverse" (rows by cotangents) or "forward" (columns by tangents); None: the cheaper

    # ---- what grad / value_and_grad / hvp call for a matrix-valued output ---------------------
    def _check_reduction(self, method: str) -> None:
        """Raise InputError if ``method`` would sum a matrix-valued output (not 1×1) that
        ``reduce`` was not explicitly asked to sum."""
        shape = self._out_size
        if shape is None or tuple(shape) == (1, 1) or not isinstance(self.reduce, DefaultReduce):
            return
        text = user_text(self.expr)
        text = text if len(text) <= 60 else text[:57] + "..."
        raise InputError(
            "%s needs one number to differentiate, but the output %s is a %s matrix; use f.jacobian(...) for every "
            "derivative (shape output.shape + parameter.shape), f.vjp(cotangent, ...) for the gradient of "
            "Σ cotangent∘output, f.jvp(tangents, ...) for the output's tangent, or compile with reduce='sum' "
            "(or 'mean') to differentiate the sum (mean) of its entries" % (method, text, _shape_text(shape)))

    def _output_tangent(self, value, dot, arrays):
        """The tangent of a matrix-valued output as jvp returns it: shaped like the value, an
        array of its own (never a view of a tangent or an input, never a broadcast scalar)."""
        if (type(dot) is np.ndarray and dot.shape == np.shape(value) and dot.flags.writeable
                and dot.dtype.kind == "f" and not any(np.may_share_memory(dot, a) for a in arrays)):
            return dot
        return np.array(np.broadcast_to(dot, np.shape(value)), dtype=np.result_type(dot, float))

    # ---- shapes of this call ------------------------------------------------------------------
    def _output_shape(self, bound) -> tuple:
        """The output's shape in this call (``()`` for one number)."""
        if self._out_size is None:
            return ()
        sizes = None
        out = []
        for d in self._out_size:
            if d.is_Integer:
                out.append(int(d))
            else:
                if sizes is None:
                    sizes = check_shapes(self.params, dict(zip(self.names, bound)))
                out.append(int(d.xreplace(sizes)))
        return tuple(out)

    def _largest(self, bound) -> int:
        """Entries of the largest array of the programs (a node, a leaf) in this call."""
        sizes = check_shapes(self.params, dict(zip(self.names, bound))) if self.graph.dims else {}
        largest = max([int(np.size(v)) for v in bound] + [1])
        for shape in (self.graph.shapes or {}).values():
            try:
                largest = max(largest, math.prod(int(sp.sympify(d).xreplace(sizes)) for d in shape))
            except TypeError:  # a size not bound by these arrays
                continue
        return largest

    def _require_matrix(self, method: str) -> None:
        if not self.matrix:
            raise InputError(
                "f.%s is for matrix expressions (and sympy.Matrix outputs); this is a scalar expression, "
                "elementwise over a batch: f.grad is the gradient of its sum, compile with reduce=None for "
                "every sample's gradient, or compile sympy.Matrix([...]) for a vector of outputs" % method)

    # ---- vjp ----------------------------------------------------------------------------------
    def _vjp_function(self):
        if self._vjp_module is None:
            self._vjp_module = generate_vjp(self.graph, self._ir_wrt, self._ir_args)
        return self._vjp_module.functions["grad"]

    @property
    def vjp_source(self) -> str:
        """The generated vector-Jacobian-product module (built now if not yet)."""
        self._require_matrix("vjp_source")
        if self._out_size is None:
            return self.source
        self._vjp_function()
        return self._vjp_module.source

    def vjp(self, cotangent, /, *args, **values) -> dict:
        """{name: Σ cotangent ∘ ∂output/∂name}, each shaped like its parameter: the gradient of
        ⟨cotangent, output⟩, by one reverse sweep. ``cotangent`` has the output's shape (a
        number where the output is one number).

        >>> import numpy as np, sympy as sp, symgrad as sg
        >>> W = sp.MatrixSymbol("W", 2, 2)
        >>> sg.compile(W.applyfunc(sp.exp), wrt=[W]).vjp(np.ones((2, 2)), W=np.zeros((2, 2)))
        {'W': array([[1., 1.],
               [1., 1.]])}
        """
        self._require_matrix("vjp")
        bound = self._bind(args, values)
        shape = self._output_shape(bound)
        c = self._convert("cotangent", cotangent)
        if np.shape(c) != shape:
            raise InputError("the cotangent has shape %s but the output %s has shape %s; pass one weight per "
                             "output entry, an array of shape %s" % (np.shape(c), user_text(self.expr)[:60],
                                                                      shape, shape))
        n = len(self.args)
        with np.errstate(all="ignore"):
            if self._out_size is None:  # one number: the gradient, scaled
                grads = [g * c for g in self.functions["grad"](*bound)]
            else:
                grads = self._vjp_function()(*bound[:n], c, *bound[n:])
        self._explain_nonfinite(bound, grads)
        return {k: _plain(g) for k, g in zip(self._wrt_names, grads)}

    # ---- jacobian -----------------------------------------------------------------------------
    def _stacked_vjp(self):
        if self._stacked_vjp_fn is None:
            self._stacked_vjp_fn = generate_stacked_vjp(self.graph, self._ir_wrt, self._ir_args).functions[
                "vjp_stacked"]
        return self._stacked_vjp_fn

    def _stacked_jvp(self):
        if self._stacked_jvp_fn is None:
            self._stacked_jvp_fn = generate_stacked_jvp(self.sweeps, self._ir_args).functions["jvp_stacked"]
        return self._stacked_jvp_fn

    def jacobian(self, /, *args, **values) -> dict:
        """{name: ∂output/∂name}, each of shape ``output.shape + param.shape`` (JAX's layout).

        Rows by one-hot cotangents through the reverse program when the output has no more
        entries than the parameters together, else columns by one-hot tangents through the
        forward program (``f.jacobian_mode = "reverse"`` or ``"forward"`` forces one); as many
        directions per call as ``f.jacobian_budget`` allows, never a Python loop per entry.

        >>> import numpy as np, sympy as sp, symgrad as sg
        >>> W, b = sp.MatrixSymbol("W", 2, 2), sp.MatrixSymbol("b", 2, 1)
        >>> x = sp.MatrixSymbol("x", 2, 1)
        >>> J = sg.compile(W * x + b, wrt=[W, b], args=[x]).jacobian(x=np.array([[1.0], [2.0]]),
        ...                                                        W=np.zeros((2, 2)), b=np.zeros((2, 1)))
        >>> J["W"][1, 0], J["b"][:, 0, :, 0]
        (array([[0., 0.],
               [1., 2.]]), array([[1., 0.],
               [0., 1.]]))
        """
        self._require_matrix("jacobian")
        bound = self._bind(args, values)
        names = list(self._wrt_names)
        pshapes = [np.shape(bound[self._slot[k]]) for k in names]
        if self._out_size is None:  # one number: the Jacobian is the gradient
            with np.errstate(all="ignore"):
                grads = self.functions["grad"](*bound)
            self._explain_nonfinite(bound, grads)
            return {k: _plain(np.array(g, dtype=float)) for k, g in zip(names, grads)}
        out_shape = self._output_shape(bound)
        m = math.prod(out_shape)
        counts = [math.prod(s) for s in pshapes]
        chunk = max(1, int(self.jacobian_budget) // self._largest(bound))
        mode = self.jacobian_mode or ("reverse" if m <= sum(counts) else "forward")
        if mode not in ("reverse", "forward"):
            raise InputError("jacobian_mode must be 'reverse', 'forward' or None (the cheaper), got %r" % (mode,))
        with np.errstate(all="ignore"):
            if mode == "reverse":
                flat = self._jacobian_rows(bound, out_shape, m, pshapes, chunk)
            else:
                flat = self._jacobian_columns(bound, out_shape, m, pshapes, counts, chunk)
        out = {k: f.reshape(out_shape + s) for k, f, s in zip(names, flat, pshapes)}
        self._explain_nonfinite(bound, list(out.values()))
        return out

    def _jacobian_rows(self, bound, out_shape, m, pshapes, chunk) -> list:
        """[(m,) + param.shape per parameter]: k one-hot cotangents per reverse call."""
        fn = self._stacked_vjp()
        flat = [np.zeros((m,) + s) for s in pshapes]
        for start in range(0, m, chunk):
            k = min(chunk, m - start)
            units = np.zeros((k, m))
            units[np.arange(k), start + np.arange(k)] = 1.0
            res = fn(*bound, units.reshape((k,) + out_shape))
            for f, g, s in zip(flat, res, pshapes):
                if g is not None:
                    f[start:start + k] = np.broadcast_to(g, (k,) + (s or (1, 1))).reshape((k,) + s)
        return flat

    def _jacobian_columns(self, bound, out_shape, m, pshapes, counts, chunk) -> list:
        """[(m, param entries) per parameter]: k one-hot tangents per forward call."""
        fn = self._stacked_jvp()
        zeros = [np.zeros((1,) + (s or (1, 1))) for s in pshapes]
        flat = []
        for j, (s, count) in enumerate(zip(pshapes, counts)):
            f = np.zeros((m, count))
            for start in range(0, count, chunk):
                k = min(chunk, count - start)
                units = np.zeros((k, count))
                units[np.arange(k), start + np.arange(k)] = 1.0
                dots = list(zeros)
                dots[j] = units.reshape((k,) + (s or (1, 1)))
                t = fn(*bound, *dots)
                f[:, start:start + k] = np.broadcast_to(t, (k,) + out_shape).reshape(k, m).T
            flat.append(f)
        return flat
