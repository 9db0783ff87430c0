"""``symgrad.compile``: an expression -> a callable with value, grad, value_and_grad and jvp.

>>> import numpy as np, sympy as sp
>>> x, y, w = sp.symbols("x y w")
>>> f = compile(-y*sp.log(1/(1 + sp.exp(-w*x))), wrt=[w], args=[x, y])
>>> round(f.grad(x=3.0, y=1.0, w=3.0)["w"], 12)
-0.000370183728
>>> f.grad(x=np.array([3.0, 1.0]), y=np.array([1.0, 0.0]), w=3.0)["w"] == f.grad(x=3.0, y=1.0, w=3.0)["w"]
True
"""

from __future__ import annotations

import builtins
import math
import difflib
import operator

import numpy as np
import sympy as sp

from .compiled_html import CompiledHTML
from .emit import generate
from .variants import generate_batch, generate_point
from .errors import InputError
from .export import Exportable
from .graph import decompose
from .hessian import SecondOrder
from .ir import MatLeaf
from .matjac import DEFAULT_REDUCE, MatrixOutputs
from .matrix import check_shapes, decompose_matrix, is_matrix_expr, matrix_leaves
from .portable import ForeignArray, Portable, is_foreign
from .inputs import as_symbols, broadcast_message, check_wrt, float_array, free_symbols, real_number
from .rewrite import stabilize
from .sweeps import sweeps

__all__ = ["CompiledFunction", "compile", "as_symbols", "free_symbols"]  # the last two: from inputs


def _plain(v):
    """A 0-d result as a Python float, arrays unchanged."""
    return float(v) if np.ndim(v) == 0 else v


_FLOATS = frozenset({float})
_FLOATLIKE = frozenset({float, int, np.float64})  # read as float64 scalars by the NumPy path too


