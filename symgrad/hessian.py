"""Second-order methods of compiled functions: ``hvp``, ``hessian``, ``hessian_diag``.

All three differentiate the reduced value (summed or averaged over the batch, as ``reduce``
says), like ``grad``. ``hvp`` is one forward-over-reverse sweep (``symgrad.second``), built on
first use. ``hessian`` runs one HVP per parameter entry and returns JAX's layout
``{a: {b: array of shape a.shape + b.shape}}``. ``hessian_diag`` of a scalar expression is
one HVP per parameter: every sample reads one entry of each parameter, so a parameter's own
block of the Hessian is diagonal and H·(ones) is its diagonal. For a matrix expression the
diagonal takes one HVP per entry (the documented fallback; the full Hessian is never held),
run a chunk of directions at a time through a stacked program whose tangents carry a leading
axis of directions.

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

from .errors import InputError
from .second import generate_hvp

__all__ = ["SecondOrder"]


def _plain(v):
    return float(v) if np.ndim(v) == 0 else v


class SecondOrder:
    """Mixin of ``CompiledFunction``: the second-order methods (see the module docstring)."""

    _hvp_fn = None

    def _hvp_function(self):
        if self._hvp_fn is None:
            self._hvp_module = generate_hvp(self.graph, self._ir_wrt, self._ir_args)
            self._hvp_fn = self._hvp_module.functions["hvp"]
        return self._hvp_fn

    @property
    def hvp_source(self) -> str:
        """The generated Hessian-vector-product module (built now if not yet)."""
        self._hvp_function()
        return self._hvp_module.source

    def _count(self, bound) -> int:
        """How many values ``reduce="mean"`` averages over in this call."""
        if self._out_size is not None:
            return int(np.prod([self._dim(d, bound) for d in self._out_size]))
        if self.matrix:
            return 1
        return int(np.prod(np.broadcast_shapes(*(np.shape(v) for v, p in zip(bound, self.params)
                                                  if p in self._leaves))))

    def _stacked_function(self):
        if getattr(self, "_stacked_fn", None) is None:
            self._stacked_fn = generate_hvp(self.graph, self._ir_wrt, self._ir_args, stacked=True).functions["hvp"]
        return self._stacked_fn

    def _hvp_bound(self, bound, dots, fn=None):
        if self.reduce is None:
            raise InputError("second derivatives are of the reduced value; compile with reduce='sum' or 'mean' "
                             "(per-sample Hessians: not available)")
        n = self._count(bound)
        if n == 0 and self.reduce == "mean":
            raise InputError("the batch is empty, so its mean has no second derivative; pass at least one sample")
        with np.errstate(all="ignore"):
            out = (fn or self._hvp_function())(*bound, *dots)
        if self.reduce != "mean":
            n = 1
        if n > 1:
            out = [o / n for o in out]
        if self.check_finite and not all(math.isfinite(float(np.sum(o))) for o in out):
            for name, v in zip(self.names, bound):
                self._convert(name, v)  # names a non-finite input, if there is one
        return out

    def _like(self, bound):
        return [np.shape(bound[self._slot[w.name]]) for w in self.wrt]

    def hvp(self, v, /, *args, **values) -> dict:
        """{name: H·v}: the Hessian of the reduced value times ``v`` ({parameter name: array
        shaped like it}; a missing one is zero), each shaped like its parameter.

        >>> import sympy as sp, symgrad as sg
        >>> w = sp.Symbol("w")
        >>> sg.compile(w**3, wrt=[w]).hvp({"w": 2.0}, w=1.0)
        {'w': 12.0}
        """
        names = self._check_tangents(v)
        bound = self._bind(args, values)
        dots = []
        for k, shape in zip(names, self._like(bound)):
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
        """Yield (parameter index, entry index, H·e) for every unit vector e of the parameters."""
        if self.matrix:
            yield from self._stacked_columns(bound)
            return
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

    def _stacked_columns(self, bound):
        """``_columns`` for a matrix expression: unit vectors a chunk at a time, through the
        stacked program (matrix operations over the last two axes)."""
        shapes = self._like(bound)
        largest = max([np.size(v) for v in bound] + [1])
        zeros = [np.zeros((1,) + (s if s else (1, 1))) for s in shapes]
        for j, s in enumerate(shapes):
            count = int(np.prod(s)) if s else 1
            chunk = int(min(count, max(1, 2 ** 25 // largest)))
            for start in range(0, count, chunk):
                k = min(chunk, count - start)
                units = np.zeros((k, count))
                units[np.arange(k), start + np.arange(k)] = 1.0
                dots = list(zeros)
                dots[j] = units.reshape((k,) + (s if s else (1, 1)))
                out = self._hvp_bound(bound, dots, self._stacked_function())
                for i in range(k):
                    yield j, start + i, [o[i] if shapes[m] else float(o[i].reshape(())) for m, o in enumerate(out)]

    def hessian(self, /, *args, **values) -> dict:
        """{a: {b: ∂²L/∂a∂b}}, each of shape ``a.shape + b.shape``, for the reduced value L.

        One Hessian-vector product per parameter entry.

        >>> import sympy as sp, symgrad as sg
        >>> x, y = sp.symbols("x y")
        >>> sg.compile(x**2 * y, wrt=[x, y]).hessian(x=3.0, y=2.0)
        {'x': {'x': 4.0, 'y': 6.0}, 'y': {'x': 6.0, 'y': 0.0}}
        """
        bound = self._bind(args, values)
        shapes = self._like(bound)
        names = [w.name for w in self.wrt]
        blocks = {a: {b: np.zeros(sa + sb) for b, sb in zip(names, shapes)} for a, sa in zip(names, shapes)}
        for j, k, col in self._columns(bound):
            b, sb = names[j], shapes[j]
            for a, sa, hv in zip(names, shapes, col):
                block = blocks[a][b]
                index = (...,) + (np.unravel_index(k, sb) if sb else ())
                block[index] = hv
        return {a: {b: _plain(m) for b, m in row.items()} for a, row in blocks.items()}

    def hessian_diag(self, /, *args, **values) -> dict:
        """{name: the diagonal of ∂²L/∂p²}, shaped like each parameter p.

        A scalar expression needs one Hessian-vector product per parameter; a matrix expression
        one per parameter entry (the full Hessian is never formed).

        >>> import numpy as np, sympy as sp, symgrad as sg
        >>> x, w = sp.symbols("x w")
        >>> sg.compile(sp.exp(w * x), wrt=[w]).hessian_diag(x=np.array([1.0, 2.0]), w=0.0)
        {'w': 5.0}
        """
        bound = self._bind(args, values)
        shapes = self._like(bound)
        names = [w.name for w in self.wrt]
        if not self.matrix:
            out = {}
            for j, (name, s) in enumerate(zip(names, shapes)):
                e = [np.zeros(t) if t else 0.0 for t in shapes]
                e[j] = np.ones(s) if s else 1.0
                out[name] = _plain(self._hvp_bound(bound, e)[j])
            return out
        diag = {name: np.zeros(s) for name, s in zip(names, shapes)}
        for j, k, col in self._columns(bound):
            diag[names[j]].flat[k] = np.asarray(col[j]).flat[k]
        return {name: _plain(d) for name, d in diag.items()}
