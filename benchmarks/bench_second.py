"""Second order on logistic regression: symgrad's hvp / hessian / hessian_diag against the
hand-written NumPy closed forms (Xᵀ(s(1-s)·Xv), XᵀSX, Σ s(1-s)x²), and jax.jit peers when jax is
importable. One process, interleaved rounds, medians; ratios to the closed form.

    python benchmarks/bench_second.py [--n 1000] [--dims 100,300] [--rounds 5] [--quick]
"""

import argparse
import statistics
import time

import numpy as np
import sympy as sp

import symgrad as sg
from symgrad.functions import softplus


def loss_fn():
    n, d = sp.symbols("n d", integer=True, positive=True)
    X, w, y = sp.MatrixSymbol("X", n, d), sp.MatrixSymbol("w", d, 1), sp.MatrixSymbol("y", n, 1)
    z = X * w
    return sg.compile(sp.Trace(sp.OneMatrix(1, n) * (z.applyfunc(softplus) - sp.HadamardProduct(y, z))),
                      wrt=[w], args=[X, y])


def _time(fn, number=1):
    t = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t) / number


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--dims", default="100,300")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.n, a.dims, a.rounds = 200, "10", 2
    f = loss_fn()
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        jax = None
    print("n = %d; ratios to the NumPy closed form (median of %d rounds)" % (a.n, a.rounds))
    print("%6s %-14s %12s %12s %10s %12s" % ("d", "what", "closed form", "symgrad", "ratio", "jax ratio"))
    for d in map(int, a.dims.split(",")):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(a.n, d)) / np.sqrt(d)
        y = (rng.random((a.n, 1)) < 0.5).astype(float)
        w = rng.normal(size=(d, 1))
        v = rng.normal(size=(d, 1))

        def s_():
            s = 1 / (1 + np.exp(-X @ w))
            return s * (1 - s)

        hand = {"hvp": lambda: X.T @ (s_() * (X @ v)), "hessian": lambda: X.T @ (s_() * X),
                "hessian_diag": lambda: (s_() * X * X).sum(axis=0)}
        ours = {"hvp": lambda: f.hvp({"w": v}, X=X, y=y, w=w), "hessian": lambda: f.hessian(X=X, y=y, w=w),
                "hessian_diag": lambda: f.hessian_diag(X=X, y=y, w=w)}
        assert np.allclose(ours["hessian"]()["w"]["w"].reshape(d, d), hand["hessian"](), rtol=1e-10, atol=1e-12)
        peers = {}
        if jax is not None:
            Xj, yj, vj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(v)

            def L(wj):
                z = Xj @ wj
                return jnp.sum(jnp.logaddexp(0, z) - yj * z)
            gj = jax.grad(L)
            hvp_j = jax.jit(lambda wj: jax.jvp(gj, (wj,), (vj,))[1])
            hess_j = jax.jit(jax.hessian(L))
            diag_j = jax.jit(lambda wj: jnp.diagonal(jax.hessian(L)(wj).reshape(d, d)))
            wj = jnp.asarray(w)
            peers = {"hvp": lambda: hvp_j(wj).block_until_ready(), "hessian": lambda: hess_j(wj).block_until_ready(),
                     "hessian_diag": lambda: diag_j(wj).block_until_ready()}
            for p in peers.values():
                p()
        for what in hand:
            rows = {"hand": [], "sg": [], "jax": []}
            number = 20 if what == "hvp" else 2
            for _ in range(a.rounds):
                rows["hand"].append(_time(hand[what], number))
                rows["sg"].append(_time(ours[what], number))
                if what in peers:
                    rows["jax"].append(_time(peers[what], number))
            h, s = statistics.median(rows["hand"]), statistics.median(rows["sg"])
            j = "%.2f" % (statistics.median(rows["jax"]) / h) if rows["jax"] else "-"
            print("%6d %-14s %10.3f ms %10.3f ms %9.2fx %12s" % (d, what, h * 1e3, s * 1e3, s / h, j))


if __name__ == "__main__":
    main()
