"""W3 at one point: the gradient of the depth-D tanh chain with every input a Python float.

The model is benchmarks/w3model.py (one scalar SymPy expression, 6 parameters per layer,
3 data inputs: 387 scalar inputs at D = 64). symgrad's ``f.grad(**values)`` with Python
floats runs the point variant (Python float arithmetic and ``math``); with 0-d arrays it
runs the general NumPy program (what every call ran before the point variant). The peer is
``jax.jit(jax.grad(loss))`` with the parameters as one (D, 6) array, when jax is importable.
Every contender runs in one process, interleaved round by round; medians.

    python benchmarks/bench_point.py [--depth 64] [--rounds 20] [--quick]
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from w3model import tanh_chain  # noqa: E402

from symgrad.compiled import compile as sg_compile  # noqa: E402


def _timer(fn, number):
    t = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t) / number


def contenders(depth):
    loss, params, inputs = tanh_chain(depth)
    t = time.perf_counter()
    f = sg_compile(loss, wrt=params, args=inputs)
    compile_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    P = rng.normal(size=(depth, 6)) * 0.5
    data = {"x1": 0.3, "x2": -0.7, "y": 0.2}
    values = dict(data, **{p.name: float(v) for p, v in zip(params, P.ravel())})
    arrays = {k: np.array(v) for k, v in values.items()}  # 0-d arrays: the general NumPy program
    out = {
        "symgrad f.grad (Python floats)": lambda: f.grad(**values),
        "symgrad f.value_and_grad (Python floats)": lambda: f.value_and_grad(**values),
        "symgrad f(...) value (Python floats)": lambda: f(**values),
        "symgrad f.grad (0-d arrays: NumPy program)": lambda: f.grad(**arrays),
    }
    t = time.perf_counter()
    g_point = f.grad(**values)
    first_s = time.perf_counter() - t  # includes building the point variant
    g_numpy = f.grad(**arrays)
    worst = max(abs(g_point[k] - g_numpy[k]) / max(1.0, abs(g_numpy[k])) for k in g_numpy)
    if not worst < 1e-12:
        raise SystemExit("point variant disagrees with the NumPy program: %g" % worst)
    notes = {"compile (s)": compile_s, "first f.grad call, builds the point variant (s)": first_s,
             "point vs NumPy program, max rel. difference": worst}
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return out, notes
    jax.config.update("jax_enable_x64", True)

    def jloss(Pj, x1, x2, y):
        u, v = x1, x2
        for layer in range(depth):
            a, b, c, d, e, f_ = (Pj[layer, i] for i in range(6))
            u, v = jnp.tanh(a * u + b * v + e), jnp.tanh(c * u + d * v + f_)
        return (u + v - y) ** 2

    jg = jax.jit(jax.grad(jloss))
    JP = jnp.asarray(P)
    gj = np.asarray(jg(JP, data["x1"], data["x2"], data["y"]))
    mine = np.array([g_point[p.name] for p in params]).reshape(depth, 6)
    if not np.allclose(mine, gj, rtol=1e-9, atol=1e-12):
        raise SystemExit("jax disagrees: max difference %g" % np.max(np.abs(mine - gj)))
    out["jax.jit(grad), parameters as one array"] = lambda: jg(JP, data["x1"], data["x2"], data["y"]).block_until_ready()
    return out, notes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds (median taken)")
    ap.add_argument("--number", type=int, default=20, help="calls per timing")
    ap.add_argument("--quick", action="store_true", help="depth 4, 3 rounds of 2 calls (a smoke test)")
    a = ap.parse_args(argv)
    if a.quick:
        a.depth, a.rounds, a.number = 4, 3, 2
    fns, notes = contenders(a.depth)
    times = {k: [] for k in fns}
    for _ in range(a.rounds):
        for k, fn in fns.items():
            times[k].append(_timer(fn, a.number))
    med = {k: statistics.median(v) for k, v in times.items()}
    peer = med.get("jax.jit(grad), parameters as one array")
    print("W3 at one point: depth %d (%d scalar inputs), %d rounds x %d calls, medians"
          % (a.depth, 6 * a.depth + 3, a.rounds, a.number))
    print("%-48s %10s %10s" % ("contender", "us", "vs jax"))
    for k, t in med.items():
        print("%-48s %10.1f %10s" % (k, t * 1e6, "%.2fx" % (t / peer) if peer else "-"))
    if peer is None:
        print("%-48s %10s" % ("jax.jit(grad)", "not installed"))
    for k, v in notes.items():
        print("%-48s %10.3g" % (k, v))


if __name__ == "__main__":
    main()
