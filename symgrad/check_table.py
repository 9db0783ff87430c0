"""Check a hand-derived derivative table cell by cell, with follow-through credit.

The table is Markdown or CSV in the layout ``symgrad table`` prints (other columns are
ignored): the ``value``, ``partial value``, ``dξ/dw`` and ``dL/dξ`` columns are checked,
each cell a decimal or an exact expression (``exp(-9)``, ``-1/(1 + exp(-9))**2``; the
``exact ≈ decimal`` cells symgrad prints are read by their exact part). A cell is
``right`` when it equals the truth (a decimal to the digits given: within one unit of its
last digit), ``follows`` when it is wrong but equals what the rule gives from the
student's own earlier cells (so one sign error is reported once, with the cells it carried
into), and ``wrong`` otherwise. Blank cells (or ``?``, ``—``) are not checked.

>>> import sympy as sp
>>> x = sp.Symbol("x")
>>> student = '''| ξ | value | partial value | dξ/dx | dL/dξ |
... |---|---|---|---|---|
... | ξ1 | 6 | 2 | 2 | -12 |
... | ξ2 | 36 | -12 | -24 | 1 |'''
>>> r = check_table((2*(x + 1))**2, student, wrt=x, at={x: 2})
>>> [(c.row, c.column, c.verdict) for c in r.cells if c.verdict != "right"]
[('ξ2', 'partial value', 'wrong'), ('ξ2', 'dξ/dx', 'follows'), ('ξ1', 'dL/dξ', 'follows')]
>>> r.wrong, r.follows, r.ok
(1, 2, False)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import sympy as sp

from .atpoint import at_point
from .errors import InputError, ParseError
from .parse import parse_expr
from .readtable import read_table

__all__ = ["Cell", "Report", "check_table"]

_DECIMAL = re.compile(r"^[+-]?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$")
_BLANK = ("", "?", "—", "-", "–")


@dataclass(frozen=True)
class Cell:
    """One checked cell: ``given`` as written, ``expected`` the truth, ``rule`` what the
    student's own earlier cells give, ``causes`` the wrong cells a ``follows`` stems from."""

    row: str
    column: str
    given: str
    expected: float
    verdict: str
    rule: float | None = None
    causes: tuple = ()


@dataclass(frozen=True)
class Report:
    """The verdicts; ``ok`` when every checked cell is right."""

    cells: tuple
    blank: int = 0

    @property
    def wrong(self) -> int:
        return sum(c.verdict == "wrong" for c in self.cells)

    @property
    def follows(self) -> int:
        return sum(c.verdict == "follows" for c in self.cells)

    @property
    def ok(self) -> bool:
        return all(c.verdict == "right" for c in self.cells)

    def __str__(self) -> str:
        out = ["%d cells checked: %d right, %d wrong, %d follow through from earlier mistakes%s" % (
            len(self.cells), len(self.cells) - self.wrong - self.follows, self.wrong, self.follows,
            "; %d blank, not checked" % self.blank if self.blank else "")]
        for c in self.cells:
            if c.verdict != "wrong":
                continue
            line = "%s %s: wrong: given %s, expected %s" % (c.row, c.column, c.given, _f(c.expected))
            if c.rule is not None and abs(c.rule - c.expected) > 1e-9 * abs(c.expected):
                line += " (the rule from the given cells gives %s)" % _f(c.rule)
            carried = [d for d in self.cells if d.verdict == "follows" and (c.row, c.column) in d.causes]
            if carried:
                line += "\n    carried into (follow-through, consistent with it): " + ", ".join(
                    "%s %s = %s (true %s)" % (d.row, d.column, d.given, _f(d.expected)) for d in carried)
            out.append(line)
        return "\n".join(out)

    def to_dict(self) -> dict:
        return {"cells": [{"row": c.row, "column": c.column, "given": c.given, "expected": c.expected,
                           "verdict": c.verdict, "rule": c.rule,
                           "causes": ["%s %s" % rc for rc in c.causes]} for c in self.cells],
                "wrong": self.wrong, "follows": self.follows, "blank": self.blank}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _f(v) -> str:
    return "%.10g" % v


def _number(cell: str, where: str):
    """(value, tolerance) of one cell, or None for a blank one."""
    s = cell.strip().replace("−", "-").replace("\u2212", "-")
    if s in _BLANK:
        return None
    if "≈" in s:
        exact, approx = (p.strip() for p in s.split("≈", 1))
        try:
            return _number(exact, where)
        except InputError:
            s = approx
    m = _DECIMAL.match(s)
    if m and (m.group(1) or m.group(2)):
        digits = len(m.group(2) or "")
        value = float(s)
        tol = 10.0 ** (int(m.group(3) or 0) - digits)
        return value, tol * (1 + 1e-9) + 1e-300
    try:
        e = parse_expr(s)
    except ParseError as exc:
        raise InputError("%s: cannot read %r (%s)" % (where, cell, exc)) from None
    if e.free_symbols:
        raise InputError("%s: %r uses %s; write a number or an expression of numbers"
                         % (where, cell, ", ".join(sorted(str(v) for v in e.free_symbols))))
    v = sp.N(e, 30)
    if not v.is_real:
        raise InputError("%s: %r is not a real number" % (where, cell))
    value = float(v)
    return value, 1e-12 * max(abs(value), 1e-300)


