"""A 64-h-10 tanh MLP on scikit-learn's 8x8 digits, trained with symgrad.

The network is plain SymPy built by ``symgrad.nn.mlp``; its softmax cross-entropy is
differentiated by symgrad and trained with Adam on shuffled mini-batches, with L2 weight
decay on the weights (not the biases), a validation set split off the training images, and
early stopping on the validation loss (the best epoch's parameters are kept). The test
accuracy is printed next to scikit-learn's ``MLPClassifier`` with the same hidden layer and
activation, trained on the same training images (validation part included), on the same
standardised split.

    python examples/mlp_digits.py [--small] [--save params.npz]

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


def main(small=False, hidden=64, save=None):
    """Train, print the comparison, and return the numbers as a dict."""
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits   # installed with scikit-learn

    X_train, X_test, y_train, y_test = load_data()
    # 15% of the training images for validation (early stopping); the test set stays unseen.
    X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.15, random_state=0, stratify=y_train)
    net = nn.mlp([64, hidden, 10], activation="tanh", loss="softmax_cross_entropy")
    value_and_grad, logits = train.gradient_fn(net), train.output_fn(net)
    weight_decay = 1e-4

    # 32x64 @ 64x64 products are too small to share between threads: one BLAS thread is
    # faster here, for both trainers (see the README's "Threads").
    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        history = train.fit(
            value_and_grad,
            nn.init_params(net, seed=0, scheme="glorot"),
            {"X": X_fit, "Y": train.one_hot(y_fit, 10)},
            epochs=10 if small else 200,
            batch_size=32,
            optimizer=train.Adam(lr=1e-3),
            seed=0,
            validation={"X": X_val, "Y": train.one_hot(y_val, 10)},
            weight_decay={"W1": weight_decay, "W2": weight_decay},
            early_stopping=10,
            metrics={"acc": train.accuracy_metric(net)},
        )
        seconds = time.perf_counter() - start
        acc = train.accuracy(logits(X=X_test, **history.params), y_test)

        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # ConvergenceWarning in the small setting
            sk = MLPClassifier(hidden_layer_sizes=(hidden,), activation="tanh", random_state=0,
                               max_iter=30 if small else 300).fit(X_train, y_train)
        sk_seconds = time.perf_counter() - start
        sk_acc = float(sk.score(X_test, y_test))

    best = history.best_epoch
    stop = f"stopped at epoch {history.epochs}, best {best}" if history.stopped_early else f"{history.epochs} epochs, best {best}"
    print(f"digits: {len(X_fit)} training + {len(X_val)} validation / {len(X_test)} test images of 8x8 pixels, 10 classes")
    print(f"model: {net}")
    print(f"gradients via {value_and_grad.backend}")
    print(f"symgrad   test accuracy {acc:.4f}   (Adam(1e-3), batch 32, weight decay {weight_decay:g} on W1, W2, "
          f"early stopping: {stop}; val_loss {history.val_loss[best - 1]:.4f}, "
          f"val_acc {history.val_metrics['acc'][best - 1]:.4f}, {seconds:.2f} s)")
    print(f"sklearn   test accuracy {sk_acc:.4f}   (MLPClassifier({hidden},), tanh, {sk.n_iter_} epochs, {sk_seconds:.2f} s)")
    if save:
        print(f"parameters saved to {train.save(history.params, save)}")
    return {"accuracy": acc, "sklearn_accuracy": sk_acc, "seconds": seconds, "loss": history.loss,
            "val_loss": history.val_loss, "history": history,
            "backend": value_and_grad.backend, "params": history.params}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="fewer epochs (what the test suite runs)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units (default 64)")
    parser.add_argument("--save", metavar="PATH", help="write the trained parameters to PATH (.npz)")
    args = parser.parse_args()
    main(small=args.small, hidden=args.hidden, save=args.save)