class CompiledFunction(SecondOrder, Portable, Exportable, MatrixOutputs, CompiledHTML):
    """A compiled expression. Values are passed by symbol name (or positionally in
    ``args + wrt`` order); arrays broadcast as in NumPy.

    - ``f(**values)``: the value, elementwise over a batch;
    - ``f.grad(**values)``: {name: gradient}, each shaped like its parameter, of the value
      summed (``reduce="sum"``) or averaged (``reduce="mean"``) over the batch;
    - ``f.value_and_grad(**values)``: (reduced value, grads) from one reverse sweep;
    - ``f.jvp(tangents, **values)``: (value, directional derivative) by forward mode;
    - a matrix expression whose value is a matrix (not 1×1): ``f.jacobian``, ``f.vjp`` and
      ``f.jvp`` of the output (symgrad.matjac); ``grad`` refuses it unless ``reduce`` was
      given explicitly ("sum"/"mean": of its entries);
    - ``f.source`` / ``f.sources``: the generated Python;
    - JAX, PyTorch, CuPy and Dask arrays go in and the same library's arrays come out of
      ``f()``, ``grad``, ``value_and_grad`` and ``jvp`` (symgrad.portable; ``f.xp_source``);
    - ``f.export(path)``: one standalone module (symgrad.export).
    """

    def __init__(self, expr, wrt, args, reduce=DEFAULT_REDUCE, check_finite=True, rewrite=True):
        if reduce not in ("sum", "mean", None):
            raise InputError("reduce must be 'sum', 'mean' or None (per-sample gradients), got %r" % (reduce,))
        if reduce is None and is_matrix_expr(expr):
            raise InputError("reduce=None (per-sample gradients) is for scalar expressions; a network's loss is "
                             "one number over the whole batch: compile the loss of one sample as a scalar "
                             "expression, or call grad on one-sample batches")
        self.expr = expr
        self.wrt = tuple(wrt)
        self.args = tuple(args)
        self.reduce = reduce
        self.check_finite = check_finite
        self.matrix = is_matrix_expr(expr)
        # Stability rewrites (symgrad.rewrite); f.rewrites lists what fired.
        if self.matrix:
            self.graph, self.rewrites = decompose_matrix(expr, rewrite=rewrite)
            out_shape = self.graph.shape(self.graph.output)
            if reduce == "mean" and not out_shape:
                raise InputError("reduce='mean' averages the entries of a matrix-valued output, but this loss is "
                                 "one number already; write the average into the loss (divide by the batch size, "
                                 "as symgrad.nn's losses do) and keep reduce='sum'")
        else:
            stable, self.rewrites = stabilize(expr) if rewrite else (expr, ())
            self.graph = decompose(stable)
        ir = [MatLeaf.of(p) if isinstance(p, sp.MatrixSymbol) else p for p in self.args + self.wrt]
        self._ir_args, self._ir_wrt = tuple(ir[:len(self.args)]), tuple(ir[len(self.args):])
        self.sweeps = sweeps(self.graph, self._ir_wrt, inline_tangents=True)
        self.module = generate(self.sweeps, self._ir_args)
        self.params = self.args + self.wrt
        self.names = tuple(p.name for p in self.params)
        self._wrt_names = tuple(w.name for w in self.wrt)
        self._slot = {n: i for i, n in enumerate(self.names)}
        self._leaves = set(self.graph.leaves)
        # per matrix argument: its slot and, per axis, a fixed size (int) or a dimension name (str)
        self._shape_plan = [(i, tuple(int(d) if d.is_Integer else str(d) for d in p.shape))
                            for i, p in enumerate(self.params) if isinstance(p, sp.MatrixSymbol)]
        self._compound_dims = any(not (d.is_Integer or d.is_Symbol) for p in self.params
                                  if isinstance(p, sp.MatrixSymbol) for d in p.shape)
        self._out_size = None
        if self.matrix and self.graph.shape(self.graph.output):
            self._out_size = self.graph.shape(self.graph.output)
        # Scalar path: the point and batch variants (symgrad.emit), built on first use (False: none).
        self._point = self._batch = None if not self.matrix else False
        self._name_set = frozenset(self.names)
        self._get = operator.itemgetter(*self.names) if len(self.names) > 1 else None
        self._data_slots = tuple(i for i, p in enumerate(self.args) if p in self._leaves)
        self._param_slots = tuple(range(len(self.args), len(self.params)))
        # scalar path: the values whose shapes must broadcast together (what the expression reads,
        # and every parameter: its gradient is reduced against the batch)
        self._bcast_slots = () if self.matrix else tuple(
            i for i, p in enumerate(self.params) if p in self._leaves or i >= len(self.args))
        # matrix path: scalar symbols take numbers; dimensions the programs divide by (a mean over
        # the batch, 1/B) must not be 0, where Python's int division would raise ZeroDivisionError
        self._scalar_slots = tuple(i for i, p in enumerate(self.params) if self.matrix and isinstance(p, sp.Symbol)
                                   and (p in self._leaves or i >= len(self.args)))
        dims = set(self.graph.dims)
        self._divisor_dims = tuple(sorted({str(d) for a in self.sweeps.values + self.sweeps.reverse
                                           + self.sweeps.forward for q in a.expr.atoms(sp.Pow)
                                           if q.exp.is_negative for d in q.base.free_symbols & dims})) if dims else ()

    @property
    def source(self) -> str:
        """The whole generated module."""
        return self.module.source

    @property
    def sources(self) -> dict:
        """Source of each generated function: ``value``, ``reverse``, ``forward``."""
        return self.module.sources

    @property
    def functions(self) -> dict:
        """The generated functions (``inspect.getsource`` works on them)."""
        return self.module.functions

    @property
    def variants(self) -> dict:
        """The scalar path's specialised modules (built now if not yet): ``"point"`` runs when
        every input is a finite Python float (``math`` on floats), ``"batch"`` when every
        argument is a float64 array of one shape and every parameter a float64 scalar (in-place
        temporaries, dot-product gradients); None where there is none (a matrix expression, a
        function without float code, no argument)."""
        if self._point is None:
            self._point = generate_point(self.sweeps, self._ir_args) or False
        if self._batch is None:
            self._batch = generate_batch(self.sweeps, self._ir_args) or False
        return {"point": self._point or None, "batch": self._batch or None}

    def _point_call(self, kind, args, values):
        """The point variant's result when every value is a finite Python float (ints and
        np.float64 are read as floats, as the NumPy path reads them), all given by name or all
        by position; None otherwise, and None when the float program raises (math.log(0), an
        overflow, 1/0) or gives a non-finite result: the NumPy program then runs, so results,
        NaN/inf and errors are always the NumPy path's."""
        if values:
            if args or values.keys() != self._name_set:
                return None
            b = self._get(values) if self._get is not None else (values[self.names[0]],)
        elif len(args) == len(self.names) and args:
            b = args
        else:
            return None
        kinds = set(map(type, b))
        try:
            if kinds != _FLOATS:
                if not kinds <= _FLOATLIKE:
                    return None
                b = tuple(map(float, b))
            if not math.isfinite(sum(b)):
                return None
            if self._point is None:
                self._point = generate_point(self.sweeps, self._ir_args) or False
            if not self._point:
                return None
            r = self._point.functions[kind](*b)
            if not math.isfinite(sum(r) if kind == "grad" else r[0] + sum(r[1]) if kind == "reverse" else r):
                return None
        except (ArithmeticError, ValueError):
            return None
        return r

    def _batch_fn(self, kind, bound):
        """The batch variant's function when the bound values fit it: every argument the
        expression reads a float64 array of one shape (at least 1-D), every parameter a float64
        scalar; else None (the general program runs)."""
        if self._batch is False or not self._data_slots:
            return None
        shape = None
        for i in self._data_slots:
            v = bound[i]
            if type(v) is not np.ndarray or v.dtype.type is not np.float64:
                return None
            if shape is None:
                shape = v.shape
            elif v.shape != shape:
                return None
        if not shape:
            return None
        for i in self._param_slots:
            if type(bound[i]) is not np.float64:
                return None
        if self._batch is None:
            self._batch = generate_batch(self.sweeps, self._ir_args) or False
        return self._batch.functions[kind] if self._batch else None

    def __repr__(self) -> str:
        return "<symgrad compiled %s wrt %s, %d nodes>" % (
            sp.sstr(self.expr)[:60], ", ".join(w.name for w in self.wrt), len(self.graph))

    def _bind(self, args, values) -> list:
        if not args and len(values) == len(self.names) and all(n in values for n in self.names):
            bound = [self._convert(n, values[n]) for n in self.names]  # the common call: all by name
        else:
            bound = self._bind_slow(args, values)
        if self.matrix:
            if self._shape_plan:
                self._check_shapes(bound)
            for i in self._scalar_slots:
                if bound[i].shape:
                    raise InputError("%s is a scalar symbol of this matrix expression, so it takes a number, but its "
                                     "value has shape %s; pass a number, or declare it as a MatrixSymbol of that shape"
                                     % (self.names[i], bound[i].shape))
        elif self._bcast_slots:
            # every converted value has a shape; one distinct non-empty shape always broadcasts
            shape = None
            for i in self._bcast_slots:
                s = bound[i].shape
                if s and s != shape:
                    if shape is not None:
                        self._check_broadcast(bound)
                        break
                    shape = s
        return bound

    def _check_broadcast(self, bound) -> None:
        """Raise InputError naming the values whose shapes do not broadcast together."""
        shapes = [bound[i].shape for i in self._bcast_slots]
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            raise InputError(broadcast_message([(self.names[i], s, i >= len(self.args))
                                                for i, s in zip(self._bcast_slots, shapes)])) from None

    def _empty_batch(self, bound) -> InputError:
        """The error for reduce="mean" over a batch with no samples."""
        empty = ", ".join("%s has shape %s" % (n, np.shape(v)) for n, v in zip(self.names, bound)
                          if 0 in np.shape(v)) or "the output has no entries"
        return InputError("reduce='mean' averages over the batch, but the batch is empty (%s): a mean over no "
                          "samples is undefined; pass at least one sample, or compile with reduce='sum' (a sum over "
                          "an empty batch is 0 and its gradient zeros)" % empty)

    def _bind_slow(self, args, values) -> list:
        return [self._convert(n, v) for n, v in zip(self.names, self._gather(args, values))]

    def _gather(self, args, values) -> list:
        """The values in ``names`` order, as given (InputError for a missing, unknown or repeated one)."""
        if len(args) > len(self.names):
            raise InputError("got %d positional values but this function takes %d (%s)"
                             % (len(args), len(self.names), ", ".join(self.names)))
        bound = list(args) + [None] * (len(self.names) - len(args))
        given = [True] * len(args) + [False] * (len(self.names) - len(args))
        for k, v in values.items():
            i = self._slot.get(k)
            if i is None:
                close = difflib.get_close_matches(k, self.names, 1)
                hint = " (did you mean %r?)" % close[0] if close else ""
                raise InputError("unexpected value %r%s; this function takes %s" % (k, hint, ", ".join(self.names)))
            if given[i]:
                raise InputError("value for %r given twice" % k)
            bound[i], given[i] = v, True
        missing = [n for n, g in zip(self.names, given) if not g]
        if missing:
            raise InputError("missing value for %s; pass %s" % (
                ", ".join(repr(m) for m in missing), ", ".join("%s=..." % m for m in missing)))
        return bound

    def _check_shapes(self, bound) -> None:
        """Matrix arguments: 2-D, fixed sizes as declared, symbolic sizes consistent (the fast
        check; ``check_shapes`` explains a mismatch, naming the culprit)."""
        sizes = {}
        for i, (e0, e1) in self._shape_plan:
            shape = getattr(bound[i], "shape", ())
            if len(shape) != 2:
                check_shapes(self.params, dict(zip(self.names, bound)))
            n0, n1 = shape
            if (sizes.setdefault(e0, n0) if type(e0) is str else e0) != n0 or \
                    (sizes.setdefault(e1, n1) if type(e1) is str else e1) != n1:
                check_shapes(self.params, dict(zip(self.names, bound)))
        if self._compound_dims:
            check_shapes(self.params, dict(zip(self.names, bound)))
        for d in self._divisor_dims:
            if not sizes.get(d, 1):
                culprit = next(("%s has shape %s" % (self.names[i], bound[i].shape) for i, axes in self._shape_plan
                                if d in axes), "")
                raise InputError("the dimension %s is 0 (%s), and this expression divides by %s (a mean over the "
                                 "batch, say), which has no value over nothing; pass at least one row, or write the "
                                 "loss as a sum" % (d, culprit, d))

    def _convert(self, name, v):
        if type(v) is np.ndarray and v.dtype.kind == "f" and (v.ndim == 2 or not self._shape_plan):
            # fast path: a NaN or inf makes the sum non-finite; only then look closer
            if self.check_finite and v.size and not math.isfinite(v.sum()) and not np.isfinite(v).all():
                raise InputError("value of %r contains nan or inf; symgrad needs finite inputs" % name)
            return v if v.ndim else v[()]
        if isinstance(v, (builtins.float, builtins.int)) and not isinstance(v, bool):
            try:
                f = np.float64(v)  # NumPy semantics: 1/0 is inf and (-1)**(1/3) nan, never Python errors
            except OverflowError:  # an int beyond float range (10**400)
                f = np.float64(real_number(name, v))  # raises InputError saying it does not fit
            if self.check_finite and not math.isfinite(f):
                raise InputError("value of %r is %r; symgrad needs finite numbers" % (name, v))
            return f
        if is_foreign(v):  # a JAX, PyTorch, CuPy or Dask array: the methods run symgrad.portable's path
            raise ForeignArray(name, v)
        try:
            a = np.asarray(v)
        except Exception:  # noqa: BLE001 - anything NumPy cannot read is the user's value
            a = None
        if a is None or a.dtype.kind not in "biuf":
            # SymPy numbers, Fractions, Decimals, ints beyond int64 (object arrays, lists of them):
            # converted one by one; complex, strings, ragged lists: InputError naming the value
            a = float_array(name, v, a)
        elif a.dtype.kind != "f":
            a = a.astype(np.float64)
        # a NaN or inf makes the sum non-finite (one fast pass); only then look element by element
        if self.check_finite and not math.isfinite(a.sum()) and not np.isfinite(a).all():
            raise InputError("value of %r contains nan or inf; symgrad needs finite inputs" % name)
        return a if a.ndim else a[()]

    def __call__(self, /, *args, **values):
        if self._point is not False:
            r = self._point_call("value", args, values)
            if r is not None:
                return r
        try:
            bound = self._bind(args, values)
        except ForeignArray:
            return self._portable_call("value", args, values)
        with np.errstate(all="ignore"):
            value = (self._batch_fn("value", bound) or self.functions["value"])(*bound)
        if self._out_size is not None:  # a matrix-valued output: the matrix itself
            return value
        return _plain(value)

    def _reduced(self, value, grads, bound):
        """The value and gradients combined over the batch (or a matrix output's entries)."""
        n = np.size(value)
        total = np.sum(value) if n != 1 or np.ndim(value) else value
        if self.reduce == "mean" and n == 0:
            raise self._empty_batch(bound)
        if self.reduce == "mean" and n > 1:
            total = total / n
            grads = [g / n for g in grads]
        return _plain(total), dict(zip(self._wrt_names, grads))

    def value_and_grad(self, /, *args, **values):
        """(value, {name: gradient}) — value reduced like the gradients (sum or mean; with
        ``reduce=None`` the value and the gradients per sample)."""
        if self._out_size is not None:
            self._check_reduction("f.value_and_grad")
        if self.reduce is None:
            return self(*args, **values), self._per_sample(args, values)
        if self._point is not False:
            r = self._point_call("reverse", args, values)
            if r is not None:
                return r[0], dict(zip(self._wrt_names, r[1]))
        try:
            bound = self._bind_unchecked(args, values)
        except ForeignArray:
            return self._portable_call("reverse", args, values)
        with np.errstate(all="ignore"):
            value, grads = (self._batch_fn("reverse", bound) or self.functions["reverse"])(*bound)
        if self.matrix and self._out_size is None:  # a network's loss: one number, gradients shaped already
            value = float(value)
            if self.check_finite and not math.isfinite(value):
                self._explain_nonfinite(bound, (value,))
            return value, dict(zip(self._wrt_names, grads))
        self._explain_nonfinite(bound, (float(np.sum(value)),))
        return self._reduced(value, grads, bound)

    def _bind_unchecked(self, args, values) -> list:
        """``_bind``, with every input checked: a NaN or inf input is an error even where a
        Piecewise branch hides it from the result (one fast sum per array input)."""
        return self._bind(args, values)

    def _explain_nonfinite(self, bound, results) -> None:
        """If a result is not finite, raise InputError naming a non-finite input, if there is one."""
        if self.check_finite and not all(math.isfinite(r if type(r) is float else float(np.sum(r))) for r in results):
            for name, v in zip(self.names, bound):
                self._convert(name, v)

    def grad(self, /, *args, **values) -> dict:
        """{name: gradient of the (summed or averaged) value}, each shaped like its parameter.

        Runs the gradient-only program: values only the output needs are not computed. With
        ``reduce=None`` each gradient is per sample, the batch axes in front (symgrad.persample)."""
        if self._out_size is not None:
            self._check_reduction("f.grad")
        if self.reduce is None:
            return self._per_sample(args, values)
        if self._point is not False:
            r = self._point_call("grad", args, values)
            if r is not None:  # one point: the batch has one sample, so "mean" divides by 1
                return dict(zip(self._wrt_names, r))
        try:
            bound = self._bind_unchecked(args, values)
        except ForeignArray:
            return self._portable_call("grad", args, values)
        with np.errstate(all="ignore"):
            grads = (self._batch_fn("grad", bound) or self.functions["grad"])(*bound)
        self._explain_nonfinite(bound, grads)
        if self.reduce == "mean":
            if self._out_size is not None:
                n = int(np.prod([self._dim(d, bound) for d in self._out_size]))
            else:
                n = int(np.prod(np.broadcast_shapes(*(np.shape(v) for v, p in zip(bound, self.params)
                                                      if p in self._leaves))))
            if n == 0:
                raise self._empty_batch(bound)
            if n > 1:
                grads = [g / n for g in grads]
        return dict(zip(self._wrt_names, grads))

    def _per_sample(self, args, values) -> dict:
        if getattr(self, "_per_sample_fn", None) is None:
            from .persample import generate_per_sample
            self._per_sample_fn = generate_per_sample(self.graph, self._ir_wrt, self._ir_args).functions["per_sample"]
        bound = self._bind_unchecked(args, values)
        with np.errstate(all="ignore"):
            grads = self._per_sample_fn(*bound)
        self._explain_nonfinite(bound, grads)
        return {k: _plain(g) for k, g in zip(self._wrt_names, grads)}

    def _dim(self, d, bound) -> int:
        """The size of output dimension ``d`` (a number or a dimension symbol) in this call."""
        if d.is_Integer:
            return int(d)
        sizes = check_shapes(self.params, dict(zip(self.names, bound)))
        return int(d.xreplace(sizes))

    def _check_tangents(self, tangents) -> list:
        """The parameter names, after checking that ``tangents`` maps some of them to values."""
        wrt_names = [w.name for w in self.wrt]
        if not isinstance(tangents, dict):
            raise InputError("tangents must be a dict {parameter name: tangent}, got %s" % type(tangents).__name__)
        for k in tangents:
            if k not in wrt_names:
                raise InputError("tangent given for %r, which is not a parameter; parameters: %s"
                                 % (k, ", ".join(wrt_names)))
        return wrt_names

    def jvp(self, tangents, /, *args, **values):
        """(value, J·v): directional derivative along ``tangents`` ({wrt name: tangent}, a missing
        one is zero), per sample; for a matrix expression the tangent of its value, shaped like it."""
        wrt_names = self._check_tangents(tangents)
        try:
            return self._jvp_numpy(wrt_names, tangents, args, values)
        except ForeignArray:
            return self._portable_call("forward", args, values, tangents)

    def _jvp_numpy(self, wrt_names, tangents, args, values):
        bound = self._bind(args, values)
        dots = []
        for k, w in zip(wrt_names, self.wrt):
            like = bound[self._slot[k]]
            if k not in tangents:
                dots.append(np.zeros(np.shape(like)) if self.matrix else np.float64(0.0))
                continue
            d = self._convert(k + " tangent", tangents[k])
            ds, ls = np.shape(d), np.shape(like)
            if ds != ls and (self.matrix or len(ds) > len(ls) or any(
                    a != 1 and a != b for a, b in zip(reversed(ds), reversed(ls)))):
                raise InputError("the tangent of %r has shape %s but %r has shape %s; pass a tangent shaped like "
                                 "its parameter%s" % (k, ds, k, ls, "" if self.matrix else
                                                       " (a number is the same direction in every entry)"))
            dots.append(d)
        with np.errstate(all="ignore"):
            value, dot = self.functions["forward"](*bound, *dots)
        if self.matrix:
            if self._out_size is not None:
                return value, self._output_tangent(value, dot, bound + dots)
            return _plain(value), _plain(dot)
        return _plain(value), _plain(np.broadcast_to(dot, np.shape(value)) if np.ndim(dot) < np.ndim(value) else dot)


