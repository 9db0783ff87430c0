"""GPU check: the MLP and logistic-regression gradients on CuPy and JAX GPU arrays, against NumPy.

One short run (about a minute): for each library that is importable and sees a GPU, the
compiled ``value_and_grad`` of (1) the lecture's logistic loss over N samples and (2) the
64-128-10 tanh MLP at batch B gets the library's device arrays; the results are compared
with NumPy's on the host (max relative difference) and both are timed (best of R, after a
warm-up; the device is synchronised before the clock stops). JAX is timed eager and under
``jax.jit``. Libraries or devices that are missing are reported as such, never as failures.

    python benchmarks/gpu_check.py [--n 2000000] [--batch 65536] [--repeats 5]
"""

import argparse
import time

import numpy as np
import sympy as sp

import symgrad as sg
from symgrad import nn, train
from symgrad.functions import sigmoid


def best(fn, sync, repeats):
    sync(fn())
    out = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        sync(fn())
        out = min(out, time.perf_counter() - t)
    return out


def rel_diff(ref, got, to_host):
    ref_v, ref_g = ref
    v, g = got
    d = abs(float(to_host(v)) - ref_v) / max(1.0, abs(ref_v))
    for k in ref_g:
        r = np.asarray(ref_g[k])
        d = max(d, float(np.max(np.abs(np.asarray(to_host(g[k])) - r)) / max(1.0, float(np.max(np.abs(r))))))
    return d


def workloads(n, batch):
    x, y, w, b = sp.symbols("x y w b")
    p = sigmoid(w * x + b)
    logistic = sg.compile(-y * sp.log(p) - (1 - y) * sp.log(1 - p), wrt=[w, b], args=[x, y], reduce="mean")
    rng = np.random.default_rng(0)
    X = rng.normal(size=n)
    Y = (rng.random(n) < 0.5).astype(float)
    net = nn.mlp([64, 128, 10], activation="tanh", loss="softmax_cross_entropy")
    mlp = sg.compile(net.loss, wrt=net.params)
    data = {"X": rng.normal(size=(batch, 64)), "Y": train.one_hot(rng.integers(0, 10, batch), 10),
            **nn.init_params(net, seed=0)}
    return [("logistic loss, N = %d" % n, logistic, {"x": X, "y": Y, "w": 0.7, "b": 0.1}),
            ("64-128-10 MLP, B = %d" % batch, mlp, data)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--batch", type=int, default=65_536)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    rows = []
    for name, f, values in workloads(a.n, a.batch):
        ref = f.value_and_grad(**values)
        t_np = best(lambda: f.value_and_grad(**values), lambda r: r, a.repeats)
        rows.append((name, "NumPy (host)", t_np, 1.0, 0.0))
        try:
            import cupy as cp
            if cp.cuda.runtime.getDeviceCount() < 1:
                raise RuntimeError("no CUDA device")
            dev = {k: cp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in values.items()}

            def sync_cp(r):
                cp.cuda.Stream.null.synchronize()
                return r
            t = best(lambda: f.value_and_grad(**dev), sync_cp, a.repeats)
            rows.append((name, "CuPy (GPU)", t, t_np / t, rel_diff(ref, f.value_and_grad(**dev), cp.asnumpy)))
        except Exception as e:  # noqa: BLE001 - a missing library or device is reported, not fatal
            rows.append((name, "CuPy: not run (%s)" % type(e).__name__, float("nan"), float("nan"), float("nan")))
        try:
            import jax
            jax.config.update("jax_enable_x64", True)
            import jax.numpy as jnp
            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            if not gpus:
                raise RuntimeError("no JAX GPU device")
            dev = {k: jax.device_put(jnp.asarray(v), gpus[0]) for k, v in values.items()}

            def sync_jax(r):
                jax.block_until_ready(r)
                return r
            t = best(lambda: f.value_and_grad(**dev), sync_jax, a.repeats)
            rows.append((name, "JAX eager (GPU)", t, t_np / t, rel_diff(ref, f.value_and_grad(**dev), np.asarray)))
            jitted = jax.jit(lambda d: f.value_and_grad(**d))
            t = best(lambda: jitted(dev), sync_jax, a.repeats)
            rows.append((name, "JAX jit (GPU)", t, t_np / t, rel_diff(ref, jitted(dev), np.asarray)))
        except Exception as e:  # noqa: BLE001
            rows.append((name, "JAX: not run (%s: %s)" % (type(e).__name__, e), float("nan"), float("nan"),
                         float("nan")))
    print("| workload | contender | ms | speed-up vs NumPy | max rel diff vs NumPy |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, who, t, s, d in rows:
        print("| %s | %s | %.2f | %.2fx | %.1e |" % (name, who, t * 1e3, s, d))


if __name__ == "__main__":
    main()
