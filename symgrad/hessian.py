"""Second-order methods of compiled functions: ``hvp``, ``hessian``, ``hessian_diag``.

All three differentiate the reduced value (summed or averaged over the batch, as ``reduce``
says), like ``grad``. ``hvp`` is one forward-over-reverse sweep (``symgrad.second``), built on
first use. ``hessian`` returns JAX's layout ``{a: {b: array of shape a.shape + b.shape}}``.

- **Matrix expressions** (``symgrad.hessian_programs.generate_hessian``): one program per parameter p
  carries all of p's unit directions at once (a block of p's rows per call when the stacked
  tangents would be large), with products printed as single matrix products and the unit
  directions as slices, so the structure is the program: for logistic regression
  ``hessian`` runs ``Xᵀ·(s·X)`` and ``hessian_diag`` ``Σₙ X[n,k]²·s[n]`` (one einsum, no d × d
  work). The blocks ∂²L/∂q∂p with q before p are the transposes of the ones already computed.
  ``hessian_diag`` keeps only p's own result and takes the diagonal of its last product
  through sums, scalings and variables (``hessian_diag_paths`` says "structure" where p's
  directions reach it through elementwise operations only: as cheap as a gradient, and
  "stacked" where they pass through other products first); where the last operation is
  anything else the documented fallback computes p's column block a block of rows at a time
  and reads its diagonal off ("columns"): the cost of k HVPs, never the full Hessian at once.
  ``hessian_source`` and ``hessian_diag_source`` show the programs.
- **Scalar expressions**: ``hessian`` runs one HVP per parameter entry; ``hessian_diag`` one
  HVP per parameter: every sample reads one entry of each parameter, so a parameter's own
  block of the Hessian is diagonal and H·(ones) is its diagonal.

>>> import sympy as sp
>>> import symgrad as sg
>>> x, w, b = sp.symbols("x w b")
>>> f = sg.compile(sp.exp(w * x + b), wrt=[w, b])
>>> f.hvp({"w": 1.0}, x=2.0, w=0.0, b=0.0)
{'w': 4.0, 'b': 2.0}
>>> f.hessian(x=2.0, w=0.0, b=0.0)
{'w': {'w': 4.0, 'b': 2.0}, 'b': {'w': 2.0, 'b': 1.0}}
>>> f.hessian_diag(x=2.0, w=0.0, b=0.0)
{'w': 4.0, 'b': 1.0}
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from .errors import InputError
from .hessian_programs import generate_hessian
from .portable import ForeignArray, is_foreign
from .second import generate_hvp
from .sweeps import sweeps

__all__ = ["SecondOrder"]


def _plain(v):
    return float(v) if np.ndim(v) == 0 else v


def _owned(a, shape, bound):
    """``a`` as a writeable float64 array of ``shape`` of its own: itself where it is one (a
    fresh result of the program), else a copy (a broadcast view, float32, a view of an input)."""
    if type(a) is np.ndarray and a.shape == shape and a.dtype == np.float64 and a.flags.writeable and (
            a.flags.owndata or not any(type(v) is np.ndarray and np.may_share_memory(a, v) for v in bound)):
        return a
    return np.array(np.broadcast_to(a, shape), dtype=float)


class SecondOrder:
    """Mixin of ``CompiledFunction``: the second-order methods (see the module docstring)."""

    _hvp_fn = None
    stack_budget = 2 ** 25  # elements the stacked tangents of one call may hold (256 MB of float64)

    def _second_sweeps(self):
        """The first-order programs every second-order program is built on (built once)."""
        sw = self.__dict__.get("_sweeps_2")
        if sw is None:
            sw = self.__dict__["_sweeps_2"] = sweeps(self.graph, self._ir_wrt)
        return sw

    def _hvp_function(self):
        if self._hvp_fn is None:
            self._hvp_module = generate_hvp(self.graph, self._ir_wrt, self._ir_args, sw=self._second_sweeps())
            self._hvp_fn = self._hvp_module.functions["hvp"]
        return self._hvp_fn

    @property
    def hvp_source(self) -> str:
        """The generated Hessian-vector-product module (built now if not yet)."""
        self._hvp_function()
        return self._hvp_module.source

    def _stacked(self, diagonal: bool):
        """(module, plans, per-row size functions) of the stacked Hessian programs, built once."""
        key = "_stacked_diag" if diagonal else "_stacked_full"
        built = self.__dict__.get(key)
        if built is None:
            module, plans = generate_hessian(self.graph, self._ir_wrt, self._ir_args, diagonal=diagonal,
                                             sw=self._second_sweeps())
            dims = list(self.graph.dims)
            sizes = [sp.lambdify(dims, sp.sympify(p.per_row), "math") if dims else (lambda v=int(p.per_row): v)
                     for p in plans]
            self._dim_names = tuple(str(d) for d in dims)
            built = (module, plans, sizes)
            self.__dict__[key] = built
        return built

    @property
    def hessian_source(self) -> str:
        """The program ``hessian`` runs: for a matrix expression one function per parameter
        (all of its unit directions at once); for a scalar expression the HVP program, once per
        parameter entry."""
        if not self.matrix:
            return self.hvp_source
        return self._stacked(False)[0].source

    @property
    def hessian_diag_source(self) -> str:
        """The program ``hessian_diag`` runs (see ``hessian_diag_paths``)."""
        if not self.matrix:
            return self.hvp_source
        return self._stacked(True)[0].source

    @property
    def hessian_diag_paths(self) -> dict:
        """{parameter name: how ``hessian_diag`` computes its diagonal}: "structure" (the
        parameter's directions reach the last product through elementwise operations and sums
        only, and only its diagonal is computed: as cheap as a gradient), "stacked" (the last
        product's diagonal only, after the directions pass through other products, such as an
        MLP's later layers: the cost of one HVP per entry of the layers in between), "columns"
        (the fallback: the parameter's column block of the Hessian, a block of rows at a time,
        its diagonal read off), or "hvp" (scalar expressions: one HVP along ones)."""
        if not self.matrix:
            return {w.name: "hvp" for w in self.wrt}
        return {w.name: p.path for w, p in zip(self.wrt, self._stacked(True)[1])}

    def _count(self, bound) -> int:
        """How many values ``reduce="mean"`` averages over in this call."""
        if self._out_size is not None:
            return int(np.prod([self._dim(d, bound) for d in self._out_size]))
        if self.matrix:
            return 1
        return int(np.prod(np.broadcast_shapes(*(np.shape(v) for v, p in zip(bound, self.params)
                                                  if p in self._leaves))))

    def _divisor(self, bound) -> int:
        """What results are divided by: the count for reduce="mean", else 1."""
        if self._out_size is not None:  # a matrix-valued output: only a sum or mean asked for (symgrad.matjac)
            self._check_reduction("f.hvp (like f.hessian and f.hessian_diag)")
        if self.reduce is None:
            raise InputError("second derivatives are of the reduced value; compile with reduce='sum' or 'mean' "
                             "(per-sample Hessians: not available)")
        n = self._count(bound)
        if n == 0 and self.reduce == "mean":
            raise InputError("the batch is empty, so its mean has no second derivative; pass at least one sample")
        return n if self.reduce == "mean" else 1

    def _finished(self, bound, out, n):
        """``out`` divided by ``n``; a non-finite result names a non-finite input, if there is one."""
        if n > 1:
            out = [o if o is None else o / n for o in out]
        if self.check_finite and not all(o is None or math.isfinite(float(np.sum(o))) for o in out):
            for name, v in zip(self.names, bound):
                self._convert(name, v)  # names a non-finite input, if there is one
        return out

    def _hvp_bound(self, bound, dots):
        n = self._divisor(bound)
        with np.errstate(all="ignore"):
            out = self._hvp_function()(*bound, *dots)
        return self._finished(bound, out, n)

    def _like(self, bound):
        return [np.shape(bound[i]) for i in self._param_slots]

    def hvp(self, v, /, *args, **values) -> dict:
        """{name: H·v}: the Hessian of the reduced value times ``v`` ({parameter name: array
        shaped like it}; a missing one is zero), each shaped like its parameter.

        >>> import sympy as sp, symgrad as sg
        >>> w = sp.Symbol("w")
        >>> sg.compile(w**3, wrt=[w]).hvp({"w": 2.0}, w=1.0)
        {'w': 12.0}
        """
        names = self._wrt_names
        if not isinstance(v, dict):
            raise InputError("tangents must be a dict {parameter name: tangent}, got %s" % type(v).__name__)
        for k in v:
            if k not in names:
                raise InputError("tangent given for %r, which is not a parameter; parameters: %s"
                                 % (k, ", ".join(names)))
        try:
            bound = self._bind(args, values)
            for k in v:  # a direction of another library: the array-API program (symgrad.portable)
                if is_foreign(v[k]):
                    raise ForeignArray(k + " direction", v[k])
        except ForeignArray:
            return self._portable_hvp(v, args, values)
        dots = []
        for k, i in zip(names, self._param_slots):
            shape = np.shape(bound[i])
            if k not in v:
                dots.append(np.zeros(shape) if shape else 0.0)
                continue
            d = self._convert(k + " direction", v[k])
            if np.shape(d) != shape:
                raise InputError("the direction for %r has shape %s but %r has shape %s; pass v shaped like "
                                 "its parameter" % (k, np.shape(d), k, shape))
            dots.append(d)
        out = self._hvp_bound(bound, dots)
        return {k: _plain(o) for k, o in zip(names, out)}

    def _columns(self, bound):
        """Scalar expressions: yield (parameter index, entry index, H·e) for every unit vector e."""
        shapes = self._like(bound)
        zeros = [np.zeros(s) if s else 0.0 for s in shapes]
        for j, s in enumerate(shapes):
            for k in range(int(np.prod(s)) if s else 1):
                e = list(zeros)
                if s:
                    unit = np.zeros(s)
                    unit.flat[k] = 1.0
                    e[j] = unit
                else:
                    e[j] = 1.0
                yield j, k, self._hvp_bound(bound, e)

    def _row_blocks(self, bound, size, shape):
        """(r0, r1) blocks of the rows of a parameter of ``shape``, as many rows per call as the
        stacked tangents' budget (``stack_budget`` elements) allows."""
        rows = shape[0] if shape else 1
        key = (id(size), rows, self.stack_budget) + tuple(bound[i].shape for i, _ in self._shape_plan)
        cache = self.__dict__.setdefault("_row_block_cache", {})
        got = cache.get(key)
        if got is not None:
            return got
        if len(cache) > 64:
            cache.clear()
        if self._dim_names:
            dims = {}
            for i, axes in self._shape_plan:
                for name, n in zip(axes, bound[i].shape):
                    if type(name) is str:
                        dims[name] = n
            per_row = size(*[dims.get(d, 1) for d in self._dim_names])
        else:
            per_row = size()
        step = int(max(1, min(rows, self.stack_budget // max(1, int(per_row)))))
        got = ((0, rows),) if step >= rows else tuple((r0, min(rows, r0 + step)) for r0 in range(0, rows, step))
        cache[key] = got
        return got

    def _run_stacked(self, fn, bound, r0, r1, n):
        return self._finished(bound, list(fn(*bound, r0, r1)), n)

    def hessian(self, /, *args, **values) -> dict:
        """{a: {b: ∂²L/∂a∂b}}, each of shape ``a.shape + b.shape``, for the reduced value L.

        A matrix expression runs one program per parameter with all of its unit directions
        (``hessian_source``); a scalar expression one Hessian-vector product per entry.

        >>> import sympy as sp, symgrad as sg
        >>> x, y = sp.symbols("x y")
        >>> sg.compile(x**2 * y, wrt=[x, y]).hessian(x=3.0, y=2.0)
        {'x': {'x': 4.0, 'y': 6.0}, 'y': {'x': 6.0, 'y': 0.0}}
        """
        bound = self._bind(args, values)
        shapes = self._like(bound)
        names = self._wrt_names
        if not self.matrix:
            blocks = {a: {b: np.zeros(sa + sb) for b, sb in zip(names, shapes)} for a, sa in zip(names, shapes)}
            for j, k, col in self._columns(bound):
                b, sb = names[j], shapes[j]
                for a, sa, hv in zip(names, shapes, col):
                    block = blocks[a][b]
                    index = (...,) + (np.unravel_index(k, sb) if sb else ())
                    block[index] = hv
            return {a: {b: _plain(m) for b, m in row.items()} for a, row in blocks.items()}
        module, plans, sizes = self._stacked(False)
        n = self._divisor(bound)
        index = {w: i for i, w in enumerate(self._ir_wrt)}
        blocks = {a: {} for a in names}
        with np.errstate(all="ignore"):
            for j, (plan, size) in enumerate(zip(plans, sizes)):
                fn = module.functions[plan.function]
                sp_ = shapes[j]
                rows, cols = (sp_ if sp_ else (1, 1))
                parts = self._row_blocks(bound, size, sp_)
                outs = [index[q] for q in plan.outputs]
                if len(parts) == 1:
                    for i, o in zip(outs, self._run_stacked(fn, bound, 0, rows, n)):
                        sq = shapes[i]
                        if o is None:
                            blocks[names[i]][names[j]] = np.zeros(sq + sp_)
                        else:  # (rows_q, k, cols_q) -> q.shape + p.shape, a view where it can be
                            o = _owned(o, (sq or (1, 1))[:1] + (rows * cols,) + (sq or (1, 1))[1:], bound)
                            blocks[names[i]][names[j]] = o.transpose(0, 2, 1).reshape(sq + sp_)
                    continue
                full = {i: np.zeros((shapes[i] or (1, 1)) + (rows * cols,)) for i in outs}
                for r0, r1 in parts:
                    for i, o in zip(outs, self._run_stacked(fn, bound, r0, r1, n)):
                        if o is not None:
                            full[i][:, :, r0 * cols:r1 * cols] = np.swapaxes(o, 1, 2)
                for i in outs:
                    blocks[names[i]][names[j]] = full[i].reshape(shapes[i] + sp_)
        for j, a in enumerate(names):  # ∂²L/∂a∂b with a before b: the transpose of ∂²L/∂b∂a
            for i in range(j + 1, len(names)):
                b = names[i]
                if b not in blocks[a]:
                    m = blocks[b][a]
                    lb, la = len(shapes[i]), len(shapes[j])
                    blocks[a][b] = np.ascontiguousarray(np.transpose(m, tuple(range(lb, lb + la)) + tuple(range(lb))))
        return {a: {b: _plain(blocks[a][b]) for b in names} for a in names}

    def hessian_diag(self, /, *args, **values) -> dict:
        """{name: the diagonal of ∂²L/∂p²}, shaped like each parameter p.

        A scalar expression needs one Hessian-vector product per parameter. A matrix
        expression runs one program per parameter (``hessian_diag_source``): the diagonal of
        its last product only where the structure allows ("structure" in
        ``hessian_diag_paths``), else the parameter's column block, a block of rows at a time
        ("columns"); the full Hessian is never formed.

        >>> import numpy as np, sympy as sp, symgrad as sg
        >>> x, w = sp.symbols("x w")
        >>> sg.compile(sp.exp(w * x), wrt=[w]).hessian_diag(x=np.array([1.0, 2.0]), w=0.0)
        {'w': 5.0}
        """
        bound = self._bind(args, values)
        shapes = self._like(bound)
        names = self._wrt_names
        if not self.matrix:
            out = {}
            for j, (name, s) in enumerate(zip(names, shapes)):
                e = [np.zeros(t) if t else 0.0 for t in shapes]
                e[j] = np.ones(s) if s else 1.0
                out[name] = _plain(self._hvp_bound(bound, e)[j])
            return out
        module, plans, sizes = self._stacked(True)
        n = self._divisor(bound)
        out = {}
        with np.errstate(all="ignore"):
            for j, (plan, size) in enumerate(zip(plans, sizes)):
                fn = module.functions[plan.function]
                sp_ = shapes[j]
                rows, cols = (sp_ if sp_ else (1, 1))
                parts = self._row_blocks(bound, size, sp_)
                if len(parts) == 1:
                    d = self._run_stacked(fn, bound, 0, rows, n)[0]
                    d = np.zeros((rows, cols)) if d is None else _owned(d, (rows, cols), bound)
                else:
                    d = np.zeros((rows, cols))
                    for r0, r1 in parts:
                        got = self._run_stacked(fn, bound, r0, r1, n)[0]
                        if got is not None:
                            d[r0:r1] = got
                out[names[j]] = _plain(d.reshape(sp_))
        return out
