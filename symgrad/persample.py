"""Per-sample gradients of scalar expressions: the reverse program without the batch reduction.

``compile(expr, wrt, reduce=None)`` returns, for each parameter, its gradient for every sample
with the batch axes in front: ``batch + param.shape`` where ``batch`` is the part of the
inputs' broadcast shape that the parameter does not cover (a scalar parameter over a batch of
N samples gets shape (N,)). One reverse sweep, no Python loop over samples: the adjoints are
already per sample before ``_sum_to`` adds them up.

>>> import numpy as np, sympy as sp, symgrad as sg
>>> x, w = sp.symbols("x w")
>>> f = sg.compile(sp.exp(w * x), wrt=[w], reduce=None)
>>> f.grad(x=np.array([0.0, 1.0, 2.0]), w=0.0)["w"]
array([0., 1., 2.])
"""

from __future__ import annotations

import sympy as sp

from .emit import HEADER, HELPERS, Names, assemble, short_text, statement_lines
from .naming import docstring, identifier_names
from .passes import needed
from .printing import CodePrinter
from .sweeps import sweeps

__all__ = ["generate_per_sample"]

UNREDUCED = '''
def _per_sample(g, like, batch):
    """The adjoint g for every sample: broadcast to the batch, summed only over the axes where
    the parameter `like` is broadcast inside one sample (its size-1 axes)."""
    shape = np.shape(like)
    full = np.broadcast_shapes(np.shape(g), batch, shape)
    g = np.broadcast_to(g, full)
    lead = len(full) - len(shape)
    axes = tuple(lead + i for i, n in enumerate(shape) if n == 1 and full[lead + i] != 1)
    g = g.sum(axis=axes, keepdims=True) if axes else np.array(g, dtype=np.result_type(g, float))
    return g.astype(np.result_type(g, float), copy=False)
'''


def generate_per_sample(graph, wrt, args):
    """A module with ``per_sample(args..., wrt...)`` returning each parameter's per-sample gradient."""
    sw = sweeps(graph, wrt)
    params = list(args) + list(sw.wrt)
    names = Names(identifier_names(params))
    printer = CodePrinter(names)
    adjoints = [sw.adjoint.get(w, sp.S.Zero) for w in sw.wrt]
    reuse = {a.expr: a.target for a in sw.values}
    reverse = [type(a)(a.target, a.expr.xreplace(reuse), a.note, a.acc) for a in sw.reverse]
    adjoints = [g.xreplace(reuse) for g in adjoints]
    body = statement_lines(printer, needed(sw.values, reverse, adjoints) + reverse, names)
    leaves = set(graph.leaves)
    used = [names[p] for p in params if p in leaves] or ["0.0"]
    batch = "    _batch = np.broadcast_shapes(%s)" % ", ".join("np.shape(%s)" % u for u in used)
    results = ", ".join("_per_sample(%s, %s, _batch)" % (printer.doprint(g), names[w]) for g, w in zip(adjoints, sw.wrt))
    src = "def per_sample(%s):\n%s\n    return (%s,)\n" % (", ".join(names[p] for p in params),
                                                       "\n".join([batch] + body), results)
    extra = "import scipy.special\n" if any(m.startswith("scipy") for m in printer.module_imports) else ""
    source = HEADER.format(expr=docstring(short_text(graph)), extra=extra) + UNREDUCED
    for h in sorted(printer.helpers):
        source += HELPERS[h]
    source = source.rstrip("\n") + "\n\n\n" + src
    return assemble(source, {"per_sample": src}, names, kinds=(("per_sample", "per_sample"),))
