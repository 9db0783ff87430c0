"""The lecture's logistic-loss derivative table, computed rather than copied.

The slides print dL/dW = +0.00037018372 for -y*log(1/(1+exp(-W*X))) at X = 3, y = 1,
W = 3; the true value is negative (raising W makes the correct prediction more certain
and the loss smaller). Run: python examples/lecture_logistic_table.py
"""

import sympy as sp

import symgrad as sg


def main():
    x, y, w = sp.symbols("x y w")
    loss = -y * sp.log(1 / (1 + sp.exp(-w * x)))
    print(sg.decompose(loss))
    print()
    t = sg.table(loss, wrt=w, at={x: 3, y: 1, w: 3})
    print(t)
    f = sg.compile(loss, wrt=[w], args=[x, y])
    grad = f.grad(x=3.0, y=1.0, w=3.0)["w"]
    print("\ncompiled reverse mode: dL/dw = %.12g (the slide prints +0.00037018372)" % grad)
    return t, grad


if __name__ == "__main__":
    main()
