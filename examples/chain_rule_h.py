"""The chain-rule warm-up h(x) = (2(x + 1))**2 at x = 2, forward and reverse (h'(2) = 24).

Run: python examples/chain_rule_h.py
"""

import sympy as sp

import symgrad as sg


def main():
    x = sp.Symbol("x")
    h = (2 * (x + 1)) ** 2
    t = sg.table(h, wrt=x, at={x: 2})
    print(t.to_markdown())
    f = sg.compile(h, wrt=[x])
    print("\nreverse mode h'(2) =", f.grad(x=2.0)["x"], "; forward mode h'(2) =", f.jvp({"x": 1.0}, x=2.0)[1])
    print("\n" + f.sources["reverse"])
    return t, f


if __name__ == "__main__":
    main()
