"""Derivative tables at matrix level: one row per matrix node with its shape, value and adjoint.

Small matrices are shown in full, large ones by their Frobenius norm. Values come from the
same generated program as ``compile`` (without its in-place updates, so every intermediate
survives).

>>> import numpy as np, sympy as sp
>>> B = sp.Symbol("B", integer=True, positive=True)
>>> X, w = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("w", 2, 1)
>>> t = matrix_table(sp.Trace((X*w).T*(X*w)), wrt=[w], at={X: np.eye(2), w: np.array([[1.0], [2.0]])})
>>> print(t.to_markdown())
| ξ | definition | shape | value | dL/dξ |
|---|---|---|---|---|
| ξ1 | X@w | (2, 1) | [[1.], [2.]] | [[2.], [4.]] |
| ξ2 | frob(ξ1, ξ1) | () | 5 | 1 |
<BLANKLINE>
L = ξ2 = 5; dL/dw = [[2.], [4.]]
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .compiled import as_symbols, compile
from .emit import generate
from .errors import InputError
from .matrix import matrix_leaves
from .ops_matrix import MatOp
from .printing import CodePrinter
from .rules import kink_note

__all__ = ["MatrixTable", "matrix_table"]

SMALL = 6  # matrices with at most this many entries are printed in full


def _cell(v) -> str:
    if v is None:
        return "—"
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return "%.10g" % float(a)
    if a.size <= SMALL:
        return np.array2string(a, precision=6, separator=", ").replace("\n", "")
    return "‖·‖ = %.6g" % float(np.linalg.norm(a))


def _plain(v):
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a.tolist()


@dataclass(frozen=True)
class MatrixTable:
    """Rows of (name, definition, shape, value, adjoint) for a matrix graph; same renderings as Table."""

    rows: tuple  # (name, op, definition, shape, value, adjoint, kink note)
    wrt: tuple
    value: object
    gradient: dict
    output: str
    expression: str

    def _cells(self):
        return [[n, d, str(tuple(s)), _cell(v), _cell(g)] for n, _, d, s, v, g, _ in self.rows]

    _HEADER = ["ξ", "definition", "shape", "value", "dL/dξ"]

    def _footer(self):
        notes = ["%s: %s" % (r[0], r[6]) for r in self.rows if r[6]]
        return "\n".join(notes + ["L = %s = %s; %s" % (self.output, _cell(self.value), "; ".join(
            "dL/d%s = %s" % (w, _cell(g)) for w, g in self.gradient.items()))])

    def __str__(self):
        rows = [self._HEADER] + self._cells()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(wd) for c, wd in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("─" * wd for wd in widths))
        return "\n".join(lines + ["", self._footer()])

    def to_markdown(self):
        """A Markdown table plus a line with the value and gradient."""
        lines = ["| " + " | ".join(self._HEADER) + " |", "|" + "---|" * len(self._HEADER)]
        lines += ["| " + " | ".join(c.replace("|", r"\|") for c in r) + " |" for r in self._cells()]
        return "\n".join(lines + ["", self._footer()])

    def to_latex(self):
        """A LaTeX tabular (cells as text)."""
        esc = lambda s: s.replace("_", r"\_").replace("‖·‖", r"$\|\cdot\|$").replace("ξ", r"$\xi$")  # noqa: E731
        body = [" & ".join(esc(c) for c in r) + r" \\" for r in self._cells()]
        return "\n".join([r"\begin{tabular}{lllll}", r"\hline", " & ".join(esc(h) for h in self._HEADER) + r" \\",
                          r"\hline"] + body + [r"\hline", r"\end{tabular}"])

    def to_html(self):
        """An HTML table (what Jupyter shows)."""
        e = html.escape
        head = "".join("<th>%s</th>" % e(h) for h in self._HEADER)
        body = "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % e(c) for c in r) for r in self._cells())
        return "<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table><p>%s</p>" % (head, body, e(self._footer()))

    _repr_html_ = to_html

    def to_dict(self):
        """Plain data: full values and adjoints as nested lists."""
        return {"expression": self.expression, "wrt": list(self.wrt), "value": _plain(self.value),
                "gradient": {w: _plain(g) for w, g in self.gradient.items()},
                "nodes": [{"name": n, "op": op, "expr": d, "shape": list(s), "value": _plain(v),
                           "adjoint": None if g is None else _plain(g), "kink": k or None}
                          for n, op, d, s, v, g, k in self.rows]}

    def to_json(self, indent=2):
        """JSON with ``value``, ``gradient`` and ``nodes`` (name, expr, shape, value, adjoint)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def matrix_table(expr, wrt, at) -> MatrixTable:
    """The matrix-level derivative table of ``expr`` at ``at`` ({symbol or name: array})."""
    wrt = as_symbols(wrt, "wrt", sum(matrix_leaves(expr)[:2], ()))
    f = compile(expr, wrt=wrt)
    module = generate(f.sweeps, f._ir_args, inplace=False, tape=True)
    if not isinstance(at, dict):
        raise InputError("at must be a dict {symbol: array}, got %s" % type(at).__name__)
    values = {(k.name if hasattr(k, "name") else str(k)): v for k, v in at.items()}
    values = {k: v for k, v in values.items() if k in f.names}
    bound = f._bind((), values)
    with np.errstate(all="ignore"):
        value, (env,) = module.functions["reverse"](*bound)
    env = dict(env, np=np)
    printer = CodePrinter(module.names)
    rows = []
    for n in f.graph.nodes:
        v = env[module.names[n.symbol]]
        bar = f.sweeps.adjoint.get(n.symbol)
        g = eval(printer.doprint(bar), env) if bar is not None else None  # noqa: S307 - our own names
        rows.append((n.name, type(n.expr).__name__ if isinstance(n.expr, MatOp) else "elementwise", repr(n).split(" = ", 1)[1], np.shape(v), v, g, kink_note(n.expr)))
    gradient = {}
    for w, leaf in zip(f.wrt, f._ir_wrt):
        bar = f.sweeps.adjoint.get(leaf)
        gradient[w.name] = eval(printer.doprint(bar), env) if bar is not None else np.zeros(np.shape(env[module.names[leaf]]))  # noqa: S307
    return MatrixTable(tuple(rows), tuple(w.name for w in f.wrt), value, gradient,
                       f.graph.nodes[-1].name if f.graph.nodes else sp.sstr(f.graph.output), sp.sstr(expr))
