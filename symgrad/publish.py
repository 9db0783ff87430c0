r"""Tables for people: aligned text that fits a width, Markdown, HTML.

A table is handed over as a ``Sheet``: header cells, rows of cells and footer lines. A
``Cell`` has its one-line ``text`` (Markdown, the one-line text grid), its natural line
``breaks`` (``1/(1 + exp(-9))`` then ``≈ 0.9998766054``: wrapped text, HTML) and its LaTeX
lines (``symgrad.publish_latex``). ``symgrad.tables.Table`` and
``symgrad.mattables.MatrixTable`` build sheets; the renderers here know nothing of
derivatives.

- Text (``render_text``): one line per row when it fits ``width``; else the cells are wrapped
  in narrower columns; when even that leaves a column under 16 characters, one block
  per row (the vertical layout). Every line fits ``width`` (0: no limit), counted in
  terminal cells (a CJK character is two).
- Markdown (``render_markdown``): every cell escaped (``escape_markdown``) so that renderers keep
  ``*`` and ``_`` (multiplications, subscripts) and ``|`` inside a cell;
  ``unescape_markdown`` gives the text back (``symgrad.readtable`` reads it so).
- HTML (``render_html``): every piece of text escaped, a few lines of CSS scoped to the
  table (borders, left-aligned cells, footer and notes on lines of their own).

>>> s = Sheet((Cell("ξ"), Cell("value")), ((Cell("ξ1"), Cell("2*x_1")),), (Line((Cell("L = ξ1"),)),))
>>> print(render_markdown(s))
| ξ | value |
|---|---|
| ξ1 | 2\*x\_1 |
<BLANKLINE>
L = ξ1
>>> unescape_markdown(escape_markdown("2*x_1 | <b>")) == "2*x_1 | <b>"
True
"""

from __future__ import annotations

import html
import re
import shutil
import sys
import unicodedata
from typing import NamedTuple

from .errors import InputError

__all__ = ["Cell", "Line", "Sheet", "render_text", "render_markdown", "render_html", "escape_markdown",
           "unescape_markdown", "visible", "display_width", "wrap", "default_width", "check_width", "LAYOUTS",
           "DEFAULT_WIDTH", "MIN_COLUMN"]

DEFAULT_WIDTH = 100  # str(table) when standard output is not a terminal
MIN_COLUMN = 16  # a wrapped grid gives every column at least this much (or its natural width)
MIN_WIDTH = 10  # the narrowest width a table is laid out for
LAYOUTS = ("auto", "grid", "vertical")


class Cell(NamedTuple):
    """One cell: ``text`` on one line, ``breaks`` its natural lines (empty: just ``text``),
    ``tex`` its LaTeX lines (empty: ``text`` escaped for LaTeX)."""

    text: str
    breaks: tuple = ()
    tex: tuple = ()

    @property
    def lines(self) -> tuple:
        return self.breaks or (self.text,)


class Line(NamedTuple):
    """A footer line: items joined by "; " (one per line where the width needs it); ``note``
    for a remark (the kink convention of a node) rather than a result."""

    items: tuple
    note: bool = False


class Sheet(NamedTuple):
    header: tuple  # Cells
    rows: tuple  # tuples of Cells, one per column
    footer: tuple = ()  # Lines


