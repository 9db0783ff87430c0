"""W2 memory: peak memory of one reverse-mode call (loss + all gradients) of the 64-128-10 tanh MLP.

The network is the one bench_network.py times: ``nn.mlp([64, 128, 10], activation="tanh",
loss="softmax_cross_entropy")``, compiled with ``sg.compile(net.loss, wrt=net.params,
args=[net.inputs, net.targets])``. Contenders, measured side by side in one process on the
same inputs:

1. symgrad ``f.value_and_grad(X=X, Y=Y, **params)``;
2. ``symgrad.reference.mlp_value_and_grad`` (the plain hand-written backprop);
3. a careful in-place hand-written backprop (below): every elementwise step writes into a
   buffer that already exists, so the call holds the hidden activations H, their adjoint
   dH, the logits/softmax buffer and the gradients, and nothing else of size B x 128;
4. JAX ``jax.jit(jax.value_and_grad(...))``, only when jax is importable.

Method: NumPy reports its data allocations to ``tracemalloc``. For each contender, after a
warm-up call, ``gc.collect()``, then ``tracemalloc.start()``, the memory traced so far is
taken as the baseline (the inputs and parameters were allocated before and are not
counted), ``tracemalloc.reset_peak()``, one call, and the peak traced during the call minus
the baseline is the number reported. It includes the returned gradients (their size is
shown in its own column) and the small Python objects the call makes; it does not include
BLAS's internal work buffers (OpenBLAS allocates those outside NumPy, the same for every
contender). JAX/XLA allocates outside tracemalloc too, so for JAX the number is XLA's own
``compiled.memory_analysis()``: temporaries + outputs. The measurement is repeated a few
times and the smallest peak is kept (they normally agree to the byte).

    python benchmarks/bench_memory.py [--quick] [--repeats 3]
"""

import argparse
import gc
import tracemalloc

import numpy as np

import symgrad as sg
from symgrad import nn, reference

MiB = 1024.0 * 1024.0
SIZES = [64, 128, 10]


