"""The W3 model: a depth-D chain of 2-unit tanh layers as ONE scalar SymPy expression.

Each layer combines the two previous units, so the expression is a DAG of 4 nodes per layer
whose tree (every path spelled out) doubles per layer: whatever walks the tree instead of
the DAG is exponential in D. The loss is assembled with ``sp.Add``/``sp.Pow`` on the final
units directly; SymPy's flattening still only looks one level down.
"""

import sympy as sp


def tanh_chain(depth: int):
    """(loss, params, inputs): loss = (h - y)**2 with h = u + v, the sum of the last layer's units.

    Layer l has weights a_l, b_l, c_l, d_l and biases e_l, f_l (6 parameters):
    u' = tanh(a u + b v + e), v' = tanh(c u + d v + f).
    """
    x1, x2, y = sp.symbols("x1 x2 y")
    u, v = x1, x2
    params = []
    for l in range(1, depth + 1):
        a, b, c, d, e, f = sp.symbols("a%d b%d c%d d%d e%d f%d" % ((l,) * 6))
        params += [a, b, c, d, e, f]
        u, v = sp.tanh(a * u + b * v + e), sp.tanh(c * u + d * v + f)
    loss = sp.Pow(sp.Add(u, v, -y), 2)
    return loss, params, [x1, x2, y]