# -- characters ------------------------------------------------------------------------------

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(s: str) -> str:
    r"""``s`` with line breaks, control and format characters (bidi overrides, zero-width
    spaces, lone surrogates) written as escapes, so that a name cannot break a table's lines
    or reorder its columns.

    >>> visible("a\nb\u202e")
    'a\\nb\\u202e'
    """
    s = str(s)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            o = ord(ch)
            out.append(_NAMED.get(ch) or ("\\x%02x" % o if o < 0x100 else "\\u%04x" % o if o < 0x10000
                                          else "\\U%08x" % o))
        else:
            out.append(ch)
    return "".join(out)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(s: str) -> int:
    """Terminal cells ``s`` takes: wide (CJK, emoji) characters two, combining marks none."""
    return len(s) if s.isascii() else sum(_char_width(ch) for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * (width - display_width(s))


def _cut(word: str, width: int):
    """The longest head of ``word`` that fits ``width`` (at least one character), and the rest."""
    used = 0
    for k, ch in enumerate(word):
        used += _char_width(ch)
        if used > width and k:
            return word[:k], word[k:]
    return word, ""


def wrap(s: str, width: int, rest: int | None = None) -> list:
    """``s`` in lines of at most ``width`` cells (``rest`` for the lines after the first),
    broken at spaces (runs of them collapse), a word longer than a line broken inside.

    >>> wrap("1 - tanh(b + w*x)**2", 10)
    ['1 - tanh(b', '+ w*x)**2']
    >>> wrap("abcdefghij", 4)
    ['abcd', 'efgh', 'ij']
    """
    rest = width if rest is None else rest
    if display_width(s) <= width:
        return [s]
    lines, cur = [], ""
    for word in s.split():
        limit = width if not lines else rest
        cand = word if not cur else cur + " " + word
        if display_width(cand) <= limit:
            cur = cand
            continue
        if cur:
            lines.append(cur)
            cur, limit = "", rest
        while display_width(word) > limit:
            head, word = _cut(word, limit)
            lines.append(head)
            limit = rest
        cur = word
    if cur or not lines:
        lines.append(cur)
    return lines


# -- text ----------------------------------------------------------------------------------------

def default_width() -> int:
    """The width ``str(table)`` fits: the terminal's when standard output is one, else 100."""
    try:
        if sys.stdout is not None and sys.stdout.isatty():
            return max(MIN_WIDTH, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)
    except (AttributeError, ValueError, OSError):
        pass
    return DEFAULT_WIDTH


def check_width(width, layout="auto") -> int:
    """``width`` as an int (None: ``default_width()``; 0: no limit); InputError for others."""
    if layout not in LAYOUTS:
        raise InputError("layout must be one of %s, got %r" % (", ".join(LAYOUTS), layout))
    if width is None:
        return default_width()
    if isinstance(width, bool) or not hasattr(width, "__index__"):
        raise InputError("width must be a whole number of characters (0 for no limit), got %r" % (width,))
    width = width.__index__()
    if width != 0 and width < MIN_WIDTH:
        raise InputError("width must be 0 (no limit) or at least %d characters, got %d" % (MIN_WIDTH, width))
    return width


def _map_sheet(sheet: Sheet, f) -> Sheet:
    def c(x):
        return Cell(f(x.text), tuple(f(b) for b in x.breaks), x.tex)
    return Sheet(tuple(c(h) for h in sheet.header), tuple(tuple(c(x) for x in r) for r in sheet.rows),
                 tuple(Line(tuple(c(i) for i in ln.items), ln.note) for ln in sheet.footer))


def _cell_lines(c: Cell, width: int) -> list:
    if width <= 0 or display_width(c.text) <= width:
        return [c.text]
    out = []
    for part in c.lines:
        out += wrap(part, width)
    return out


def _allocate(natural, floors, avail):
    """Column widths no wider than natural, no narrower than the floors, summing to at most
    ``avail``: the widest columns give way first."""
    lo, hi = 0, max(natural)
    while lo < hi:  # the largest cap c with sum(max(floor, min(natural, c))) <= avail
        mid = (lo + hi + 1) // 2
        if sum(max(f, min(n, mid)) for n, f in zip(natural, floors)) <= avail:
            lo = mid
        else:
            hi = mid - 1
    widths = [max(f, min(n, lo)) for n, f in zip(natural, floors)]
    spare = avail - sum(widths)
    for k in sorted(range(len(widths)), key=lambda k: natural[k] - widths[k], reverse=True):
        if spare <= 0:
            break
        more = min(spare, natural[k] - widths[k])
        widths[k] += more
        spare -= more
    return widths


def _grid(sheet: Sheet, widths, wrapped: bool) -> list:
    def block(cells):
        cols = [_cell_lines(c, w if wrapped else 0) for c, w in zip(cells, widths)]
        return ["  ".join(_pad(col[k] if k < len(col) else "", w) for col, w in zip(cols, widths)).rstrip()
                for k in range(max(len(col) for col in cols))]
    out = block(sheet.header) + ["  ".join("─" * w for w in widths)]
    blocks = [block(r) for r in sheet.rows]
    tall = any(len(b) > 1 for b in blocks)
    for k, b in enumerate(blocks):
        if tall and k:
            out.append("")
        out += b
    return out


def _vertical(sheet: Sheet, width: int) -> list:
    labels = [h.text for h in sheet.header[1:]]
    label_w = max([display_width(t) for t in labels] + [0])
    inline = width == 0 or width - (label_w + 4) >= max(MIN_COLUMN, width // 3)
    out = []
    for r in sheet.rows:
        if out:
            out.append("")
        out += _cell_lines(r[0], width)
        for label, c in zip(labels, r[1:]):
            if inline:
                lines = _cell_lines(c, width - label_w - 4 if width else 0)
                out.append(("  " + _pad(label, label_w) + "  " + lines[0]).rstrip())
                out += [" " * (label_w + 4) + ln for ln in lines[1:]]
            else:
                out += ["  " + ln for ln in wrap(label, width - 2)]
                out += ["    " + ln for ln in _cell_lines(c, width - 4)]
    return out


def _footer(sheet: Sheet, width: int) -> list:
    out = []
    for line in sheet.footer:
        joined = "; ".join(i.text for i in line.items)
        if width == 0 or display_width(joined) <= width:
            out.append(joined)
            continue
        for item in line.items:
            first, *more = wrap(item.text, width, width - 4)
            out += [first] + ["    " + m for m in more]
    return out


def render_text(sheet: Sheet, width: int | None = None, layout: str = "auto", translate=None) -> str:
    """Aligned text: a header, a ─ rule and one line per row, then the footer.

    ``width`` (None: ``default_width()``, 0: no limit) bounds every line. ``layout``
    "auto" keeps the grid while each column can have at least ``MIN_COLUMN`` characters
    (wrapping cells at spaces where they must), else writes one block per row (the node,
    then one labelled line per column); "grid" and "vertical" choose. ``translate`` is
    applied to every piece of text first (an ASCII spelling for a stream without Unicode).
    """
    width = check_width(width, layout)
    sheet = _map_sheet(sheet, visible if translate is None else lambda s: translate(visible(s)))
    if not sheet.rows:
        return "\n".join(_footer(sheet, width))
    natural = [max(display_width(c.text) for c in col) for col in zip(sheet.header, *sheet.rows)]
    avail = width - 2 * (len(natural) - 1)
    if layout != "vertical" and (width == 0 or sum(natural) <= avail):
        body = _grid(sheet, natural, wrapped=False)
    else:
        widths = None
        for floor in ((MIN_COLUMN,) if layout == "auto" else (MIN_COLUMN, 8, 4, 2)) if layout != "vertical" else ():
            floors = [min(n, floor) for n in natural]
            if sum(floors) <= avail:
                widths = _allocate(natural, floors, avail)
                break
        body = _grid(sheet, widths, wrapped=True) if widths else _vertical(sheet, width)
    return "\n".join(body + [""] + _footer(sheet, width))


# -- Markdown ------------------------------------------------------------------------------------

_MD_SPECIAL = frozenset("\\`*_|<$~&")
_MD_UNESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def escape_markdown(s: str) -> str:
    r"""One line of text for a Markdown (GFM) table cell, shown as written: ``*``, ``_``, ``|``,
    ````` ` `````, ``<``, ``$``, ``~``, ``&`` and backslashes escaped, and the ``(`` of ``](`` (no link).

    >>> print(escape_markdown("-3*exp(-9)/(1 + x_1)**2 | [a](b)"))
    -3\*exp(-9)/(1 + x\_1)\*\*2 \| [a]\(b)
    """
    out, prev = [], ""
    for ch in s:
        out.append("\\" + ch if ch in _MD_SPECIAL or ch == "(" and prev == "]" else ch)
        prev = ch
    return "".join(out)


def unescape_markdown(s: str) -> str:
    r"""The text of an escaped Markdown cell: a backslash before ASCII punctuation dropped
    (CommonMark's rule), so ``unescape_markdown(escape_markdown(s)) == s``.

    >>> unescape_markdown(r"2\*x\_1 \| \\")
    '2*x_1 | \\'
    """
    return _MD_UNESCAPE.sub(r"\1", s)


def _md(s: str) -> str:
    return escape_markdown(visible(s))


def render_markdown(sheet: Sheet) -> str:
    """A GitHub-flavoured Markdown table, then each footer line as a paragraph of its own."""
    lines = ["| " + " | ".join(_md(h.text) for h in sheet.header) + " |", "|" + "---|" * len(sheet.header)]
    lines += ["| " + " | ".join(_md(c.text) for c in r) + " |" for r in sheet.rows]
    for line in sheet.footer:
        lines += ["", "; ".join(_md(i.text) for i in line.items)]
    return "\n".join(lines)


# -- HTML ------------------------------------------------------------------------------------------

CSS = ("div.symgrad-table table{border-collapse:collapse;margin:.5em 0}"
       "div.symgrad-table table th,div.symgrad-table table td{border:1px solid #bbb;padding:.3em .6em;"
       "text-align:left;vertical-align:top;unicode-bidi:isolate}"
       "div.symgrad-table table th{background:#f2f2f2;font-weight:600}"
       "div.symgrad-table table td{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:90%}"
       "div.symgrad-table .approx{color:#666}"
       "div.symgrad-table p{margin:.2em 0;text-align:left;font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;"
       "font-size:90%;unicode-bidi:isolate}"
       "div.symgrad-table p.note{color:#555;font-style:italic}")


def _h(s: str) -> str:
    return html.escape(visible(s), quote=True)


def _html_cell(c: Cell) -> str:
    parts = ['<span class="approx">%s</span>' % _h(p) if p.startswith("≈ ") else _h(p) for p in c.lines]
    return "<br>".join(parts)


def render_html(sheet: Sheet) -> str:
    """An HTML table in a ``<div class="symgrad-table">`` with its CSS; footer lines and notes
    as paragraphs. Every piece of text is escaped here."""
    head = "".join("<th>%s</th>" % _h(h.text) for h in sheet.header)
    body = "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % _html_cell(c) for c in r) for r in sheet.rows)
    foot = "".join('<p%s>%s</p>' % (' class="note"' if ln.note else "", _h("; ".join(i.text for i in ln.items)))
                   for ln in sheet.footer)
    return ('<div class="symgrad-table"><style>%s</style><table><thead><tr>%s</tr></thead><tbody>%s</tbody>'
            '</table>%s</div>' % (CSS, head, body, foot))