def compile(expr, wrt, args=None, reduce: str = DEFAULT_REDUCE, check_finite: bool = True,  # noqa: A001
            rewrite: bool = True) -> CompiledFunction:
    """Compile ``expr`` into NumPy functions for its value and its derivatives w.r.t. ``wrt``.

    ``args`` are the other inputs (default: the remaining free symbols, sorted by name).
    ``reduce`` says how gradients combine over a batch: "sum" (default) or "mean". A matrix
    expression whose value is a matrix (not 1×1) has f.jacobian / f.vjp / f.jvp; its grad,
    value_and_grad and hvp need reduce="sum" or "mean" given explicitly (the sum or mean of the
    entries) and otherwise raise InputError rather than sum it silently.
    ``rewrite`` applies the stability rewrites of symgrad.rewrite (listed in ``f.rewrites``).
    Raises InputError when a wrt symbol is not in the expression or a symbol is unaccounted for.

    >>> import sympy as sp
    >>> x, w = sp.symbols("x w")
    >>> f = compile(sp.sin(w*x), wrt=[w])
    >>> f.value_and_grad(x=2.0, w=0.0)
    (0.0, {'w': 2.0})
    >>> f.jvp({"w": 1.0}, x=2.0, w=0.0)
    (0.0, 2.0)
    """
    try:
        expr = sp.sympify(expr, strict=True)
    except (sp.SympifyError, TypeError):
        raise InputError("expected a SymPy expression, got %r; parse strings with symgrad.parse_expr" % (expr,)) from None
    if isinstance(expr, sp.MatrixBase):  # a vector or matrix of scalar expressions
        return _vector(expr, wrt, args, reduce=reduce, check_finite=check_finite, rewrite=rewrite)
    matrix = is_matrix_expr(expr)
    known = sum(matrix_leaves(expr)[:2], ()) if matrix else tuple(free_symbols(expr))
    wrt = as_symbols(wrt, "wrt", known)
    if not wrt:
        raise InputError("wrt is empty; name the parameters to differentiate with respect to")
    wrt_set = set(wrt)
    if args is None:
        rest = [s for s in known if s not in wrt_set]
        args = rest if matrix else sorted(rest, key=lambda s: s.name)
    args = as_symbols(args, "args", known, strict=False)  # an unused argument is harmless
    check_wrt(expr, wrt, args)
    given = wrt_set | set(args)
    missing = [s.name for s in known if s not in given]
    if missing:
        raise InputError("the expression uses %s, which is in neither args nor wrt; add it to args"
                         % ", ".join(sorted(missing)))
    return CompiledFunction(expr, wrt, args, reduce=reduce, check_finite=check_finite, rewrite=rewrite)


def _vector(matrix, wrt, args, **options):
    """``compile`` of an explicit SymPy Matrix of scalar expressions (symgrad.vector)."""
    from .vector import VectorFunction

    if any(isinstance(e, sp.MatrixExpr) or not isinstance(e, sp.Expr) for e in matrix):
        raise InputError("a Matrix output must hold scalar expressions; for a matrix expression of "
                         "MatrixSymbols pass the expression itself")
    known = tuple(sorted(set().union(*(free_symbols(e) for e in matrix)), key=lambda s: s.name))
    wrt = as_symbols(wrt, "wrt", known)
    if not wrt:
        raise InputError("wrt is empty; name the parameters to differentiate with respect to")
    if args is None:
        args = [s for s in known if s not in set(wrt)]
    args = as_symbols(args, "args", known, strict=False)
    check_wrt(matrix, wrt, args)
    missing = [s.name for s in known if s not in set(wrt) | set(args)]
    if missing:
        raise InputError("the expression uses %s, which is in neither args nor wrt; add it to args"
                         % ", ".join(sorted(missing)))
    return VectorFunction(matrix, wrt, args, compile, **options)
