"""Compiled functions on other array libraries: JAX, PyTorch, CuPy, Dask, array-api-strict.

When any value passed to ``f``, ``f.grad``, ``f.value_and_grad`` or ``f.jvp`` is an array of
another library, symgrad runs the array-API flavour of the same programs (``emit.generate(...,
flavour="xp")``, printed by ``printing_xp.XPPrinter``) with ``xp`` bound to that library's
namespace (through array-api-compat where the library needs it), and returns that library's
arrays: scalars as 0-d arrays, nothing copied to the host, so ``jax.jit`` traces the call
and Dask keeps it lazy (``dask.compute(*f.grad(...).values())`` runs it chunk by chunk).
Python numbers and NumPy arrays given alongside become arrays of the same library, dtype and
device. The module is compiled once per (library, dtype, device).

Checks: shapes as for NumPy; finiteness of eager arrays (not of traced JAX values or lazy
Dask arrays, whose values are not known when the call is made).

>>> import numpy as np, sympy as sp, symgrad as sg
>>> x, w = sp.symbols("x w")
>>> library_of([1.0, 2.0]) is None, library_of(np.ones(2)) is None
(True, True)
>>> import array_api_strict as xps                      # doctest: +SKIP
>>> sg.compile(sp.tanh(w * x), wrt=[w]).grad(x=xps.asarray([0.0, 1.0]), w=0.0)  # doctest: +SKIP
{'w': Array(1., dtype=array_api_strict.float64)}
"""

from __future__ import annotations

import importlib
import math
import re

import numpy as np

from .dask_blocks import blocks_plan, reduced_over_blocks
from .emit import KINDS, assemble, generate
from .second import generate_hvp
from .errors import InputError, UnsupportedError

__all__ = ["ForeignArray", "Portable", "is_foreign", "library_of"]

LIBRARIES = ("jax", "jaxlib", "torch", "cupy", "dask", "array_api_strict", "sparse", "ndonnx")

# Each library's special functions (scipy.special's names), imported when first needed.
SPECIAL = {"numpy": "scipy.special", "dask": "scipy.special", "jax": "jax.scipy.special", "torch": "torch.special",
           "cupy": "cupyx.scipy.special"}


class ForeignArray(InputError):
    """Raised by the NumPy path on a value of another array library (caught by the methods,
    which run the array-API path instead; where that path does not exist the message says so)."""

    def __init__(self, name, value):
        self.name = name
        super().__init__("%s is a %s array; this operation runs on NumPy arrays only: pass np.asarray(%s) (or use "
                         "f(...), f.grad, f.value_and_grad, f.jvp and f.hvp, which take that library's arrays)"
                         % (name, library_of(value) or type(value).__name__, name))


def library_of(v):
    """The name of the array library ``v`` belongs to (``"torch"``, ``"jax"``, ...), or None for
    NumPy arrays, Python numbers and anything else."""
    t = type(v)
    root = t.__module__.partition(".")[0]
    if root in LIBRARIES:
        return "jax" if root == "jaxlib" else root
    if hasattr(t, "__array_namespace__") and not isinstance(v, (np.ndarray, np.generic)):
        return root
    return None


def is_foreign(v) -> bool:
    """Whether ``v`` is an array of a library other than NumPy."""
    return library_of(v) is not None


def _namespace(arrays, names):
    """The array-API namespace of the foreign ``arrays`` (one library), or InputError."""
    libs = sorted({library_of(a) for a in arrays})
    if len(libs) > 1:
        raise InputError("the values mix arrays of %s (%s); pass arrays of one library" % (
            " and ".join(libs), ", ".join("%s: %s" % (n, library_of(a)) for n, a in zip(names, arrays))))
    try:
        import array_api_compat
    except ImportError:
        array_api_compat = None
    if array_api_compat is not None:
        try:
            return array_api_compat.array_namespace(*arrays), libs[0]
        except TypeError:
            pass
    ns = getattr(arrays[0], "__array_namespace__", None)
    if ns is not None:
        return ns(), libs[0]
    raise InputError("%s is a %s array; symgrad runs %s arrays through array-api-compat: pip install "
                     "array-api-compat (or symgrad[%s])" % (names[0], libs[0], libs[0], libs[0]))


def _device(a):
    try:
        import array_api_compat
        return array_api_compat.device(a)
    except (ImportError, TypeError, AttributeError):
        return getattr(a, "device", None)


def _traced(a) -> bool:
    """A JAX value being traced (jax.jit), or a lazy Dask array: no value to check yet."""
    name = type(a).__name__
    return "Tracer" in name or library_of(a) == "dask"


def _const_maker(xp, dtype, device):
    def const(v):
        try:
            return xp.asarray(v, dtype=dtype, device=device)
        except TypeError:
            return xp.asarray(v, dtype=dtype)
    return const


