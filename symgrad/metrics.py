"""Labels and accuracy: `one_hot` targets, `predict` classes from network outputs, `accuracy`.

>>> accuracy(np.array([[0.1, 2.0], [3.0, -1.0]]), one_hot([1, 0]))
1.0
"""

import numpy as np

from symgrad.errors import InputError


def one_hot(labels, n_classes=None, dtype=np.float64):
    """Integer labels ``(B,)`` -> one-hot rows ``(B, n_classes)`` of ``dtype`` (default float64; classes default: max label + 1).

    >>> one_hot([0, 2, 1]).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    >>> one_hot([1], 2, dtype=np.float32).dtype
    dtype('float32')
    """
    y = np.asarray(labels)
    if y.ndim != 1 or (y.size and not np.issubdtype(y.dtype, np.integer) and not np.all(y == np.round(y))):
        raise InputError(f"one_hot needs a 1-d array of integer labels; got shape {y.shape}, dtype {y.dtype}")
    y = y.astype(np.int64)
    k = int(y.max()) + 1 if n_classes is None and y.size else int(n_classes or 0)
    if y.size and (y.min() < 0 or y.max() >= k):
        raise InputError(f"labels must lie in 0..{k - 1} for {k} classes; got {int(y.min())}..{int(y.max())}")
    out = np.zeros((y.size, k), dtype=dtype)
    out[np.arange(y.size), y] = 1.0
    return out


def predict(scores, logits=True):
    """Predicted class labels ``(B,)`` from network outputs.

    Several columns: the argmax of each row (logits or probabilities alike). One column
    (or a 1-d array): 1 where the score exceeds 0 for logits, 0.5 for probabilities.

    >>> predict(np.array([[0.1, 2.0], [3.0, -1.0]])).tolist(), predict(np.array([[-0.3], [0.2]])).tolist()
    ([1, 0], [0, 1])
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim == 2 and s.shape[1] > 1:
        return s.argmax(axis=1)
    if s.ndim == 1 or (s.ndim == 2 and s.shape[1] == 1):
        return (s.reshape(-1) > (0.0 if logits else 0.5)).astype(np.int64)
    raise InputError(f"scores must be (B,), (B, 1) or (B, C); got shape {s.shape}")


def accuracy(scores, targets, logits=True):
    """The fraction of samples whose predicted class (see `predict`) matches the target.

    ``targets`` are integer labels ``(B,)``, one-hot rows ``(B, C)``, or binary targets
    ``(B,)``/``(B, 1)`` with the positive class written 1 (0/1, or the lecture's ±1).

    >>> accuracy(np.array([[0.1, 2.0], [3.0, -1.0]]), np.array([1, 1]))
    0.5
    >>> accuracy(np.array([-2.0, 0.5, 3.0]), np.array([-1, 1, 1]))
    1.0
    """
    pred = predict(scores, logits)
    t = np.asarray(targets)
    if t.ndim == 2 and t.shape[1] > 1:
        t = t.argmax(axis=1)
    else:
        t = t.reshape(-1)
        if np.asarray(scores).ndim == 1 or np.shape(scores)[-1] == 1:
            t = (t > 0).astype(np.int64)
    if t.shape[0] != pred.shape[0]:
        raise InputError(f"scores have {pred.shape[0]} samples but targets have {t.shape[0]}")
    return float(np.mean(pred == t))
