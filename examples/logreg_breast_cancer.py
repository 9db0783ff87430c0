"""Logistic regression on scikit-learn's breast-cancer data, trained with symgrad.

The model is the lecture's one neuron, sigma(X*w + b), written as a SymPy matrix
expression by ``symgrad.nn.logistic_regression``; its mean binary cross-entropy is
differentiated by symgrad and trained with Adam on mini-batches. The test accuracy is
printed next to scikit-learn's ``LogisticRegression`` on the same standardised split.

    python examples/logreg_breast_cancer.py [--small]

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
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:
        raise ImportError("this example needs scikit-learn: pip install 'symgrad[examples]'") from exc
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def main(small=False):
    """Train, print the comparison, and return the numbers as a dict."""
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = load_data()
    net = nn.logistic_regression(X_train.shape[1])
    value_and_grad, logits = train.gradient_fn(net), train.output_fn(net)

    start = time.perf_counter()
    history = train.fit(
        value_and_grad,
        nn.init_params(net, scheme="zeros"),
        {"X": X_train, "Y": y_train[:, None].astype(float)},
        epochs=20 if small else 100,
        batch_size=32,
        optimizer=train.Adam(lr=0.01),
        seed=0,
    )
    seconds = time.perf_counter() - start
    acc = train.accuracy(logits(X=X_test, **history.params), y_test)

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = LogisticRegression(max_iter=1000).fit(X_train, y_train)
    sk_seconds = time.perf_counter() - start
    sk_acc = float(sk.score(X_test, y_test))

    print(f"breast cancer: {len(X_train)} training / {len(X_test)} test samples, {X_train.shape[1]} features")
    print(f"model: {net}")
    print(f"gradients via {value_and_grad.backend}")
    print(f"symgrad   test accuracy {acc:.4f}   ({history.epochs} epochs, final loss {history.loss[-1]:.4f}, {seconds:.2f} s)")
    print(f"sklearn   test accuracy {sk_acc:.4f}   (LogisticRegression, L2 C=1, {sk_seconds:.2f} s)")
    return {"accuracy": acc, "sklearn_accuracy": sk_acc, "seconds": seconds, "loss": history.loss,
            "backend": value_and_grad.backend, "params": history.params}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="fewer epochs (what the test suite runs)")
    main(small=parser.parse_args().small)
