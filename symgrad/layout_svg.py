"""A layered drawing of a small DAG as SVG, in pure Python: boxes of text joined by labelled arrows.

Layers are longest-path ranks from the sources, drawn left to right; the order inside a
layer is improved by a few barycentre sweeps (fewer crossings); each gap between layers is
as wide as the widest edge label it holds, and labels in one gap are pushed apart so that
none overlaps another. Text is measured for a monospace font, so nothing is cut or
overlaps at any zoom. Every piece of text is XML-escaped here and nowhere else.

>>> svg = draw([Box("a", [("a", "name")]), Box("b", [("b = 2*a", "")])], [Arrow("a", "b", ["∂b/∂a = 2"])])
>>> import xml.etree.ElementTree as ET
>>> [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
['∂b/∂a = 2', 'a', 'b = 2*a']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

__all__ = ["Box", "Arrow", "draw", "layers", "CHAR_W", "LINE_H"]

CHAR_W, LINE_H, FONT = 7.3, 16, 12  # px per character of a 12 px monospace font; px per line
PAD, GAP_Y, MARGIN = 8, 26, 24
STYLES = {"name": 'font-weight="bold"', "value": 'fill="#333"', "adjoint": 'fill="#b3261e"',
          "tangent": 'fill="#1a5fb4"', "note": 'fill="#666" font-style="italic"', "": ""}


@dataclass
class Box:
    """A node: lines of (text, style) where style is a key of STYLES; ``fill``/``stroke`` colours."""

    id: str
    lines: list
    fill: str = "#ffffff"
    stroke: str = "#444444"
    double: bool = False  # a second border (the output)
    title: str = ""  # a tooltip with the full text
    x: float = 0.0
    y: float = 0.0

    @property
    def width(self) -> float:
        return max(len(t) for t, _ in self.lines) * CHAR_W + 2 * PAD

    @property
    def height(self) -> float:
        return len(self.lines) * LINE_H + 2 * PAD - 4


@dataclass
class Arrow:
    """An edge from ``src`` to ``dst`` (data flow: an argument into its node); ``backward`` puts
    the arrowhead at ``src`` (the derivative graph points from a node to its argument)."""

    src: str
    dst: str
    lines: list = field(default_factory=list)
    color: str = "#555555"
    backward: bool = False


def layers(ids, arrows) -> dict:
    """{id: rank}: 0 for sources, else one more than the highest rank among its predecessors."""
    preds: dict = {i: [] for i in ids}
    for a in arrows:
        preds[a.dst].append(a.src)
    rank: dict = {}
    for i in ids:  # ids come in topological order
        rank[i] = 1 + max((rank[p] for p in preds[i]), default=-1)
    return rank


def _order(boxes, arrows, rank) -> list:
    """The boxes of each layer, in an order with few crossings (barycentre sweeps both ways)."""
    cols = [[] for _ in range(max(rank.values()) + 1)]
    for b in boxes:
        cols[rank[b.id]].append(b.id)
    nbrs: dict = {b.id: [] for b in boxes}
    for a in arrows:
        nbrs[a.src].append(a.dst)
        nbrs[a.dst].append(a.src)
    for sweep in range(6):
        pos = {i: k for col in cols for k, i in enumerate(col)}
        seq = range(1, len(cols)) if sweep % 2 == 0 else range(len(cols) - 2, -1, -1)
        for c in seq:
            side = c - 1 if sweep % 2 == 0 else c + 1
            def bary(i, c=c, side=side):
                near = [pos[n] for n in nbrs[i] if rank[n] == side]
                return sum(near) / len(near) if near else pos[i]
            cols[c].sort(key=bary)
            pos.update({i: k for k, i in enumerate(cols[c])})
    return cols


def _bezier(x0, y0, x1, y1, t):
    mx = (x0 + x1) / 2
    pts = [(x0, y0), (mx, y0), (mx, y1), (x1, y1)]
    u = 1 - t
    return (u ** 3 * pts[0][0] + 3 * u * u * t * pts[1][0] + 3 * u * t * t * pts[2][0] + t ** 3 * pts[3][0],
            u ** 3 * pts[0][1] + 3 * u * u * t * pts[1][1] + 3 * u * t * t * pts[2][1] + t ** 3 * pts[3][1])


def draw(boxes, arrows, title: str = "", notes=()) -> str:
    """SVG text of ``boxes`` joined by ``arrows`` (boxes in topological order), with a title
    line above and note lines below."""
    by_id = {b.id: b for b in boxes}
    rank = layers([b.id for b in boxes], arrows)
    cols = _order(boxes, arrows, rank)
    label_w = [0.0] * len(cols)  # the widest label whose gap is just left of each layer
    for a in arrows:
        if a.lines:
            label_w[rank[a.dst]] = max(label_w[rank[a.dst]], max(len(t) for t in a.lines) * CHAR_W + 12)
    col_w = [max(by_id[i].width for i in col) for col in cols]
    col_h = [sum(by_id[i].height for i in col) + GAP_Y * (len(col) - 1) for col in cols]
    top = MARGIN + (2 * LINE_H if title else 0)
    height = max(col_h)
    x, col_x = MARGIN, []
    for c, col in enumerate(cols):
        x += max(label_w[c] + 24, 48) if c else 0
        col_x.append(x)
        y = top + (height - col_h[c]) / 2
        for i in col:
            b = by_id[i]
            b.x, b.y = x + (col_w[c] - b.width) / 2, y
            y += b.height + GAP_Y
        x += col_w[c]
    width = x + MARGIN
    labels = []  # (gap, y, x, arrow)
    paths = []
    for a in arrows:
        s, d = by_id[a.src], by_id[a.dst]
        x0, y0, x1, y1 = s.x + s.width, s.y + s.height / 2, d.x, d.y + d.height / 2
        paths.append('<path d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="%s" stroke-width="1.3" '
                     'marker-%s="url(#head%s)"/>' % (x0, y0, (x0 + x1) / 2, y0, (x0 + x1) / 2, y1, x1, y1, a.color,
                                                    "start" if a.backward else "end", _mid(a.color)))
        if a.lines:
            gap_x = col_x[rank[a.dst]] - max(label_w[rank[a.dst]] + 24, 48) / 2
            lo, hi = 0.0, 1.0  # where the curve crosses the middle of the gap
            for _ in range(30):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if _bezier(x0, y0, x1, y1, mid)[0] < gap_x else (lo, mid)
            labels.append([rank[a.dst], _bezier(x0, y0, x1, y1, lo)[1], gap_x, a])
    bottom = top + height
    for gap in sorted({g for g, *_ in labels}):  # push apart the labels of one gap
        mine = sorted((lab for lab in labels if lab[0] == gap), key=lambda lab: lab[1])
        last = -1e9
        for lab in mine:
            h = len(lab[3].lines) * LINE_H
            lab[1] = max(lab[1], last + h / 2 + 2)
            last = lab[1] + h / 2
            bottom = max(bottom, last)
    note_y = bottom + 2 * LINE_H
    total_h = note_y + len(notes) * LINE_H + MARGIN
    width = max([width] + [len(n) * CHAR_W + 2 * MARGIN for n in (title, *notes)])
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="%d">' % (width, total_h, width, total_h, FONT),
           '<defs>%s</defs>' % "".join(
               '<marker id="head%s" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
               'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>' % (_mid(c), c)
               for c in sorted({a.color for a in arrows})),
           '<rect width="100%" height="100%" fill="white"/>']
    if title:
        out.append('<text x="%d" y="%d" font-weight="bold">%s</text>' % (MARGIN, MARGIN + LINE_H, escape(title)))
    out += paths
    for gap, y, gx, a in labels:
        w = max(len(t) for t in a.lines) * CHAR_W + 8
        h = len(a.lines) * LINE_H
        out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="white" fill-opacity="0.9" '
                   'stroke="%s" stroke-width="0.5" rx="3"/>' % (gx - w / 2, y - h / 2, w, h, a.color))
        for k, t in enumerate(a.lines):
            out.append('<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">%s</text>'
                       % (gx, y - h / 2 + (k + 1) * LINE_H - 4, a.color, escape(t)))
    for b in boxes:
        out.append('<g>%s<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="6" fill=%s stroke=%s '
                   'stroke-width="%s"/>' % ("<title>%s</title>" % escape(b.title) if b.title else "", b.x, b.y,
                                             b.width, b.height, quoteattr(b.fill), quoteattr(b.stroke),
                                             "3" if b.double else "1.2"))
        for k, (t, style) in enumerate(b.lines):
            out.append('<text x="%.1f" y="%.1f" %s>%s</text>' % (b.x + PAD, b.y + PAD + (k + 1) * LINE_H - 4,
                                                                 STYLES.get(style, ""), escape(t)))
        out.append("</g>")
    for k, n in enumerate(notes):
        out.append('<text x="%d" y="%.1f" fill="#444">%s</text>' % (MARGIN, note_y + k * LINE_H, escape(n)))
    out.append("</svg>")
    return "\n".join(out)


def _mid(color: str) -> str:
    return "".join(ch for ch in color if ch.isalnum())
