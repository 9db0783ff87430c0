"""The lecture's "triangle" MLP: three sigmoid neurons learn the three sides of a triangle.

Points (x1, x2) in the square [-1, 1]^2 are labelled y = +1 inside a triangle and -1
outside. One logistic regression can only draw one line; the lecture's answer is a hidden
layer of three, z_i = sigma(w0_i + w1_i*x1 + w2_i*x2), one per side, followed by a
logistic output on the new features (z1, z2, z3). The 2-3-1 network is built with
``symgrad.nn.mlp`` (sigmoid hidden layer, binary cross-entropy on the output logit),
differentiated by symgrad and trained with full-batch Adam on generated data. The script
prints test accuracy, the three learned lines next to the triangle's sides, and the
hidden features of a point inside and a point outside, like the lecture's table.

    python examples/triangle_mlp.py [--small]
"""

import argparse
import time

import numpy as np

from symgrad import nn, train

TRIANGLE = np.array([[-0.6, -0.5], [0.7, -0.4], [0.0, 0.7]])


def side_lines(vertices=TRIANGLE):
    """Each side as (w0, w1, w2) with w0 + w1*x1 + w2*x2 = 0, (w1, w2) a unit normal pointing inside."""
    lines = []
    for i in range(3):
        a, b, c = vertices[i], vertices[(i + 1) % 3], vertices[(i + 2) % 3]
        normal = np.array([a[1] - b[1], b[0] - a[0]])
        normal /= np.linalg.norm(normal)
        w0 = -normal @ a
        if w0 + normal @ c < 0:
            normal, w0 = -normal, -w0
        lines.append(np.array([w0, *normal]))
    return lines


def make_data(n, seed):
    """``n`` points uniform in [-1, 1]^2 and their labels: +1 inside the triangle, -1 outside."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    inside = np.ones(n, dtype=bool)
    for w0, w1, w2 in side_lines():
        inside &= w0 + w1 * X[:, 0] + w2 * X[:, 1] > 0
    return X, np.where(inside, 1, -1)


def _fmt(line):
    w0, w1, w2 = line
    return f"{w1:+.2f}*x1 {w2:+.2f}*x2 {w0:+.2f} = 0"


def main(small=False):
    """Train, print what the hidden layer learned, and return the numbers as a dict."""
    n_train = 300 if small else 1000
    X_train, y_train = make_data(n_train, seed=0)
    X_test, y_test = make_data(2000, seed=1)
    net = nn.mlp([2, 3, 1], activation="sigmoid", loss="binary_cross_entropy")
    value_and_grad, logits = train.gradient_fn(net), train.output_fn(net)

    start = time.perf_counter()
    history = train.fit(
        value_and_grad,
        nn.init_params(net, seed=0),
        {"X": X_train, "Y": (y_train[:, None] > 0).astype(float)},   # y = +1 -> 1, y = -1 -> 0
        epochs=600 if small else 2000,
        optimizer=train.Adam(lr=0.05),
    )
    seconds = time.perf_counter() - start
    params = history.params
    acc = train.accuracy(logits(X=X_test, **params), y_test)

    print(f"triangle with corners {TRIANGLE.tolist()}; {n_train} training points, "
          f"{np.mean(y_train > 0):.0%} inside")
    print(f"model: {net}")
    print(f"gradients via {value_and_grad.backend}")
    print(f"test accuracy {acc:.4f} ({history.epochs} full-batch Adam steps, final loss {history.loss[-1]:.4f}, {seconds:.2f} s)")

    print("hidden neurons z_i = sigmoid(w0 + w1*x1 + w2*x2), scaled to a unit normal, vs the nearest side:")
    sides = side_lines()
    for i in range(3):
        raw = np.array([params["b1"][0, i], *params["W1"][:, i]])
        line = raw / np.linalg.norm(raw[1:])
        # A neuron may fire inside or outside its side: compare with the side written the same way round.
        j, sign = min(((k, s) for k in range(3) for s in (1, -1)), key=lambda ks: np.linalg.norm(line - ks[1] * sides[ks[0]]))
        print(f"  z{i + 1}: {_fmt(line)}   (steepness {np.linalg.norm(raw[1:]):4.1f})   side {j + 1}: {_fmt(sign * sides[j])}")

    # The lecture's table: the new features (z1, z2, z3) of a point inside and one outside.
    probe = np.array([TRIANGLE.mean(axis=0), [0.9, 0.9]])
    Z = 1 / (1 + np.exp(-(probe @ params["W1"] + params["b1"])))
    out = 1 / (1 + np.exp(-logits(X=probe, **params)[:, 0]))
    print("  x1     x2     z1    z2    z3    P(y=+1)")
    for p, z, o in zip(probe, Z, out):
        print(f"  {p[0]:+.2f}  {p[1]:+.2f}  {z[0]:.2f}  {z[1]:.2f}  {z[2]:.2f}  {o:.3f}")
    return {"accuracy": acc, "seconds": seconds, "loss": history.loss, "backend": value_and_grad.backend,
            "params": params}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="fewer points and steps (what the test suite runs)")
    main(small=parser.parse_args().small)
