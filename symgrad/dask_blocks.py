"""Batch-reduced gradients of a scalar expression over chunked Dask arrays, one NumPy call per chunk.

Every operation of a scalar expression is elementwise and the gradient is a sum over the
batch, so the gradient over all samples is the sum of the gradients over the chunks. When
the data are Dask arrays of one shape and one chunking (and no parameter is a chunked
array), each chunk goes through the NumPy path itself (its fast in-place batch variant),
as one Dask task, and the per-chunk sums are added in a tree; the result is lazy Dask
arrays, as for any Dask input. Memory is bounded by the chunks. Anything else returns None
and runs the array-API program on the Dask arrays.

>>> blocks_plan([1.0, 2.0], None) is None
True
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["blocks_plan", "reduced_over_blocks"]


def blocks_plan(raw, is_dask, param_slots=()):
    """The slots of the Dask arrays in ``raw`` when they share one shape and chunking and none
    is a parameter with entries of its own; None otherwise."""
    if is_dask is None:
        return None
    slots = [i for i, v in enumerate(raw) if is_dask(v)]
    if not slots:
        return None
    first = raw[slots[0]]
    if any(raw[i].shape != first.shape or raw[i].chunks != first.chunks for i in slots):
        return None
    if any(i in param_slots and raw[i].ndim for i in slots) or any(math.isnan(n) for n in first.shape):
        return None
    return slots


def _add(parts):
    """The sum of per-chunk (value sum, gradient sums) pairs; a pair's value is None for grad."""
    value = None if parts[0][0] is None else math.fsum(p[0] for p in parts)
    grads = [sum(p[1][k] for p in parts) for k in range(len(parts[0][1]))]
    return value, grads


def reduced_over_blocks(f, kind, raw, slots, names, shapes):
    """(value, {name: gradient}) for kind "reverse", {name: gradient} for "grad", as lazy Dask
    arrays: ``f._chunk_sums`` on each chunk, summed, divided by the sample count for "mean"."""
    import dask
    import dask.array as da

    blocks = [raw[i].to_delayed().ravel() for i in slots]
    parts = []
    for k in range(len(blocks[0])):
        values = list(raw)
        for i, b in zip(slots, blocks):
            values[i] = b[k]
        parts.append(dask.delayed(f._chunk_sums, pure=False)(kind, values))
    total = dask.delayed(_add, pure=False)(parts)
    n = math.prod(raw[slots[0]].shape)
    scale = 1.0 / n if f.reduce == "mean" else 1.0
    if f.reduce == "mean" and n == 0:
        raise f._empty_batch(raw)
    grads = {}
    for j, (name, shape) in enumerate(zip(names, shapes)):
        g = da.from_delayed(total[1][j], shape=shape, dtype=np.float64)
        grads[name] = g * scale if scale != 1.0 else g
    if kind == "grad":
        return grads
    value = da.from_delayed(total[0], shape=(), dtype=np.float64)
    return (value * scale if scale != 1.0 else value), grads
