"""The network examples run (small settings) and learn; symgrad's gradients follow hand-written backprop."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from symgrad import nn, reference, train

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"symgrad_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_logreg_breast_cancer(capsys):
    pytest.importorskip("sklearn")
    result = load_example("logreg_breast_cancer").main(small=True)
    out = capsys.readouterr().out
    assert result["accuracy"] >= 0.93
    assert result["accuracy"] >= result["sklearn_accuracy"] - 0.03
    assert result["loss"][-1] < result["loss"][0]
    assert "symgrad   test accuracy" in out and "sklearn   test accuracy" in out


def test_mlp_digits(capsys):
    pytest.importorskip("sklearn")
    result = load_example("mlp_digits").main(small=True)
    out = capsys.readouterr().out
    assert result["accuracy"] >= 0.92
    assert result["params"]["W1"].shape == (64, 64)
    assert "symgrad   test accuracy" in out and "MLPClassifier" in out
    h = result["history"]                       # validation, early stopping and weight decay are used
    assert len(h.val_loss) == h.epochs and h.best_epoch == int(np.argmin(h.val_loss)) + 1
    assert len(h.val_metrics["acc"]) == h.epochs and "weight decay" in out and "validation" in out


def test_triangle_mlp(capsys):
    result = load_example("triangle_mlp").main(small=True)
    out = capsys.readouterr().out
    assert result["accuracy"] >= 0.95
    assert out.count("side ") == 3 and "P(y=+1)" in out


def test_triangle_data_labels():
    tri = load_example("triangle_mlp")
    X, y = tri.make_data(500, seed=3)
    assert set(np.unique(y)) == {-1, 1}
    centroid = tri.TRIANGLE.mean(axis=0)
    for w0, w1, w2 in tri.side_lines():            # normals point inside
        assert w0 + w1 * centroid[0] + w2 * centroid[1] > 0


def test_digits_trajectory_follows_hand_written_backprop():
    """One epoch of mini-batch Adam with symgrad's gradients equals the hand-written loop to 1e-9."""
    pytest.importorskip("sklearn")
    X_train, _, y_train, _ = load_example("mlp_digits").load_data()
    Y_train = train.one_hot(y_train, 10)
    net = nn.mlp([64, 64, 10])
    init = nn.init_params(net, seed=0)
    h = train.fit(train.gradient_fn(net), init, {"X": X_train, "Y": Y_train}, epochs=1, batch_size=32,
                  optimizer=train.Adam(1e-3), seed=0)

    # The same epoch by hand: the same permutation, batches and Adam arithmetic.
    order = np.random.default_rng(0).permutation(len(X_train))
    Xs, Ys = X_train[order], Y_train[order]
    p, opt = dict(init), train.Adam(1e-3)
    for lo in range(0, len(Xs), 32):
        _, g = reference.mlp_value_and_grad(p, Xs[lo:lo + 32], Ys[lo:lo + 32])
        p = opt.step(p, g)
    for k in p:
        np.testing.assert_allclose(h.params[k], p[k], rtol=0, atol=1e-9)