def careful_value_and_grad(params, X, Y):
    """Loss and gradients of the 64-128-10 tanh / softmax-CE MLP with as few temporaries as possible."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    B = X.shape[0]
    H = X @ W1                      # (B, 128): the only hidden-size buffer of the forward pass
    H += b1
    np.tanh(H, out=H)
    Z = H @ W2                      # (B, 10): logits, then softmax, then dL/dZ
    Z += b2
    zy = np.vdot(Y, Z)              # before Z is shifted in place
    m = Z.max(axis=1, keepdims=True)
    Z -= m
    np.exp(Z, out=Z)
    s = Z.sum(axis=1, keepdims=True)
    loss = (np.log(s).sum() + m.sum() - zy) / B
    Z /= s                          # softmax
    Z -= Y
    Z *= 1.0 / B                    # dZ = (P - Y) / B, in the P buffer
    dZ = Z
    dW2 = H.T @ dZ
    db2 = dZ.sum(axis=0, keepdims=True)
    dH = dZ @ W2.T                  # (B, 128): the second and last hidden-size buffer
    del Z, dZ
    np.multiply(H, H, out=H)        # H is not needed any more: 1 - H**2 in its own buffer
    np.subtract(1.0, H, out=H)
    dH *= H
    del H
    dW1 = X.T @ dH
    db1 = dH.sum(axis=0, keepdims=True)
    return float(loss), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def traced_peak(fn, repeats):
    """(peak bytes allocated during one call of fn above what was held before it, the call's result)."""
    fn()  # warm-up: lazy imports, caches, first-call allocations
    best, result = None, None
    for _ in range(repeats):
        result = None
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            result = fn()
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        best = peak if best is None else min(best, peak)
    return best, result


def grads_nbytes(grads):
    return sum(np.asarray(g).nbytes for g in grads.values())


def jax_peer(params, X, Y):
    """(XLA's temporaries + outputs in bytes, grads bytes, note), or (None, None, why not)."""
    try:
        import jax
    except ImportError:
        return None, None, "not installed"
    try:
        if X.dtype == np.float64:
            jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        def loss(p, X, Y):
            H = jnp.tanh(X @ p["W1"] + p["b1"])
            Z = H @ p["W2"] + p["b2"]
            return (jax.nn.logsumexp(Z, axis=1).sum() - jnp.vdot(Y, Z)) / X.shape[0]

        jp = {k: jnp.asarray(v) for k, v in params.items()}
        jX, jY = jnp.asarray(X), jnp.asarray(Y)
        vg = jax.jit(jax.value_and_grad(loss))
        compiled = vg.lower(jp, jX, jY).compile()
        value, grads = compiled(jp, jX, jY)
        want, _ = reference.mlp_value_and_grad(params, X, Y)
        if not np.isclose(float(value), want, rtol=1e-4):
            return None, None, "loss differs: %r vs %r" % (float(value), want)
        ma = compiled.memory_analysis()
        if ma is None:
            return None, None, "no memory_analysis on this backend"
        return (ma.temp_size_in_bytes + ma.output_size_in_bytes,
                sum(np.asarray(g).nbytes for g in grads.values()), "XLA memory_analysis")
    except Exception as e:  # an optional peer must not break the benchmark
        return None, None, "failed: %s: %s" % (type(e).__name__, e)


def check_careful(params, X, Y, rtol):
    """The careful backprop agrees with symgrad.reference.mlp_value_and_grad (before anything is measured)."""
    l1, g1 = careful_value_and_grad(params, X, Y)
    l2, g2 = reference.mlp_value_and_grad(params, X, Y)
    assert np.isclose(l1, l2, rtol=rtol), (l1, l2)
    for k in params:
        assert g1[k].shape == g2[k].shape == params[k].shape, (k, g1[k].shape, g2[k].shape)
        assert np.allclose(g1[k], g2[k], rtol=rtol, atol=rtol * np.abs(g2[k]).max()), k


def bench(batch, dtype, repeats, rng):
    net = nn.mlp(SIZES, activation="tanh", loss="softmax_cross_entropy")
    f = sg.compile(net.loss, wrt=net.params, args=[net.inputs, net.targets])
    params = {k: v.astype(dtype) for k, v in nn.init_params(net, seed=0).items()}
    X = rng.standard_normal((batch, SIZES[0])).astype(dtype)
    Y = np.eye(SIZES[-1], dtype=dtype)[rng.integers(0, SIZES[-1], batch)]
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    check_careful(params, X, Y, rtol)
    l_sg, g_sg = f.value_and_grad(X=X, Y=Y, **params)
    l_ref, _ = reference.mlp_value_and_grad(params, X, Y)
    assert np.isclose(l_sg, l_ref, rtol=1e-4), (l_sg, l_ref)

    contenders = [
        ("careful in-place hand backprop", lambda: careful_value_and_grad(params, X, Y)),
        ("reference.mlp_value_and_grad", lambda: reference.mlp_value_and_grad(params, X, Y)),
        ("symgrad f.value_and_grad", lambda: f.value_and_grad(X=X, Y=Y, **params)),
    ]
    rows = []
    for name, fn in contenders:
        peak, (_, grads) = traced_peak(fn, repeats)
        rows.append((name, peak, grads_nbytes(grads), ""))
    peak, gbytes, note = jax_peer(params, X, Y)
    rows.append(("jax jit(value_and_grad)", peak, gbytes, note))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="B = 256 only (used by the smoke test)")
    ap.add_argument("--repeats", type=int, default=3, help="measurements per contender (the smallest is kept)")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    cases = [(256, np.float64)] if a.quick else [(4096, np.float64), (256, np.float64), (4096, np.float32)]
    headline = None
    results = []
    for batch, dtype in cases:
        rows = bench(batch, dtype, a.repeats, rng)
        hidden = batch * SIZES[1] * np.dtype(dtype).itemsize / MiB
        print("B = %d, %s (one B x %d buffer = %.3f MiB)" % (batch, dtype.__name__, SIZES[1], hidden))
        print("  %-32s %10s %10s %12s" % ("contender", "peak MiB", "grads MiB", "vs careful"))
        careful = rows[0][1]
        for name, peak, gbytes, note in rows:
            if peak is None:
                print("  %-32s %10s %10s %12s  %s" % (name, "—", "—", "—", note))
            else:
                print("  %-32s %10.3f %10.3f %11.2fx  %s" % (name, peak / MiB, gbytes / MiB, peak / careful, note))
        ratio = rows[2][1] / careful
        print("  symgrad / careful: %.2f, reference / careful: %.2f" % (ratio, rows[1][1] / careful))
        print()
        if headline is None:
            headline = ratio
        results.append((batch, dtype.__name__, rows))
    print("ratio symgrad / careful hand: %.2f" % headline)
    return results


if __name__ == "__main__":
    main()
