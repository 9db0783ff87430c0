"""Vector and matrix outputs of scalar expressions: ``compile(sp.Matrix([e1, e2, ...]), wrt=...)``.

Each entry is compiled as its own scalar function (one reverse sweep per entry for the
Jacobian; m entries, m sweeps), and the results are stacked in the output's shape:

- ``f(**values)``: shape ``out.shape + batch`` (each entry's value per sample);
- ``f.jacobian(**values)``: ``{name: array of shape out.shape + param.shape}`` of the outputs
  reduced over the batch (summed or averaged, as ``reduce`` says), JAX's layout;
- ``f.vjp(cotangent, **values)``: ``{name: Σ_i cotangent_i · ∂out_i/∂name}``, cotangent shaped
  like the output;
- ``f.jvp(tangents, **values)``: (values, tangents), both ``out.shape + batch``.

``f.grad`` is refused: the gradient of a vector is its Jacobian or a vjp. A matrix expression of
MatrixSymbols (``X*W``, ``W*x + b``) is one compiled function with the same three methods
(``symgrad.matjac``: one sweep for all its entries).

>>> import sympy as sp, symgrad as sg
>>> x, y = sp.symbols("x y")
>>> f = sg.compile(sp.Matrix([x * y, x + y**2]), wrt=[x, y])
>>> f.jacobian(x=2.0, y=3.0)
{'x': array([[3.],
       [1.]]), 'y': array([[2.],
       [6.]])}
>>> f.vjp([[1.0], [10.0]], x=2.0, y=3.0)
{'x': 13.0, 'y': 62.0}
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .errors import InputError
from .portable import library_of

__all__ = ["VectorFunction"]


class VectorFunction:
    """A compiled matrix of scalar expressions (see the module docstring)."""

    def __init__(self, matrix, wrt, args, compile_one, **options):
        self.expr = matrix
        self.shape = tuple(matrix.shape)
        self.wrt = tuple(wrt)
        self.args = tuple(args)
        self.entries = [compile_one(e, wrt=list(wrt), args=list(args), **options) for e in matrix]
        self._names = tuple(w.name for w in self.wrt)

    def __repr__(self) -> str:
        return "VectorFunction(%s, shape %s, wrt [%s])" % (sp.sstr(self.expr), self.shape, ", ".join(self._names))

    def _numpy_only(self, args, values, *more) -> None:
        """InputError for an array of another library: these functions stack NumPy results."""
        named = list(zip([p.name for p in self.args + self.wrt], args)) + list(values.items())
        for extra in more:
            named += list(extra.items()) if isinstance(extra, dict) else [("cotangent", extra)]
        for name, v in named:
            lib = library_of(v)
            if lib is not None:
                raise InputError("%s is a %s array, but a compiled sympy.Matrix runs on NumPy arrays only; pass "
                                 "np.asarray(%s), or compile each entry on its own (those take %s arrays)"
                                 % (name, lib, name, lib))

    def _stack(self, parts):
        parts = [np.asarray(p, dtype=float) for p in parts]
        batch = np.broadcast_shapes(*(p.shape for p in parts))
        return np.stack([np.broadcast_to(p, batch) for p in parts]).reshape(self.shape + batch)

    def __call__(self, /, *args, **values):
        self._numpy_only(args, values)
        return self._stack([f(*args, **values) for f in self.entries])

    def grad(self, /, *args, **values):
        raise InputError("the output is a %s matrix, not one number; use f.jacobian(...) for every derivative or "
                         "f.vjp(cotangent, ...) for a weighted sum of the outputs' gradients" % "×".join(map(str, self.shape)))

    value_and_grad = grad

    def _grads(self, args, values) -> list:
        """Each entry's reduced gradient, over the whole output's batch: an entry that reads none
        of the batched inputs is one value broadcast over the batch, and its sum counts it so."""
        grads = [f.grad(*args, **values) for f in self.entries]
        if self.entries[0].reduce != "sum":
            return grads
        sizes = [np.size(f(*args, **values)) for f in self.entries]
        total = max(sizes)
        return [{k: np.asarray(v) * (total // n) if n != total else v for k, v in g.items()}
                for g, n in zip(grads, sizes)]

    def jacobian(self, /, *args, **values) -> dict:
        self._numpy_only(args, values)
        grads = self._grads(args, values)
        out = {}
        for k in self._names:
            parts = [np.asarray(g[k], dtype=float) for g in grads]
            out[k] = np.stack(parts).reshape(self.shape + parts[0].shape)
        return out

    def vjp(self, cotangent, /, *args, **values) -> dict:
        self._numpy_only(args, values, cotangent)
        c = np.asarray(cotangent, dtype=float)
        if c.shape != self.shape:
            if c.size == len(self.entries):
                c = c.reshape(self.shape)
            else:
                raise InputError("the cotangent has shape %s but the output has shape %s; pass one weight per "
                                 "output entry" % (c.shape, self.shape))
        total = {k: 0.0 for k in self._names}
        for weight, g in zip(c.ravel(), self._grads(args, values)):
            if weight == 0:
                continue
            for k in self._names:
                total[k] = total[k] + weight * np.asarray(g[k])
        return {k: float(v) if np.ndim(v) == 0 else v for k, v in total.items()}

    def jvp(self, tangents, /, *args, **values):
        self._numpy_only(args, values, tangents if isinstance(tangents, dict) else {})
        res = [f.jvp(tangents, *args, **values) for f in self.entries]
        return self._stack([r[0] for r in res]), self._stack([r[1] for r in res])
