"""Data larger than memory: gradients over memory-mapped data through Dask, against the in-memory
single-threaded NumPy call. Side by side in one process; prints times, ratios and peak memory.

1. The lecture's logistic loss −y·log σ(w·x+b) − (1−y)·log(1−σ(w·x+b)) (reduce="mean") over
   N samples stored in two .npy files (default N = 8·10⁶: 128 MB). Contenders:
   - NumPy in memory: the arrays loaded (np.load), one ``f.value_and_grad`` call;
   - Dask from the memmaps: ``da.from_array(np.load(..., mmap_mode="r"), chunks=C)``, one
     ``dask.compute(*f.value_and_grad(...))`` on the threaded scheduler (2 workers); each chunk
     runs the NumPy path (symgrad.dask_blocks) and the chunk sums are added.
2. The 64-128-10 tanh MLP gradient (softmax cross-entropy) at B samples (default 10⁶),
   X and Y memory-mapped likewise, chunked by rows.

Peak memory: ``tracemalloc`` (NumPy reports its data allocations to it, Dask's threads
included) during the call, minus what was traced before it, reported next to the data size.
BLAS runs single-threaded in every contender (threadpoolctl, when installed), so the
speed-up is Dask's chunk parallelism alone.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_bigdata.py [--quick] [--n 8000000] [--batch 1000000]
"""

import argparse
import os
import tempfile
import time
import tracemalloc

import numpy as np
import sympy as sp

import symgrad as sg
from symgrad import nn, train
from symgrad.functions import sigmoid

MB = 1e6


def measure(fn, repeats):
    """(best seconds, peak traced bytes of one call beyond what was traced before it)."""
    fn()  # warm-up: builds the modules
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return best, peak


def save(path, a):
    m = np.lib.format.open_memmap(path, mode="w+", dtype=a.dtype, shape=a.shape)
    m[:] = a
    m.flush()
    del m
    return path


def logistic(tmp, n, chunk, repeats):
    import dask
    import dask.array as da

    x, y, w, b = sp.symbols("x y w b")
    p = sigmoid(w * x + b)
    f = sg.compile(-y * sp.log(p) - (1 - y) * sp.log(1 - p), wrt=[w, b], args=[x, y], reduce="mean")
    rng = np.random.default_rng(0)
    X = rng.normal(size=n)
    Y = (rng.random(n) < 1 / (1 + np.exp(-(2 * X - 0.5)))).astype(float)
    px, py = save(os.path.join(tmp, "x.npy"), X), save(os.path.join(tmp, "y.npy"), Y)
    del X, Y
    Xm, Ym = np.load(px), np.load(py)  # in memory
    xs = da.from_array(np.load(px, mmap_mode="r"), chunks=chunk)
    ys = da.from_array(np.load(py, mmap_mode="r"), chunks=chunk)
    t_np, m_np = measure(lambda: f.value_and_grad(x=Xm, y=Ym, w=0.7, b=0.1), repeats)
    t_dk, m_dk = measure(lambda: dask.compute(*f.value_and_grad(x=xs, y=ys, w=0.7, b=0.1), scheduler="threads",
                                              num_workers=2), repeats)
    v_np = f.value_and_grad(x=Xm, y=Ym, w=0.7, b=0.1)
    v_dk = dask.compute(*f.value_and_grad(x=xs, y=ys, w=0.7, b=0.1))
    err = max(abs(v_np[0] - float(v_dk[0])), *(abs(v_np[1][k] - float(v_dk[1][k])) for k in "wb"))
    return "logistic loss, N = %d" % n, 2 * n * 8, (t_np, m_np), (t_dk, m_dk), err


def mlp(tmp, batch, chunk, repeats):
    import dask
    import dask.array as da

    net = nn.mlp([64, 128, 10], activation="tanh", loss="softmax_cross_entropy")
    f = sg.compile(net.loss, wrt=net.params)
    params = nn.init_params(net, seed=0)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(batch, 64))
    Y = train.one_hot(rng.integers(0, 10, batch), 10)
    px, py = save(os.path.join(tmp, "X.npy"), X), save(os.path.join(tmp, "Y.npy"), Y)
    del X, Y
    Xm, Ym = np.load(px), np.load(py)
    xs = da.from_array(np.load(px, mmap_mode="r"), chunks=(chunk, -1))
    ys = da.from_array(np.load(py, mmap_mode="r"), chunks=(chunk, -1))
    t_np, m_np = measure(lambda: f.grad(X=Xm, Y=Ym, **params), repeats)
    t_dk, m_dk = measure(lambda: dask.compute(f.grad(X=xs, Y=ys, **params), scheduler="threads", num_workers=2),
                         repeats)
    g_np = f.grad(X=Xm, Y=Ym, **params)
    (g_dk,) = dask.compute(f.grad(X=xs, Y=ys, **params))
    err = max(float(np.max(np.abs(g_np[k] - np.asarray(g_dk[k])))) for k in g_np)
    return "64-128-10 MLP gradient, B = %d" % batch, (64 + 10) * batch * 8, (t_np, m_np), (t_dk, m_dk), err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=8_000_000)
    ap.add_argument("--batch", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=0, help="rows per chunk (default: N/32 for the logistic loss, "
                                                         "B/16 for the MLP)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (the test suite runs this)")
    a = ap.parse_args()
    try:
        import dask  # noqa: F401
        import array_api_compat  # noqa: F401
    except ImportError:
        print("dask and array-api-compat are not installed (pip install symgrad[dask]); nothing to compare")
        return
    if a.quick:
        a.n, a.batch, a.repeats = 40_000, 4_000, 1
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(1)
    except ImportError:
        limits = None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(logistic(tmp, a.n, a.chunk or max(a.n // 32, 1), a.repeats))
        rows.append(mlp(tmp, a.batch, a.chunk or max(a.batch // 16, 1), a.repeats))
    if limits is not None:
        limits.unregister()
    print("| workload | data MB | NumPy in memory s | Dask from memmap (2 threads) s | speed-up | "
          "peak MB NumPy | peak MB Dask | Dask peak / data | max abs diff |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, size, (t0, m0), (t1, m1), err in rows:
        print("| %s | %.0f | %.3f | %.3f | %.2fx | %.1f | %.1f | %.3f | %.1e |" % (
            name, size / MB, t0, t1, t0 / t1, m0 / MB, m1 / MB, m1 / size, err))


if __name__ == "__main__":
    main()
