r"""Derivative tables at matrix level: one row per matrix node with its shape, value, tangent and adjoint.

Small matrices are shown in full, large ones by their Frobenius norm. Values come from the
same generated program as ``compile`` (without its in-place updates, so every intermediate
survives); the tangents ``dξ/dv`` from its forward (jvp) program, along a direction ``v``
in parameter space (by default a seeded random unit direction; the footer says which).

>>> import numpy as np, sympy as sp
>>> B = sp.Symbol("B", integer=True, positive=True)
>>> X, w = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("w", 2, 1)
>>> t = matrix_table(sp.Trace((X*w).T*(X*w)), wrt=[w], at={X: np.eye(2), w: np.array([[1.0], [2.0]])},
...                  direction={w: np.array([[1.0], [0.0]])})
>>> print(t.to_markdown())
| ξ | definition | shape | value | dξ/dv | dL/dξ |
|---|---|---|---|---|---|
| ξ1 | X@w | (2, 1) | [[1.], [2.]] | [[1.], [0.]] | [[2.], [4.]] |
| ξ2 | frob(ξ1, ξ1) | () | 5 | 2 | 1 |
<BLANKLINE>
L = ξ2 = 5; dL/dw = [[2.], [4.]]
<BLANKLINE>
dξ/dv: tangents along the given direction v: v\_w = [[1.], [0.]]; dL/dv = ⟨∇L, v⟩ = 2

The last tangent is the directional derivative ⟨∇L, v⟩: here the first entry of dL/dw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import sympy as sp

from .checkreport import expr_text
from .compiled import as_symbols, compile
from .emit import generate
from .errors import InputError
from .matrix import matrix_leaves
from .ops import kind
from .printing import CodePrinter
from .publish import Cell, Line, Sheet, render_html, render_markdown, render_text
from .publish_latex import latex_numbers, render_latex
from .rules import kink_note

__all__ = ["MatrixRow", "MatrixTable", "matrix_table"]

SMALL = 6  # matrices with at most this many entries are printed in full


def cell(v, digits: int = 10, small: int = SMALL, precision: int = 6) -> str:
    """A value for a table or picture cell: a number, a small matrix in full, else its norm.

    >>> cell(0.5), cell([[1.0, 2.0]]), cell(np.ones((3, 3)))
    ('0.5', '[[1., 2.]]', '‖·‖ = 3')
    """
    if v is None:
        return "—"
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return "%.*g" % (digits, float(a))
    if a.size <= small:
        return np.array2string(a, precision=precision, separator=", ").replace("\n", "")
    return "‖·‖ = %.6g" % float(np.linalg.norm(a))


def _plain(v):
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a.tolist()


class MatrixRow(NamedTuple):
    """One node of a matrix table (a tuple, so ``row[4]`` is still the value)."""

    name: str
    op: str  # "elementwise" or the matrix operation (mm, bcast_rows, lse_rows, ...)
    definition: str  # in ξ
    shape: tuple
    value: object
    adjoint: object  # dL/dξ, None where the reverse program has none (the node does not reach L)
    kink: str  # which kink convention the node's derivative follows, or ""
    tangent: object = None  # dξ/dv along the table's direction (zero for nodes v does not move)


@dataclass(frozen=True)
class MatrixTable:
    """Rows (``MatrixRow``: name, op, definition, shape, value, adjoint, kink, tangent) for a matrix
    graph; same renderings as Table. ``direction`` is the v of the tangent column, one array per
    parameter; ``direction_note`` says where it came from."""

    rows: tuple
    wrt: tuple
    value: object
    gradient: dict
    output: str
    expression: str
    direction: dict = None
    direction_note: str = ""

    def _cells(self):
        return [[r.name, r.definition, str(tuple(r.shape)), cell(r.value), cell(r.tangent), cell(r.adjoint)]
                for r in self.rows]

    _HEADER = ["ξ", "definition", "shape", "value", "dξ/dv", "dL/dξ"]

    def _sheet(self) -> Sheet:
        """The rows for symgrad.publish; the footer: kink notes, L and the gradient, the direction."""
        footer = [Line((Cell("%s: %s" % (r.name, r.kink)),), True) for r in self.rows if r.kink]
        footer.append(Line((Cell("L = %s = %s" % (self.output, cell(self.value))),) + tuple(
            Cell("dL/d%s = %s" % (w, cell(g))) for w, g in self.gradient.items())))
        if self.direction is not None:
            slope = self.rows[-1].tangent if self.rows else 0.0
            footer.append(Line((Cell("dξ/dv: tangents along %s: %s" % (self.direction_note, ", ".join(
                "v_%s = %s" % (w, cell(v)) for w, v in self.direction.items()))),
                Cell("dL/dv = ⟨∇L, v⟩ = %s" % cell(np.sum(slope))))))
        rows = tuple(tuple(Cell(c, (), (latex_numbers(c),) if k >= 3 else ()) for k, c in enumerate(r))
                     for r in self._cells())  # values, tangents and adjoints as numbers in LaTeX
        return Sheet(tuple(Cell(h) for h in self._HEADER), rows, tuple(footer))

    def to_text(self, width: int | None = None, layout: str = "auto", translate=None) -> str:
        """Aligned text no wider than ``width`` (None: the terminal's, or 100; 0: no limit); see
        ``symgrad.tables.Table.to_text``."""
        return render_text(self._sheet(), width, layout, translate)

    def __str__(self):
        return self.to_text()

    def to_markdown(self):
        """A Markdown table (cells escaped), then the footer lines as paragraphs."""
        return render_markdown(self._sheet())

    def to_latex(self, layout: str = "auto", standalone: bool = False):
        """LaTeX for pdflatex (booktabs; longtable, landscape or split columns when large; the
        footer and notes); see ``symgrad.tables.Table.to_latex``."""
        return render_latex(self._sheet(), layout, standalone)

    def to_html(self):
        """An HTML table with scoped CSS (what Jupyter shows); all text escaped."""
        return render_html(self._sheet())

    def _repr_html_(self):
        return self.to_html()

    def _repr_markdown_(self):
        return self.to_markdown()

    def _repr_latex_(self):
        return self.to_latex()

    def to_dict(self):
        """Plain data: full values and adjoints as nested lists."""
        return {"expression": self.expression, "wrt": list(self.wrt), "value": _plain(self.value),
                "gradient": {w: _plain(g) for w, g in self.gradient.items()},
                "direction": None if self.direction is None else {w: _plain(v) for w, v in self.direction.items()},
                "direction_note": self.direction_note,
                "nodes": [{"name": r.name, "op": r.op, "expr": r.definition, "shape": list(r.shape),
                           "value": _plain(r.value), "tangent": None if r.tangent is None else _plain(r.tangent),
                           "adjoint": None if r.adjoint is None else _plain(r.adjoint), "kink": r.kink or None}
                          for r in self.rows]}

    def to_json(self, indent=2):
        """JSON with ``value``, ``gradient``, ``direction`` and ``nodes`` (name, expr, shape, value,
        tangent, adjoint)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def matrix_table(expr, wrt, at, direction=None, seed: int = 0) -> MatrixTable:
    """The matrix-level derivative table of ``expr`` at ``at`` ({symbol or name: array}).

    The ``dξ/dv`` column holds each node's tangent along ``direction`` ({parameter or name:
    array shaped like it}; a parameter left out does not move), computed by the forward
    (jvp) program ``compile`` generates. By default ``v`` is a random direction drawn with
    ``seed`` and scaled to unit length over all parameters together: every entry moves,
    no symmetry of the network hides a tangent (an all-ones step of a softmax's bias
    changes nothing, for one), and the last tangent is the slope of L along v, ⟨∇L, v⟩.
    The footer names the direction; ``table.direction`` holds it in full.

    >>> import numpy as np, sympy as sp
    >>> W = sp.MatrixSymbol("W", 2, 2)
    >>> t = matrix_table(sp.Trace(W.T*W), wrt=[W], at={W: np.eye(2)})
    >>> t.direction_note, round(float(np.linalg.norm(t.direction["W"])), 12)
    ('a random unit direction (seed 0)', 1.0)
    >>> bool(np.isclose(t.rows[-1].tangent, np.vdot(t.gradient["W"], t.direction["W"])))
    True
    """
    wrt = as_symbols(wrt, "wrt", sum(matrix_leaves(expr)[:2], ()))
    f = compile(expr, wrt=wrt)
    module = generate(f.sweeps, f._ir_args, inplace=False, tape=True)
    if not isinstance(at, dict):
        raise InputError("at must be a dict {symbol: array}, got %s" % type(at).__name__)
    values = {(k.name if hasattr(k, "name") else str(k)): v for k, v in at.items()}
    values = {k: v for k, v in values.items() if k in f.names}
    bound = f._bind((), values)
    reverse = module.functions["reverse"]
    with np.errstate(all="ignore"):
        value, (tape,) = reverse(*bound)
    env = dict(reverse.__globals__)  # NumPy and the module's helpers (_lse_rows, ...), then the locals
    env.update(tape)
    printer = CodePrinter(module.names)
    dirs, note = _direction(f, bound, direction, seed)
    tangents = _tangents(f, module, printer, env, dirs)
    rows = []
    for n in f.graph.nodes:
        v = env[module.names[n.symbol]]
        bar = f.sweeps.adjoint.get(n.symbol)
        g = eval(printer.doprint(bar), env) if bar is not None else None  # noqa: S307 - our own names
        dot = tangents.get(n.symbol)
        dot = np.zeros(np.shape(v)) if dot is None else np.array(np.broadcast_to(dot, np.shape(v)), dtype=float)
        rows.append(MatrixRow(n.name, type(n.expr).__name__ if kind(n.expr) != "elementwise" else "elementwise", repr(n).split(" = ", 1)[1], np.shape(v), v, g, kink_note(n.expr), dot))
    gradient = {}
    for w, leaf in zip(f.wrt, f._ir_wrt):
        bar = f.sweeps.adjoint.get(leaf)
        gradient[w.name] = eval(printer.doprint(bar), env) if bar is not None else np.zeros(np.shape(env[module.names[leaf]]))  # noqa: S307
    return MatrixTable(tuple(rows), tuple(w.name for w in f.wrt), value, gradient,
                       f.graph.nodes[-1].name if f.graph.nodes else sp.sstr(f.graph.output), expr_text(expr, limit=10 ** 6),
                       dirs, note)


def _direction(f, bound, direction, seed):
    """({parameter name: its part of v}, a note saying where v came from)."""
    like = {w.name: np.asarray(bound[f.names.index(w.name)], dtype=float) for w in f.wrt}
    if direction is None:
        rng = np.random.default_rng(seed)
        dirs = {k: rng.standard_normal(a.shape) for k, a in like.items()}
        norm = np.sqrt(sum(float(np.sum(d * d)) for d in dirs.values()))
        return {k: (d / norm if np.ndim(d) else float(d / norm)) for k, d in dirs.items()}, \
            "a random unit direction (seed %d)" % seed
    if not isinstance(direction, dict):
        raise InputError("direction must be a dict {parameter: array shaped like it}, got %s"
                         % type(direction).__name__)
    dirs = {k: np.zeros(a.shape) if a.ndim else 0.0 for k, a in like.items()}
    for k, d in direction.items():
        name = k.name if hasattr(k, "name") else str(k)
        if name not in like:
            raise InputError("direction given for %r, which is not a parameter; parameters: %s"
                             % (name, ", ".join(like)))
        try:
            a = np.asarray(d, dtype=float)
        except (TypeError, ValueError):
            raise InputError("the direction of %r is %r, not a numeric array" % (name, d)) from None
        if a.shape != like[name].shape:
            raise InputError("the direction of %r has shape %s but %r has shape %s; pass one shaped like its "
                             "parameter" % (name, a.shape, name, like[name].shape))
        if not np.isfinite(a).all():
            raise InputError("the direction of %r contains nan or inf" % name)
        dirs[name] = a if a.ndim else float(a)
    return dirs, "the given direction v"


def _tangents(f, module, printer, env, dirs) -> dict:
    """{node symbol: tangent}: the forward program's statements, evaluated one by one in ``env``
    (the values tape) with the parameters' tangents seeded from ``dirs``."""
    tenv = dict(env)
    for w, leaf in zip(f.wrt, f._ir_wrt):
        tenv[module.names[f.sweeps.seeds[leaf]]] = dirs[w.name]
    with np.errstate(all="ignore"):
        for a in f.sweeps.forward:
            tenv[module.names[a.target]] = eval(printer.doprint(a.expr), tenv)  # noqa: S307 - our own names
        return {n.symbol: eval(printer.doprint(f.sweeps.tangent[n.symbol]), tenv)  # noqa: S307
                for n in f.graph.nodes if n.symbol in f.sweeps.tangent}
