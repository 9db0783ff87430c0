"""BLAS threads and small-batch training: seconds per epoch of `train.fit` on the digits MLP at several thread counts.

A 32x64 @ 64x64 product takes microseconds; handing it to several BLAS threads costs more
in wake-ups and synchronisation than it saves, and threads beyond the free cores (another
process, scikit-learn's own pool, a test runner) wait for each other. The table reports the
median seconds per epoch for mini-batches of 32 and for full-batch epochs, each thread
count measured in turn (after a warm-up epoch) in one process, with ``threadpoolctl.threadpool_limits``.

    python benchmarks/bench_threads.py [--threads 1,2,8] [--epochs 3] [--rounds 5] [--quick]

Needs threadpoolctl (``pip install 'symgrad[examples]'``); uses scikit-learn's digits when
installed, otherwise random data of the same shape.
"""

import argparse
import os
import time

import numpy as np

from symgrad import nn, train


def data():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(0)
        return rng.normal(size=(1347, 64)), rng.integers(0, 10, 1347), "random 1347x64"
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    return X[:1347], y[:1347], "digits 1347x64"


def main(threads=(1, 2, 8), epochs=3, rounds=5):
    from threadpoolctl import threadpool_info, threadpool_limits

    X, y, what = data()
    net = nn.mlp([64, 64, 10])
    vg, init = train.gradient_fn(net), nn.init_params(net, seed=0)
    d = {"X": X, "Y": train.one_hot(y, 10)}
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    default = blas[0]["num_threads"] if blas else "?"
    print(f"{what}, 64-64-10 tanh MLP, Adam; {os.cpu_count()} CPUs, BLAS {blas[0]['internal_api'] if blas else '?'} "
          f"default {default} threads; median of {rounds} rounds of {epochs} epochs")
    times = {(b, t): [] for b in (32, None) for t in threads}
    for (b, t), out in times.items():
        # Each setting is measured on its own after one warm-up epoch: OpenBLAS threads keep
        # spinning for a while after a threaded call and would slow whatever runs next.
        with threadpool_limits(limits=t, user_api="blas"):
            train.fit(vg, init, d, epochs=1, batch_size=b, optimizer=train.Adam(1e-3), progress=False)
            for _ in range(rounds):
                start = time.perf_counter()
                train.fit(vg, init, d, epochs=epochs, batch_size=b, optimizer=train.Adam(1e-3), progress=False)
                out.append((time.perf_counter() - start) / epochs)
    print(f"{'batch':>10} {'threads':>8} {'s/epoch':>9} {'vs 1 thread':>12}")
    for b in (32, None):
        base = float(np.median(times[(b, threads[0])]))
        for t in threads:
            m = float(np.median(times[(b, t)]))
            print(f"{b or 'full':>10} {t:>8} {m:>9.4f} {m / base:>11.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2,8", help="comma-separated BLAS thread counts (first is the base)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one round of one epoch (what the tests run)")
    args = parser.parse_args()
    threads = tuple(int(t) for t in args.threads.split(","))
    main(threads, 1 if args.quick else args.epochs, 1 if args.quick else args.rounds)
