"""Second order at matrix level: symgrad's hvp / hessian / hessian_diag of logistic regression
against the hand-written NumPy closed forms, side by side in one process (interleaved rounds,
medians), with jax.jit and HIPS autograd as optional peers (skipped when not importable), and
the 64-128-10 tanh MLP's HVP at B = 256 against jax's jitted HVP.

Closed forms (s = σ(z)(1 − σ(z)), z = Xw, computed inside each call as symgrad computes it):
    hvp      Xᵀ(s·(Xv))
    hessian  Xᵀ(s·X)
    diag     (X∘X)ᵀs

    python benchmarks/bench_hessian.py [--n 1000] [--dims 100,300,1000] [--rounds 15] [--stat median|min]
        [--quick] [--no-peers]

Run it with OPENBLAS_NUM_THREADS=1 on a small shared machine (the ratios are steadier).
"""

import argparse
import statistics
import time

import numpy as np
import sympy as sp

import symgrad as sg
from symgrad import nn
from symgrad.functions import softplus


def logistic(check_finite=True):
    """Σ over rows of softplus(Xw) − y∘Xw: the logistic loss, written at matrix level."""
    n, d = sp.symbols("n d", integer=True, positive=True)
    X, w, y = sp.MatrixSymbol("X", n, d), sp.MatrixSymbol("w", d, 1), sp.MatrixSymbol("y", n, 1)
    z = X * w
    return sg.compile(sp.Trace(sp.OneMatrix(1, n) * (z.applyfunc(softplus) - sp.HadamardProduct(y, z))),
                      wrt=[w], args=[X, y], check_finite=check_finite)


def _once(fn, number):
    t = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t) / number


def _number(fn, target=0.01):
    """Repetitions per round so that one round of ``fn`` takes about ``target`` seconds."""
    t = _once(fn, 1)
    return max(1, min(200, int(target / max(t, 1e-6))))


STAT = {"median": statistics.median, "min": min}


def race(contenders: dict, rounds: int, stat="median") -> dict:
    """{name: seconds per call (median or min over rounds)}, the contenders interleaved round
    by round (each round in a rotated order, so that no contender always runs right after
    another)."""
    numbers = {k: _number(f) for k, f in contenders.items()}
    times = {k: [] for k in contenders}
    order = list(contenders)
    for r in range(rounds):
        for k in order[r % len(order):] + order[:r % len(order)]:
            times[k].append(_once(contenders[k], numbers[k]))
    return {k: STAT[stat](v) for k, v in times.items()}


def jax_peers(X, y, w, v):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None, {}
    jax.config.update("jax_enable_x64", True)
    Xj, yj, wj, vj = (jnp.asarray(a) for a in (X, y, w, v))
    d = X.shape[1]

    def L(p):
        z = Xj @ p
        return jnp.sum(jnp.logaddexp(0.0, z) - yj * z)

    g = jax.grad(L)
    hvp = jax.jit(lambda p, u: jax.jvp(g, (p,), (u,))[1])
    hess = jax.jit(jax.hessian(L))
    diag = jax.jit(lambda p: jnp.diagonal(jax.hessian(L)(p).reshape(d, d)))
    peers = {"hvp": lambda: hvp(wj, vj).block_until_ready(), "hessian": lambda: hess(wj).block_until_ready(),
             "hessian_diag": lambda: diag(wj).block_until_ready()}
    for p in peers.values():
        p()  # compile outside the timing
    return "jax %s" % jax.__version__, peers


def autograd_peers(X, y, w, v):
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError:
        return None, {}
    d = X.shape[1]

    def L(p):
        z = anp.dot(X, p)
        return anp.sum(anp.logaddexp(0.0, z) - y * z)

    hvp = autograd.hessian_vector_product(L)
    hess = autograd.hessian(L)
    peers = {"hvp": lambda: hvp(w, v), "hessian": lambda: hess(w),
             "hessian_diag": lambda: np.diagonal(hess(w).reshape(d, d))}
    return "autograd", peers


def logistic_rows(f, n, dims, rounds, peers_on, stat):
    g = logistic(check_finite=False)  # the programs alone: no finiteness pass over the inputs
    rows = []
    for d in dims:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n, d)) / np.sqrt(d)
        y = (rng.random((n, 1)) < 0.5).astype(float)
        w = rng.normal(size=(d, 1))
        v = rng.normal(size=(d, 1))

        def s_():
            p = 1 / (1 + np.exp(-(X @ w)))
            return p * (1 - p)

        hand = {"hvp": lambda: X.T @ (s_() * (X @ v)), "hessian": lambda: X.T @ (s_() * X),
                "hessian_diag": lambda: (X * X).T @ s_()}
        ours = {"hvp": lambda: f.hvp({"w": v}, X=X, y=y, w=w), "hessian": lambda: f.hessian(X=X, y=y, w=w),
                "hessian_diag": lambda: f.hessian_diag(X=X, y=y, w=w)}
        bare = {"hvp": lambda: g.hvp({"w": v}, X=X, y=y, w=w), "hessian": lambda: g.hessian(X=X, y=y, w=w),
                "hessian_diag": lambda: g.hessian_diag(X=X, y=y, w=w)}
        H = hand["hessian"]()
        assert np.allclose(ours["hessian"]()["w"]["w"].reshape(d, d), H, rtol=1e-10, atol=1e-12)
        assert np.allclose(ours["hessian_diag"]()["w"].ravel(), np.diag(H), rtol=1e-10, atol=1e-12)
        assert np.allclose(ours["hvp"]()["w"], H @ v, rtol=1e-10, atol=1e-12)
        peers = []
        if peers_on:
            for make in (jax_peers, autograd_peers):
                if make is autograd_peers and d > 300:
                    continue  # autograd's hessian is d reverse sweeps in Python: minutes at d = 1000
                name, fns = make(X, y, w, v)
                if name:
                    peers.append((name, fns))
        for what in hand:
            contenders = {"hand": hand[what], "symgrad": ours[what], "bare": bare[what]}
            for name, fns in peers:
                contenders[name] = fns[what]
            t = race(contenders, rounds, stat)
            rows.append((d, what, t["hand"], t["symgrad"], t["bare"],
                         {name: t[name] / t["hand"] for name, _ in peers}))
    return rows


