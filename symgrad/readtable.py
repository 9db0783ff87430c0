r"""Read a derivative table back from Markdown or CSV text in the layout ``symgrad table`` prints.

Markdown cells may escape ``|``, ``*``, ``_`` or any other ASCII punctuation with a backslash
(symgrad's own Markdown does: ``symgrad.publish.escape_markdown``); headers are matched
loosely (``dxi/dw`` is ``dξ/dw``, ``dL/dxi`` is ``dL/dξ``, ``xi`` is ``ξ``). Returns the rows
as ``(name, {column: cell})`` and the header.

>>> rows, head = read_table("| ξ | value | dξ/dw |\n|---|---|---|\n| ξ1 | 2\\*3 | -1 |\n\nL = ...")
>>> rows, head
([('ξ1', {'value': '2*3', 'dξ/dw': '-1'})], ['ξ', 'value', 'dξ/dw'])
>>> read_table("xi,value,dxi/dw\nxi1,6,-1\n")[0]
[('ξ1', {'value': '6', 'dξ/dw': '-1'})]
"""

from __future__ import annotations

import csv
import io
import re

from .errors import InputError
from .publish import unescape_markdown

__all__ = ["read_table", "column_name"]

_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def column_name(header: str) -> str:
    """The canonical name of a header (``dxi/dw`` → ``dξ/dw``, ``Value`` → ``value``)."""
    h = " ".join(header.replace("\\", "").split()).replace("xi", "ξ").replace("Xi", "ξ")
    h = h.replace(" / ", "/").replace("∂", "d")
    low = h.lower()
    if low in ("value", "partial value", "ξ", "definition", "local partial"):
        return low
    return h


def _unescape(cell: str) -> str:
    return unescape_markdown(cell.strip())


def _markdown(lines):
    out = []
    for line in lines:
        s = line.strip()
        if not s.startswith("|"):
            if out:
                break
            continue
        cells = _CELL_SPLIT.split(s.strip("|") if not s.endswith("\\|") else s[1:])
        cells = [_unescape(c) for c in cells]
        if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
            continue
        out.append(cells)
    return out


def read_table(text: str):
    """``(rows, header)``: rows as ``(node name, {column: cell text})``, the ξ column left out.

    Raises InputError when there is no table or no ξ column.
    """
    lines = [ln for ln in str(text).replace("\r\n", "\n").split("\n")]
    if any(ln.strip().startswith("|") for ln in lines):
        grid = _markdown(lines)
    else:
        grid = [r for r in csv.reader(io.StringIO("\n".join(ln for ln in lines if ln.strip()))) if r]
        grid = [[c.strip() for c in r] for r in grid]
    if len(grid) < 2:
        raise InputError("no table found: expected a Markdown table (| ξ | value | ... |) or CSV with a header row")
    header = [column_name(h) for h in grid[0]]
    if "ξ" not in header:
        raise InputError("the table has no ξ column (its headers: %s); the first column names the nodes ξ1, ξ2, ..."
                         % ", ".join(grid[0]))
    key = header.index("ξ")
    rows = []
    for k, r in enumerate(grid[1:], 2):
        if len(r) != len(header):
            raise InputError("table row %d has %d cells, the header %d" % (k, len(r), len(header)))
        name = column_name(r[key]).replace(" ", "")
        if not re.fullmatch(r"ξ\d+", name):
            if name.startswith(("L", "dL")):
                break  # a footer line in CSV
            raise InputError("table row %d names %r; rows are named ξ1, ξ2, ..." % (k, r[key]))
        rows.append((name, {h: c for h, c in zip(header, r) if h != "ξ"}))
    return rows, header
