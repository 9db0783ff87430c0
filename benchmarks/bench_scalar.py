"""W1: gradient of the lecture logistic loss over N samples, symgrad against its peers.

Loss: -y*log(s) - (1 - y)*log(1 - s), s = 1/(1 + exp(-w*x)) (and the same with symgrad's
sigmoid). Gradient w.r.t. the scalar w, summed over the batch. Every contender runs in one
process, interleaved round by round; the table shows medians and ratios to hand NumPy.

    python benchmarks/bench_scalar.py [--n 100000] [--rounds 30]
"""

import argparse
import statistics
import time

import numpy as np
import sympy as sp

import symgrad as sg


def _timer(fn, number):
    t = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t) / number


def contenders(n):
    rng = np.random.default_rng(0)
    X = rng.normal(size=n)
    Y = (rng.uniform(size=n) > 0.5).astype(float)
    w0 = 0.3
    x, y, w = sp.symbols("x y w")
    s = 1 / (1 + sp.exp(-w * x))
    loss = -y * sp.log(s) - (1 - y) * sp.log(1 - s)
    sg_loss = -y * sp.log(sg.sigmoid(w * x)) - (1 - y) * sp.log(1 - sg.sigmoid(w * x))

    def hand():
        p = 1 / (1 + np.exp(-w0 * X))
        return np.sum((p - Y) * X)

    f = sg.compile(loss, wrt=[w], args=[x, y])
    f_raw = sg.compile(loss, wrt=[w], args=[x, y], rewrite=False)
    f_sig = sg.compile(sg_loss, wrt=[w], args=[x, y])
    f_nocheck = sg.compile(loss, wrt=[w], args=[x, y], check_finite=False)
    g = f.functions["grad"]
    gb = f.variants["batch"].functions["grad"]  # what f.grad runs for float64 data arrays and a float w
    d = sp.lambdify([x, y, w], sp.diff(loss, w), modules="numpy", cse=True)
    out = {
        "hand NumPy  sum((s-y)*x)": hand,
        "symgrad f.grad": lambda: f.grad(x=X, y=Y, w=w0),
        "symgrad f.grad, check_finite=False": lambda: f_nocheck.grad(x=X, y=Y, w=w0),
        "symgrad generated grad() alone": lambda: g(X, Y, w0),
        "symgrad batch-variant grad() alone": lambda: gb(X, Y, np.float64(w0)),
        "symgrad f.grad, rewrite=False": lambda: f_raw.grad(x=X, y=Y, w=w0),
        "symgrad f.grad, sg.sigmoid form": lambda: f_sig.grad(x=X, y=Y, w=w0),
        "symgrad f.value_and_grad": lambda: f.value_and_grad(x=X, y=Y, w=w0),
        "symgrad f(...) (forward value)": lambda: f(x=X, y=Y, w=w0),
        "sympy.diff + lambdify(cse=True)": lambda: np.sum(d(X, Y, w0)),
    }
    expected = hand()
    for name, fn in out.items():
        v = fn()
        if isinstance(v, tuple):  # (value, grads) or the generated grad()'s (w_grad,)
            v = v[1] if len(v) == 2 else v[0]
        v = v["w"] if isinstance(v, dict) else v
        if "value" not in name and not np.isclose(np.sum(v), expected, rtol=1e-8):
            raise SystemExit("%s disagrees: %r vs %r" % (name, v, expected))
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        jg = jax.jit(jax.grad(lambda w_, x_, y_: jnp.sum(
            -y_ * jax.nn.log_sigmoid(w_ * x_) - (1 - y_) * jax.nn.log_sigmoid(-w_ * x_))))
        JX, JY = jnp.asarray(X), jnp.asarray(Y)
        out["jax.jit(grad)"] = lambda: jg(w0, JX, JY).block_until_ready()
    except ImportError:
        pass
    try:
        import torch
        TX, TY = torch.from_numpy(X), torch.from_numpy(Y)

        def torch_grad():
            tw = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
            z = tw * TX
            (torch.nn.functional.binary_cross_entropy_with_logits(z, TY, reduction="sum")).backward()
            return tw.grad
        out["torch autograd"] = torch_grad
    except ImportError:
        pass
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="samples")
    ap.add_argument("--rounds", type=int, default=30, help="interleaved rounds (median taken)")
    ap.add_argument("--number", type=int, default=5, help="calls per timing")
    a = ap.parse_args(argv)
    fns = contenders(a.n)
    times = {k: [] for k in fns}
    for _ in range(a.rounds):
        for k, fn in fns.items():
            times[k].append(_timer(fn, a.number))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["hand NumPy  sum((s-y)*x)"]
    fwd = med["symgrad f(...) (forward value)"]
    print("W1: logistic loss gradient, n = %d, %d rounds x %d calls, medians" % (a.n, a.rounds, a.number))
    print("%-40s %10s %10s" % ("contender", "ms", "vs hand"))
    for k, t in med.items():
        print("%-40s %10.3f %9.2fx" % (k, t * 1e3, t / base))
    print("%-40s %21.2f" % ("grad / forward value (symgrad)", med["symgrad f.grad"] / fwd))
    print("%-40s %21.2f" % ("value_and_grad / forward value", med["symgrad f.value_and_grad"] / fwd))
    for peer in ("jax.jit(grad)", "torch autograd"):
        if peer not in med:
            print("%-40s %21s" % (peer, "not installed"))


if __name__ == "__main__":
    main()
