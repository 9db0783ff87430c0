"""One-neuron logistic regression from the lecture: gradient and one gradient-descent step.

h = w1*x1 + w2*x2 + b, p = σ(h), L = -y log p - (1 - y) log(1 - p), at x = (0.1, 0.7),
y = 1, w = (0.8, 0.2), b = 0.1, learning rate 0.5. The coarse table uses σ as one node.
Run: python examples/one_neuron_step.py
"""

import sympy as sp

import symgrad as sg


def main(lr=0.5):
    x1, x2, y, w1, w2, b = sp.symbols("x1 x2 y w1 w2 b")
    p = sg.sigmoid(w1 * x1 + w2 * x2 + b)
    loss = -y * sp.log(p) - (1 - y) * sp.log(1 - p)
    point = {x1: 0.1, x2: 0.7, y: 1, w1: 0.8, w2: 0.2, b: 0.1}
    print(sg.table(loss, wrt=[w1, w2, b], at=point, exact=False))

    f = sg.compile(loss, wrt=[w1, w2, b], args=[x1, x2, y])
    values = {s.name: float(v) for s, v in point.items()}
    value, grads = f.value_and_grad(**values)
    step = {k: values[k] - lr * g for k, g in grads.items()}
    print("\nL = %.10f" % value)
    for k in grads:
        print("dL/d%-2s = %+.10f   %s: %.4f -> %.10f" % (k, grads[k], k, values[k], step[k]))
    after = f(**{**values, **step})
    print("L after one step (lr=%g) = %.10f" % (lr, after))
    return value, grads, step, after


if __name__ == "__main__":
    main()
