"""The matrix operation table: per operation, its value, vector-Jacobian and Jacobian-vector code.

One entry per operation of ``symgrad.matrix`` (matrix product, bias broadcast, elementwise
function, Hadamard product/power, transpose, trace, sums, row-wise log-sum-exp and softmax, and
scalar operations on their results), as functions returning NumPy source. An elementwise
node's derivative comes from the scalar rule table (``symgrad.rules``), so no derivative is
written twice.

>>> sorted(OPS)[:4]
['add', 'broadcast_cols', 'broadcast_rows', 'colsum']
"""

from __future__ import annotations

from .matrix import _D, _OUT
from .rules import rule_for

__all__ = ["OPS", "INPLACE_PARTIALS", "INPLACE_VALUES", "ELEMENTWISE_VJP", "pre_statements"]

# ---- the operation table: value, vjp (per argument) and jvp, as NumPy source -------------------
# Each entry gets a small context ``c`` with the printed argument names ``c.a``, the node's own
# name ``c.o`` and helpers; vjp(c, i, g) is the contribution to argument i's adjoint given the
# node's adjoint g, jvp(c, dots) the node's tangent from its arguments' tangents (None = zero).

def _times(g, p):
    """g*p without a multiplication by the seed 1.0 or by ±1, and without needless parentheses."""
    if p.startswith("(") and p.endswith(")") and p[1:-1].replace("_", "").replace("-", "", 1).isalnum():
        p = p[1:-1]
    if p in ("1", "-1"):
        return g if p == "1" else "-" + g
    return p if g == "1.0" else "%s*%s" % (g, p)


def _sumdots(terms):
    terms = [t for t in terms if t]
    return " + ".join(terms) if terms else None


def _elementwise_partial(c):
    p = rule_for(c.node.param).partial(c.node.param, _D, _OUT)
    return c.code(p, {_D: c.a[0], _OUT: c.o})


def _scalar_partials(c):
    n = c.node
    r = rule_for(n.param)
    return [c.code(r.partial(n.param, a, n.symbol), {}) for a in n.args]


def _coef(c, k):
    v = c.node.param[k]
    return "" if v == 1 else "-" if v == -1 else "(%s)*" % c.code(v, {})


