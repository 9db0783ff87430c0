"""A 64-h-10 tanh MLP on scikit-learn's 8x8 digits, trained with symgrad.

The network is plain SymPy built by ``symgrad.nn.mlp``; its softmax cross-entropy is
differentiated by symgrad and trained with Adam on shuffled mini-batches. The test
accuracy is printed next to scikit-learn's ``MLPClassifier`` with the same hidden layer
and activation on the same standardised split.

    python examples/mlp_digits.py [--small]

Needs the optional extra ``examples`` (scikit-learn); the data ship with it, nothing downloads.
"""

import argparse
import time
import warnings

import numpy as np

from symgrad import nn, train


def load_data():
    """(X_train, X_test, y_train, y_test): a fixed stratified 75/25 split, standardised on the training part."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:
        raise ImportError("this example needs scikit-learn: pip install 'symgrad[examples]'") from exc
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def main(small=False, hidden=64):
    """Train, print the comparison, and return the numbers as a dict."""
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits   # installed with scikit-learn

    X_train, X_test, y_train, y_test = load_data()
    net = nn.mlp([64, hidden, 10], activation="tanh", loss="softmax_cross_entropy")
    value_and_grad, logits = train.gradient_fn(net), train.output_fn(net)
    test_accuracy = lambda p: train.accuracy(logits(X=X_test, **p), y_test)

    # 32x64 @ 64x64 products are too small to share between threads: one BLAS thread is
    # about twice as fast here, for both trainers.
    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        history = train.fit(
            value_and_grad,
            nn.init_params(net, seed=0, scheme="glorot"),
            {"X": X_train, "Y": train.one_hot(y_train, 10)},
            epochs=10 if small else 60,
            batch_size=32,
            optimizer=train.Adam(lr=1e-3),
            seed=0,
            metrics={"test_acc": test_accuracy},
        )
        seconds = time.perf_counter() - start
        acc = history.metrics["test_acc"][-1]

        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # ConvergenceWarning in the small setting
            sk = MLPClassifier(hidden_layer_sizes=(hidden,), activation="tanh", random_state=0,
                               max_iter=30 if small else 300).fit(X_train, y_train)
        sk_seconds = time.perf_counter() - start
        sk_acc = float(sk.score(X_test, y_test))

    print(f"digits: {len(X_train)} training / {len(X_test)} test images of 8x8 pixels, 10 classes")
    print(f"model: {net}")
    print(f"gradients via {value_and_grad.backend}")
    print(f"symgrad   test accuracy {acc:.4f}   ({history.epochs} epochs of Adam(1e-3), batch 32, "
          f"final loss {history.loss[-1]:.4f}, {seconds:.2f} s)")
    print(f"sklearn   test accuracy {sk_acc:.4f}   (MLPClassifier({hidden},), tanh, {sk.n_iter_} epochs, {sk_seconds:.2f} s)")
    return {"accuracy": acc, "sklearn_accuracy": sk_acc, "seconds": seconds, "loss": history.loss,
            "backend": value_and_grad.backend, "params": history.params}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="fewer epochs (what the test suite runs)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units (default 64)")
    args = parser.parse_args()
    main(small=args.small, hidden=args.hidden)
