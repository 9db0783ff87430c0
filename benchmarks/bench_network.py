"""W2: a 64-128-10 MLP, softmax cross-entropy, loss + all gradients: symgrad vs hand-written NumPy.

Both run side by side in one process, interleaved, and the table reports medians and the
ratio symgrad / hand. The hand-written reference is symgrad.reference.mlp_value_and_grad
(max-shifted softmax, fused softmax-CE backward, `@`, axis sums).

    python benchmarks/bench_network.py [--quick]
"""

import argparse
import time

import numpy as np

import symgrad as sg
from symgrad import nn, reference


def median_time(fn, repeats, inner):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return float(np.median(times))


def ceiling_fn(params, X, activation):
    """The least any implementation must do: the 5 matrix products, the activation and one exp."""
    act = getattr(np, activation) if activation == "tanh" else (lambda z, out: np.exp(z, out=out))
    W1, W2 = params["W1"], params["W2"]

    def run():
        H = X @ W1
        act(H, out=H)
        Z = H @ W2
        np.exp(Z, out=Z)
        dH = Z @ W2.T
        return H.T @ Z, X.T @ dH

    return run


def bench(batch, dtype, activation, repeats, rng):
    net = nn.mlp([64, 128, 10], activation=activation, loss="softmax_cross_entropy")
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    params = {k: v.astype(dtype) for k, v in nn.init_params(net, seed=0).items()}
    X = rng.standard_normal((batch, 64)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, batch)]
    ours = lambda: f.value_and_grad(X=X, Y=Y, **params)  # noqa: E731
    hand = lambda: reference.mlp_value_and_grad(params, X, Y, activation=activation)  # noqa: E731
    (l1, g1), (l2, g2) = ours(), hand()
    assert np.isclose(l1, l2, rtol=1e-4), (l1, l2)
    peer = torch_peer(params, X, Y, activation)
    ceil = ceiling_fn(params, X, activation)
    inner = max(1, int(20000 // batch))
    t_ours, t_hand, t_peer, t_ceil = [], [], [], []
    for _ in range(repeats):  # interleave so machine noise hits all alike
        t_ours.append(median_time(ours, 1, inner))
        t_hand.append(median_time(hand, 1, inner))
        t_ceil.append(median_time(ceil, 1, inner))
        if peer is not None:
            t_peer.append(median_time(peer, 1, inner))
    return (float(np.median(t_ours)), float(np.median(t_hand)), float(np.median(t_peer)) if t_peer else None,
            float(np.median(t_ceil)))


def torch_peer(params, X, Y, activation):
    """PyTorch autograd on the same network (one thread), or None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    Xt, Yt, act = torch.tensor(X), torch.tensor(Y), getattr(torch, activation)

    def run():
        for v in tp.values():
            v.grad = None
        Z = act(Xt @ tp["W1"] + tp["b1"]) @ tp["W2"] + tp["b2"]
        loss = (torch.logsumexp(Z, 1).sum() - (Yt * Z).sum()) / X.shape[0]
        loss.backward()
        return loss.item(), {k: v.grad for k, v in tp.items()}

    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny run (used by the smoke test)")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    cases = [(256, np.float64, "tanh")] if a.quick else [
        (32, np.float64, "tanh"), (256, np.float64, "tanh"), (4096, np.float64, "tanh"),
        (256, np.float32, "tanh"), (256, np.float64, "sigmoid")]
    repeats = 3 if a.quick else 15
    print("%-6s %-8s %-8s %12s %12s %8s %11s %14s" % ("B", "dtype", "act", "symgrad µs", "hand µs", "ratio",
                                                      "of ceiling", "torch / hand"))
    rows = []
    for batch, dtype, act in cases:
        ours, hand, peer, ceil = bench(batch, dtype, act, repeats, rng)
        rows.append((batch, dtype.__name__, act, ours * 1e6, hand * 1e6, ours / hand, 100 * ceil / ours))
        print("%-6d %-8s %-8s %12.1f %12.1f %8.2f %10.0f%%" % rows[-1] +
              ("%15.2f" % (peer / hand) if peer else "  not installed"))
    return rows


if __name__ == "__main__":
    main()