OPS = {
    "matmul": dict(value=lambda c: "%s @ %s" % tuple(c.a),
                   vjp=lambda c, i, g: "%s @ %s.T" % (g, c.a[1]) if i == 0 else "%s.T @ %s" % (c.a[0], g),
                   jvp=lambda c, d: _sumdots([d[0] and "%s @ %s" % (d[0], c.a[1]), d[1] and "%s @ %s" % (c.a[0], d[1])])),
    "transpose": dict(value=lambda c: "%s.T" % c.a[0], vjp=lambda c, i, g: "%s.T" % g,
                      jvp=lambda c, d: d[0] and "%s.T" % d[0]),
    # a (1, B) row of ones through BLAS sums the rows of the adjoint faster than .sum(axis=0)
    "broadcast_rows": dict(value=lambda c: "np.broadcast_to(%s, (%s, %s.shape[1]))" % (c.a[0], c.code(c.node.param, {}), c.a[0]),
                           vjp=lambda c, i, g: "np.ones((1, %s.shape[0]), %s.dtype) @ %s" % (g, g, g),
                           jvp=lambda c, d: d[0] and "np.broadcast_to(%s, %s.shape)" % (d[0], c.o)),
    "broadcast_cols": dict(value=lambda c: "np.broadcast_to(%s, (%s.shape[0], %s))" % (c.a[0], c.a[0], c.code(c.node.param, {})),
                           vjp=lambda c, i, g: "%s.sum(axis=1, keepdims=True)" % g,
                           jvp=lambda c, d: d[0] and "np.broadcast_to(%s, %s.shape)" % (d[0], c.o)),
    "rowsum": dict(value=lambda c: "%s.sum(axis=1, keepdims=True)" % c.a[0],
                   vjp=lambda c, i, g: "np.broadcast_to(%s, %s.shape)" % (g, c.a[0]),
                   jvp=lambda c, d: d[0] and "%s.sum(axis=1, keepdims=True)" % d[0]),
    "colsum": dict(value=lambda c: "%s.sum(axis=0, keepdims=True)" % c.a[0],
                   vjp=lambda c, i, g: "np.broadcast_to(%s, %s.shape)" % (g, c.a[0]),
                   jvp=lambda c, d: d[0] and "%s.sum(axis=0, keepdims=True)" % d[0]),
    "sum": dict(value=lambda c: "np.sum(%s)" % c.a[0], vjp=lambda c, i, g: "np.broadcast_to(%s, %s.shape)" % (g, c.a[0]),
                jvp=lambda c, d: d[0] and "np.sum(%s)" % d[0]),
    "trace": dict(value=lambda c: "np.trace(%s)" % c.a[0], vjp=lambda c, i, g: "%s*np.eye(%s.shape[0])" % (g, c.a[0]),
                  jvp=lambda c, d: d[0] and "np.trace(%s)" % d[0]),
    "trace_matmul": dict(value=lambda c: "np.sum(%s*%s.T)" % tuple(c.a),
                         vjp=lambda c, i, g: "%s*%s.T" % (g, c.a[1 - i]),
                         jvp=lambda c, d: _sumdots([d[0] and "np.sum(%s*%s.T)" % (d[0], c.a[1]),
                                                   d[1] and "np.sum(%s*%s.T)" % (c.a[0], d[1])])),
    "frobenius": dict(value=lambda c: "np.vdot(%s, %s)" % tuple(c.a),
                      vjp=lambda c, i, g: _times(g, c.a[1 - i]),
                      jvp=lambda c, d: _sumdots([d[0] and "np.sum(%s*%s)" % (d[0], c.a[1]),
                                                d[1] and "np.sum(%s*%s)" % (c.a[0], d[1])])),
    "sumsq": dict(value=lambda c: "np.vdot(%s, %s)" % (c.a[0], c.a[0]),
                  vjp=lambda c, i, g: _times("2*" + g if g != "1.0" else "2", c.a[0]),
                  jvp=lambda c, d: d[0] and "2*np.sum(%s*%s)" % (c.a[0], d[0])),
    "add": dict(value=lambda c: " + ".join("%s%s" % (_coef(c, k), a) for k, a in enumerate(c.a)).replace("+ -", "- "),
                vjp=lambda c, i, g: "%s%s" % (_coef(c, i), g),
                jvp=lambda c, d: _sumdots(["%s%s" % (_coef(c, k), t) for k, t in enumerate(d) if t])),
    "scale": dict(value=lambda c: "%s*%s" % tuple(c.a),
                  vjp=lambda c, i, g: "np.sum(%s*%s)" % (g, c.a[1]) if i == 0 else "%s*%s" % (c.a[0], g),
                  jvp=lambda c, d: _sumdots([d[0] and "%s*%s" % (d[0], c.a[1]), d[1] and "%s*%s" % (c.a[0], d[1])])),
    "hadamard": dict(value=lambda c: "*".join(c.a),
                     vjp=lambda c, i, g: "*".join([g] + [a for k, a in enumerate(c.a) if k != i]),
                     jvp=lambda c, d: _sumdots(["*".join([t] + [a for k, a in enumerate(c.a) if k != j])
                                                for j, t in enumerate(d) if t])),
    "hpow": dict(value=lambda c: "%s**%s" % (c.a[0], c.code(c.node.param, {})),
                 vjp=lambda c, i, g: "%s*%s" % (g, c.code(c.node.param * _D ** (c.node.param - 1), {_D: c.a[0]})),
                 jvp=lambda c, d: d[0] and "%s*%s" % (d[0], c.code(c.node.param * _D ** (c.node.param - 1), {_D: c.a[0]}))),
    "elementwise": dict(value=lambda c: c.code(c.node.param, {_D: c.a[0]}),
                        vjp=lambda c, i, g: _times(g, "(%s)" % _elementwise_partial(c)),
                        jvp=lambda c, d: d[0] and _times(d[0], "(%s)" % _elementwise_partial(c))),
    # value is computed in three statements (see _pre); the softmax is reused by both sweeps
    "logsumexp_rows": dict(value=lambda c: "%s_m + np.log(%s_s)" % (c.o, c.o),
                           vjp=lambda c, i, g: "%s*(%s_e/%s_s)" % (g, c.o, c.o),
                           jvp=lambda c, d: d[0] and "((%s_e/%s_s)*%s).sum(axis=1, keepdims=True)" % (c.o, c.o, d[0])),
    # max-shifted value; the adjoint is o∘(g − rowsum(g∘o)), the softmax's Jacobian applied once
    "softmax_rows": dict(value=lambda c: "%s_e/%s_e.sum(axis=1, keepdims=True)" % (c.o, c.o),
                         vjp=lambda c, i, g: "%s*(%s - (%s*%s).sum(axis=1, keepdims=True))" % (c.o, g, g, c.o),
                         jvp=lambda c, d: d[0] and "%s*(%s - (%s*%s).sum(axis=1, keepdims=True))" % (
                             c.o, d[0], d[0], c.o)),
    "scalar": dict(value=lambda c: c.code(c.node.param, {}),
                   vjp=lambda c, i, g: _times(g, "(%s)" % _scalar_partials(c)[i]),
                   jvp=lambda c, d: _sumdots(["(%s)*%s" % (p, t) for p, t in zip(_scalar_partials(c), d) if t])),
}


# Adjoint updates done in place with one temporary, for the activations networks use most:
# g *= 1 - out² (tanh) and g *= out·(1 − out) (sigmoid). Keyed by the scalar rule's name.
INPLACE_PARTIALS = {
    "tanh": lambda g, o: ["%s_t = np.square(%s)" % (o, o), "np.subtract(1.0, %s_t, out=%s_t)" % (o, o),
                          "%s *= %s_t" % (g, o)],
    "sigmoid": lambda g, o: ["%s_t = np.subtract(1.0, %s)" % (o, o), "%s_t *= %s" % (o, o), "%s *= %s_t" % (g, o)],
}

# Activations computed in place over a fresh pre-activation buffer ``a`` (no temporaries).
INPLACE_VALUES = {
    "tanh": lambda a: ["np.tanh(%s, out=%s)" % (a, a)],
    "sigmoid": lambda a: ["np.negative(%s, out=%s)" % (a, a), "np.exp(%s, out=%s)" % (a, a), "%s += 1.0" % a,
                          "np.reciprocal(%s, out=%s)" % (a, a)],
}

# Operations whose vector-Jacobian product treats the adjoint elementwise, so a scalar adjoint
# broadcasts correctly and need not be expanded to the node's shape first.
ELEMENTWISE_VJP = {"elementwise", "logsumexp_rows", "hadamard", "hpow"}  # softmax_rows needs a full g


def pre_statements(c):
    """Extra forward statements an operation needs before its value."""
    if c.node.op == "softmax_rows":
        return ["%s_e = np.exp(%s - %s.max(axis=1, keepdims=True))" % (c.o, c.a[0], c.a[0])]
    if c.node.op == "logsumexp_rows":
        z, o = c.a[0], c.o
        return ["%s_m = %s.max(axis=1, keepdims=True)" % (o, z),
                "%s_e = np.exp(%s - %s_m)" % (o, z, o),
                "%s_s = %s_e.sum(axis=1, keepdims=True)" % (o, o)]
    return []