def _near(a, b, tol) -> bool:
    return abs(a - b) <= tol + 1e-12 * abs(b)


def check_table(expr, table, wrt, at) -> Report:
    """Check a student's table (Markdown or CSV text, in symgrad's layout) of ``expr`` at ``at``.

    Raises InputError for a table without a ξ column or an unreadable cell, naming it.
    """
    p = at_point(expr, wrt, at)
    g = p.graph
    rows, header = read_table(table)
    names = {n.name: n for n in g.nodes}
    into, reads = {}, p.consumers()
    for e in p.edges:
        into.setdefault(e.node, []).append(e)
    active = set(p.wrt)
    for n in g.nodes:
        if any(e.arg in active for e in into.get(n.symbol, ())):
            active.add(n.symbol)
    shown = {n.symbol: [e for e in into.get(n.symbol, ()) if e.arg in active] or into.get(n.symbol, [])
             for n in g.nodes}
    tcols = {"dξ/d%s" % w.name: w for w in p.wrt}
    given, blank = {}, 0  # (row, column) -> (value, tol, text)
    for name, cells in rows:
        if name not in names:
            raise InputError("the table has a row %r, but the graph's nodes are ξ1 … ξ%d" % (name, len(g.nodes)))
        n = names[name]
        for col, cell in cells.items():
            if col == "partial value":
                parts = [c for c in cell.split(";")] if cell.strip() else []
                edges = shown[n.symbol]
                if parts and len(parts) != len(edges):
                    raise InputError("%s partial value: %d values given, the node has %d partials (%s); separate "
                                     "them with ;" % (name, len(parts), len(edges), ", ".join(e.label for e in edges)))
                for e, part in zip(edges, parts):
                    got = _number(part, "%s partial value" % name)
                    blank += got is None
                    if got is not None:
                        given[(name, e.label)] = got + (part.strip(),)
            elif col in ("value", "dL/dξ") or col in tcols:
                got = _number(cell, "%s %s" % (name, col))
                blank += got is None
                if got is not None:
                    given[(name, col)] = got + (cell.strip(),)
    verdicts: dict = {}
    out = []

    def student(key, truth):
        return given[key][0] if key in given else float(truth)

    def judge(key, column, truth, rule, deps):
        if key not in given:
            return
        value, tol, txt = given[key]
        truth = float(truth)
        if _near(value, truth, tol):
            verdict, causes = "right", ()
        elif rule is not None and _near(value, rule, tol + 1e-6 * abs(rule)):
            causes = tuple(dict.fromkeys(c for d in deps for c in verdicts.get(d, (None, ()))[1]))
            verdict = "follows" if causes else "wrong"
            causes = causes if causes else ((key[0], column),)
        else:
            verdict, causes = "wrong", ((key[0], column),)
        verdicts[key] = (verdict, causes if verdict != "right" else ())
        out.append(Cell(key[0], column, txt, truth, verdict, rule, causes if verdict == "follows" else ()))

    sym_name = {n.symbol: n.name for n in g.nodes}

    def val(s):
        return student((sym_name[s], "value"), p.values[s]) if s in sym_name else float(p.values[s])

    def part(e):
        return student((sym_name[e.node], e.label), e.value)

    for n in g.nodes:
        deps = [(sym_name[a], "value") for a in n.args if a in sym_name]
        rule = float(sp.N(n.expr.xreplace({a: sp.Float(val(a), 30) for a in n.args}), 20))
        judge((n.name, "value"), "value", p.values[n.symbol], rule, deps)
    for n in g.nodes:
        for e in shown[n.symbol]:
            r = float(sp.N(e.partial.xreplace({a: sp.Float(val(a), 30) for a in n.args}), 20))
            judge((n.name, e.label), "partial value", e.value, r, deps=[(sym_name[a], "value") for a in n.args
                                                                          if a in sym_name])
    for col, w in tcols.items():
        for n in g.nodes:
            rule, deps = 0.0, []
            for e in into.get(n.symbol, ()):
                t = 1.0 if e.arg == w else 0.0 if e.arg not in sym_name else \
                    student((sym_name[e.arg], col), p.tangents[w][e.arg])
                rule += part(e) * t
                deps += [(n.name, e.label)] + ([(sym_name[e.arg], col)] if e.arg in sym_name else [])
            judge((n.name, col), col, p.tangents[w][n.symbol], rule, deps)
    for n in reversed(g.nodes):
        if n.symbol == g.output:
            rule, deps = 1.0, []
        else:
            rule, deps = 0.0, []
            for e in reads.get(n.symbol, ()):
                rule += student((sym_name[e.node], "dL/dξ"), p.adjoints[e.node]) * part(e)
                deps += [(sym_name[e.node], "dL/dξ"), (sym_name[e.node], e.label)]
        judge((n.name, "dL/dξ"), "dL/dξ", p.adjoints[n.symbol], rule, deps)
    return Report(tuple(out), blank)