def mlp_row(batch, rounds, peers_on, stat):
    net = nn.mlp([64, 128, 10], activation="tanh", loss="softmax_cross_entropy")
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    params = nn.init_params(net, seed=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((batch, 64))
    Y = np.eye(10)[rng.integers(0, 10, batch)]
    v = {k: rng.standard_normal(np.shape(p)) for k, p in params.items()}
    ours = lambda: f.hvp(v, X=X, Y=Y, **params)  # noqa: E731
    ours()
    contenders = {"symgrad": ours}
    name = None
    if peers_on:
        try:
            import jax
            import jax.numpy as jnp
        except ImportError:
            jax = None
        if jax is not None:
            jax.config.update("jax_enable_x64", True)
            Xj, Yj = jnp.asarray(X), jnp.asarray(Y)

            def L(p):
                h = jnp.tanh(Xj @ p["W1"] + p["b1"])
                z = h @ p["W2"] + p["b2"]
                return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.sum(Yj * z, axis=1))

            pj = {k: jnp.asarray(a) for k, a in params.items()}
            vj = {k: jnp.asarray(a) for k, a in v.items()}
            hvp = jax.jit(lambda p, u: jax.jvp(jax.grad(L), (p,), (u,))[1])
            got, want = ours(), hvp(pj, vj)
            for k in params:
                assert np.allclose(got[k], np.asarray(want[k]), rtol=1e-8, atol=1e-10), k
            contenders[name := "jax %s" % jax.__version__] = lambda: jax.block_until_ready(hvp(pj, vj))
            contenders[name]()
    t = race(contenders, rounds, stat)
    return t["symgrad"], (name, t[name]) if name else None


def build_times(n, d):
    """Seconds to compile the loss and to generate each second-order program (d does not enter:
    the programs are symbolic; the first call at d builds them)."""
    rng = np.random.default_rng(0)
    X, y, w = rng.normal(size=(n, d)), (rng.random((n, 1)) < 0.5).astype(float), rng.normal(size=(d, 1))
    out = {}
    t = time.perf_counter()
    f = logistic()
    out["compile"] = time.perf_counter() - t
    for what, call in (("hvp", lambda: f.hvp({"w": w}, X=X, y=y, w=w)), ("hessian", lambda: f.hessian(X=X, y=y, w=w)),
                       ("hessian_diag", lambda: f.hessian_diag(X=X, y=y, w=w))):
        t = time.perf_counter()
        call()
        first = time.perf_counter() - t
        t = time.perf_counter()
        call()
        out[what] = first - (time.perf_counter() - t)  # the first call less a steady one: the build
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--dims", default="100,300,1000")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--batch", type=int, default=256, help="the MLP HVP's batch")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--stat", choices=sorted(STAT), default="median",
                    help="per contender over the rounds; min is steadier on a loaded shared machine")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.n, a.dims, a.rounds, a.batch = 200, "10,20", 2, 32
    dims = [int(d) for d in a.dims.split(",")]
    f = logistic()
    rows = logistic_rows(f, a.n, dims, a.rounds, not a.no_peers, a.stat)
    peer_names = sorted({k for r in rows for k in r[5]})
    print("logistic regression, n = %d; ratios to the NumPy closed form (%s of %d rounds)" % (a.n, a.stat, a.rounds))
    print("(bare: check_finite=False, no finiteness pass over the inputs; peers: their time / the closed form's)")
    print("%6s %-13s %12s %12s %8s %8s" % ("d", "what", "closed form", "symgrad", "ratio", "bare")
          + "".join(" %16s" % p for p in peer_names))
    for d, what, h, s, b, peers in rows:
        print("%6d %-13s %9.3f ms %9.3f ms %7.2fx %7.2fx" % (d, what, h * 1e3, s * 1e3, s / h, b / h)
              + "".join(" %15.2fx" % peers[p] if p in peers else " %16s" % "-" for p in peer_names))
    print("paths: hessian_diag %s" % f.hessian_diag_paths)
    ours, peer = mlp_row(a.batch, a.rounds, not a.no_peers, a.stat)
    line = "64-128-10 tanh MLP, softmax cross-entropy, HVP at B = %d: symgrad %.3f ms" % (a.batch, ours * 1e3)
    if peer:
        line += ", %s jit %.3f ms, symgrad / jax %.2fx" % (peer[0], peer[1] * 1e3, ours / peer[1])
    print(line)
    b = build_times(a.n, max(dims))
    print("build at d = %d: compile %.3f s, hvp %.3f s, hessian %.3f s, hessian_diag %.3f s"
          % (max(dims), b["compile"], b["hvp"], b["hessian"], b["hessian_diag"]))


if __name__ == "__main__":
    main()