def _special(lib, used):
    """The special-function module of ``lib`` with every name in ``used``, or UnsupportedError."""
    if not used:
        return None
    modname = SPECIAL.get(lib)
    mod = None
    if modname is not None:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            mod = None
    missing = sorted(n for n in used if mod is None or not hasattr(mod, n))
    if missing:
        raise UnsupportedError("%s has no %s (scipy.special's %s)%s; pass NumPy arrays for this expression, or "
                               "rewrite it with elementary functions" % (
                                   lib, ", ".join(missing), ", ".join(missing),
                                   "" if modname is None else " in %s" % modname))
    return mod


class Portable:
    """The array-API path of CompiledFunction (``_portable_call``)."""

    def _xp_base(self, program):
        """The array-API module of ``program`` ("main": value, gradients and jvp; "hvp"), generated once."""
        bases = self.__dict__.setdefault("_xp_bases", {})
        if program not in bases:
            bases[program] = (generate(self.sweeps, self._ir_args, flavour="xp") if program == "main" else
                              generate_hvp(self.graph, self._ir_wrt, self._ir_args, sw=self._second_sweeps(),
                                           flavour="xp"))
        return bases[program]

    def _xp_module(self, xp, lib, dtype, device, program="main"):
        """``program``'s array-API module compiled with ``xp``, ``xsp`` and ``_const`` of this library,
        dtype and device (once per combination)."""
        cache = self.__dict__.setdefault("_xp_modules", {})
        key = (program, id(xp), str(dtype), str(device))
        mod = cache.get(key)
        if mod is None:
            base = self._xp_base(program)
            env = {"xp": xp, "xsp": _special(lib, set(re_special(base.source))),
                   "_const": _const_maker(xp, dtype, device), "_library": lib}
            kinds = (("hvp", "hvp"),) if program == "hvp" else KINDS
            mod = cache[key] = assemble(base.source, base.sources, base.names, kinds=kinds, env=env)
        return mod

    def _portable_hvp(self, v, args, values):
        """``hvp`` on another library's arrays: the array-API flavour of the HVP program."""
        xp, lib, dtype, device, bound, dots = self._portable_bind(args, values, v)
        n = self._divisor(bound)
        mod = self._xp_module(xp, lib, dtype, device, "hvp")
        d = []
        for k, i in zip(self._wrt_names, self._param_slots):
            like = bound[i]
            if k not in dots:
                d.append(xp.zeros_like(like))
                continue
            if tuple(dots[k].shape) != tuple(like.shape):
                raise InputError("the direction for %r has shape %s but %r has shape %s; pass v shaped like its "
                                 "parameter" % (k, tuple(dots[k].shape), k, tuple(like.shape)))
            d.append(dots[k])
        const = mod.functions["hvp"].__globals__["_const"]
        out = [o if hasattr(o, "shape") else const(o) for o in mod.functions["hvp"](*bound, *d)]
        return {k: (o / n if n > 1 else o) for k, o in zip(self._wrt_names, out)}

    def _chunk_sums(self, kind, values):
        """(value summed or None, gradients summed) of one chunk of NumPy values, by the NumPy path
        (symgrad.dask_blocks adds them up)."""
        # a chunk of a memmap is a np.memmap: as a plain ndarray view it takes the fast batch variant
        values = [v.view(np.ndarray) if isinstance(v, np.memmap) else v for v in values]
        bound = self._bind_unchecked((), dict(zip(self.names, values)))
        with np.errstate(all="ignore"):
            if kind == "grad":
                grads = (self._batch_fn("grad", bound) or self.functions["grad"])(*bound)
                self._explain_nonfinite(bound, grads)
                return None, list(grads)
            value, grads = (self._batch_fn("reverse", bound) or self.functions["reverse"])(*bound)
        self._explain_nonfinite(bound, (float(np.sum(value)),))
        return float(np.sum(value)), list(grads)

    @property
    def xp_source(self) -> str:
        """The array-API flavour of the generated module (``xp``: the caller's array namespace)."""
        return self._xp_base("main").source

    def _portable_bind(self, args, values, tangents=None):
        raw = self._gather(args, values)
        extra = [] if tangents is None else [(k + " tangent", v) for k, v in tangents.items()]
        named = list(zip(self.names, raw)) + extra
        foreign = [(n, v) for n, v in named if is_foreign(v)]
        xp, lib = _namespace([v for _, v in foreign], [n for n, _ in foreign])
        floats = [v.dtype for _, v in foreign if xp.isdtype(v.dtype, "real floating")]
        if any(xp.isdtype(v.dtype, "complex floating") for _, v in foreign):
            n = next(n for n, v in foreign if xp.isdtype(v.dtype, "complex floating"))
            raise InputError("value of %r is complex; symgrad differentiates real functions" % n)
        dtype = xp.result_type(*floats) if floats else _default_float(xp, lib)
        device = _device(foreign[0][1])
        const = _const_maker(xp, dtype, device)

        def convert(name, v):
            if is_foreign(v):
                if not xp.isdtype(v.dtype, "real floating"):
                    if not xp.isdtype(v.dtype, ("integral", "bool")):
                        raise InputError("value of %r has dtype %s; pass real numbers" % (name, v.dtype))
                    v = xp.astype(v, dtype)
                elif v.dtype != dtype:
                    v = xp.astype(v, dtype)
            else:
                a = self._convert(name, v)  # NumPy's checks and messages (numbers, lists, NumPy arrays)
                v = const(a)
            if self.check_finite and not _traced(v) and not bool(xp.all(xp.isfinite(v))):
                raise InputError("value of %r contains nan or inf; symgrad needs finite inputs" % name)
            return v

        bound = [convert(n, v) for n, v in zip(self.names, raw)]
        dots = None if tangents is None else {k: convert(k + " tangent", v) for k, v in tangents.items()}
        if self.matrix:
            if self._shape_plan:
                self._check_shapes(bound)
            for i in self._scalar_slots:
                if tuple(bound[i].shape):
                    raise InputError("%s is a scalar symbol of this matrix expression, so it takes a number, but its "
                                     "value has shape %s; pass a number, or declare it as a MatrixSymbol of that shape"
                                     % (self.names[i], tuple(bound[i].shape)))
        elif self._bcast_slots:
            shapes = [tuple(bound[i].shape) for i in self._bcast_slots]
            if len({s for s in shapes if s}) > 1:
                self._check_broadcast(bound)
        return xp, lib, dtype, device, bound, dots

    def _portable_call(self, kind, args, values, tangents=None):
        """``kind`` ("value", "reverse", "grad", "forward") on another library's arrays."""
        if self.reduce is None and kind in ("reverse", "grad"):
            raise InputError("per-sample gradients (reduce=None) run on NumPy arrays only; pass NumPy arrays, or "
                             "compile with reduce='sum' or 'mean' for this library")
        if kind in ("reverse", "grad") and not self.matrix:  # Dask data: the NumPy path chunk by chunk
            raw = self._gather(args, values)
            if all(library_of(v) in (None, "dask") for v in raw):
                slots = blocks_plan(raw, lambda v: library_of(v) == "dask", self._param_slots)
                if slots is not None:
                    shapes = [tuple(np.shape(raw[self._slot[k]])) for k in self._wrt_names]
                    return reduced_over_blocks(self, kind, raw, slots, self._wrt_names, shapes)
        xp, lib, dtype, device, bound, dots = self._portable_bind(args, values, tangents)
        mod = self._xp_module(xp, lib, dtype, device)
        const = mod.functions["value"].__globals__["_const"]
        arr = (lambda v: v if hasattr(v, "shape") else const(v))
        if kind == "value":
            return arr(mod.functions["value"](*bound))
        if kind == "forward":
            d = []
            for k, w in zip(self._wrt_names, self.wrt):
                like = bound[self._slot[k]]
                if k not in dots:
                    d.append(xp.zeros_like(like))
                    continue
                t = dots[k]
                ts, ls = tuple(t.shape), tuple(like.shape)
                if ts != ls and (self.matrix or len(ts) > len(ls)):
                    raise InputError("the tangent of %r has shape %s but %r has shape %s; pass a tangent shaped "
                                     "like its parameter" % (k, ts, k, ls))
                d.append(t)
            value, dot = mod.functions["forward"](*bound, *d)
            value, dot = arr(value), arr(dot)
            if not self.matrix and tuple(dot.shape) != tuple(value.shape):
                dot = xp.broadcast_to(dot, tuple(value.shape))
            return value, dot
        if kind == "reverse":
            value, grads = mod.functions["reverse"](*bound)
            value, grads = arr(value), [arr(g) for g in grads]
            if not (self.matrix and self._out_size is None):
                n = math.prod(value.shape)
                value = xp.sum(value)
                if self.reduce == "mean":
                    if n == 0:
                        raise self._empty_batch(bound)
                    value, grads = value / n, [g / n for g in grads]
            return value, dict(zip(self._wrt_names, grads))
        grads = [arr(g) for g in mod.functions["grad"](*bound)]
        if self.reduce == "mean":
            if self._out_size is not None:
                n = math.prod(self._dim(d, bound) for d in self._out_size)
            else:
                n = math.prod(np.broadcast_shapes(*(tuple(v.shape) for v, p in zip(bound, self.params)
                                                    if p in self._leaves)))
            if n == 0:
                raise self._empty_batch(bound)
            grads = [g / n for g in grads]
        return dict(zip(self._wrt_names, grads))


def _default_float(xp, lib):
    """The float dtype a library gives Python floats (float32 for PyTorch and JAX without x64)."""
    try:
        return xp.asarray(0.0).dtype
    except Exception:  # noqa: BLE001 - a library without asarray of a number
        return xp.float64


def re_special(source: str):
    """The ``xsp.NAME`` calls in a generated source."""
    return re.findall(r"(?<![\w.])xsp\.(\w+)", source)
