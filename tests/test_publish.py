"""Tables fit for publication: LaTeX that pdflatex compiles and that fits the page, Markdown that
renderers show as written, well-formed escaped HTML, text that fits a width, and the notebook reprs."""

import html.parser
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings, strategies as st

import symgrad as sg
from symgrad.cli import main
from symgrad.publish import default_width, display_width, escape_markdown, unescape_markdown
from symgrad.publish_latex import document
from symgrad.readtable import read_table

x, y, w, b = sp.symbols("x y w b")
LOGISTIC = -y * sp.log(1 / (1 + sp.exp(-w * x)))
POINT = {x: 3, y: 1, w: 3}
PDFLATEX = shutil.which("pdflatex")
needs_pdflatex = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
HOSTILE = ["<b>&amp;</b>", "\\frac{1}{2}_^$", "a}{b", "数据", "🙂", "é", "a\nb", "α", "x\u202e", "%#~"]


@pytest.fixture(scope="module")
def logistic():
    return sg.table(LOGISTIC, wrt=w, at=POINT)


@pytest.fixture(scope="module")
def long_table():
    e = x
    for _ in range(10):  # 30 nodes: w*e, + b, tanh
        e = sp.tanh(w * e + b)
    return sg.table(e, wrt=[w, b], at={x: 1, w: sp.Rational(1, 2), b: sp.Rational(1, 3)})


@pytest.fixture(scope="module")
def wide_table():
    ws, xs = sp.symbols("w1:5"), sp.symbols("x1:5")
    e = sp.log(1 + sp.exp(-(sum(a * c for a, c in zip(ws, xs)) + b)))
    at = {**{a: sp.Rational(k + 1, 4) for k, a in enumerate(ws)}, **{c: k - 1 for k, c in enumerate(xs)},
          b: sp.Rational(1, 2)}
    return sg.table(e, wrt=list(ws) + [b], at=at)


@pytest.fixture(scope="module")
def hostile_table():
    names = [sp.Symbol(n) for n in HOSTILE]
    e = sp.tanh(sum(s * x for s in names)) ** 2 + sg.relu(names[0])
    return sg.table(e, wrt=names[:3], at={x: 2, **{s: sp.Rational(1, 10) for s in names}})


@pytest.fixture(scope="module")
def matrix_table():
    B = sp.Symbol("B", integer=True, positive=True)
    X, W = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("W", 2, 2)
    net = sp.Trace((X * W).applyfunc(sp.tanh).T * (X * W).applyfunc(sp.tanh))
    return sg.table(net, wrt=[W], at={X: np.ones((3, 2)), W: np.array([[1.0, 2.0], [0.5, -1.0]])})


# -- LaTeX ---------------------------------------------------------------------------------------

def _braces_balance(tex):
    body = re.sub(r"\\[{}]", "", tex)
    depth = 0
    for ch in body:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    return depth == 0


def _pdflatex(tmp_path, name, tex, runs=2):
    """Compile ``tex`` (twice: longtable settles its column widths on the second run); the log."""
    path = tmp_path / (name + ".tex")
    path.write_text(tex, encoding="ascii")
    for _ in range(runs):
        done = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", path.name], cwd=tmp_path,
                              capture_output=True, text=True, errors="replace", timeout=120)
        log = (tmp_path / (name + ".log")).read_text(errors="replace")
        assert done.returncode == 0, log[-3000:]
    assert (tmp_path / (name + ".pdf")).stat().st_size > 1000
    assert not re.search(r"^! ", log, re.M), log[-3000:]
    return log


@pytest.mark.parametrize("f", [sg.sigmoid(x) ** 2, sg.relu(x) ** 2, sg.softplus(x) ** 3,
                               sg.leaky_relu(x, sp.Rational(1, 10)) ** 2])
@pytest.mark.parametrize("at", [sp.Rational(1, 2), 0])
def test_latex_of_powers_of_activations(f, at, tmp_path):
    t = sg.table(f, wrt=x, at={x: at})
    tex = t.to_latex()
    assert tex.isascii() and _braces_balance(tex) and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\right)^{" in tex and r"$dL/dx = " in tex
    if t.notes:  # relu and leaky_relu at their kink say which convention they follow
        assert "kink convention" in tex
    if PDFLATEX and at == 0:
        _pdflatex(tmp_path, "activation", document(tex), runs=1)


@needs_pdflatex
def test_pdflatex_compiles_the_lecture_table_and_it_fits(logistic, tmp_path):
    tex = logistic.to_latex(standalone=True)
    log = _pdflatex(tmp_path, "logistic", tex)
    assert "Overfull" not in log  # nothing sticks out of the page
    assert r"\begin{tabular}" in tex and r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"\approx 0.0001234021897" in tex and r"\approx -0.000370183728" in tex  # decimals beside exact
    assert r"$\xi_{1}$ & $\xi_{1} = - w x$ & $\frac{\partial \xi_{1}}{\partial w} = - x$ & $-9$ & $-3$ &" in tex


@needs_pdflatex
def test_pdflatex_compiles_a_30_row_table_as_a_longtable(long_table, tmp_path):
    tex = long_table.to_latex(standalone=True)
    assert len(long_table.rows) == 30 and r"\begin{longtable}" in tex and r"\endhead" in tex
    log = _pdflatex(tmp_path, "long", tex, runs=3)
    assert "Overfull" not in log
    assert r"$L = \xi_{30} = " in tex


@needs_pdflatex
def test_pdflatex_compiles_a_wide_table_split_in_parts(wide_table, tmp_path):
    tex = wide_table.to_latex(standalone=True)
    assert "Part 1 of 2" in tex and "Part 2 of 2" in tex
    assert tex.count(r"$\xi_{8}$ & ") == 2  # the ξ column is repeated in each part
    log = _pdflatex(tmp_path, "wide", tex)
    assert "Overfull" not in log
    for k in range(1, 5):  # every tangent column and the whole gradient are there
        assert r"$d\xi/dw_{%d}$" % k in tex and r"$dL/dw_{%d} = " % k in tex


@needs_pdflatex
def test_pdflatex_compiles_hostile_names_and_matrix_tables(hostile_table, matrix_table, tmp_path):
    for layout in ("auto", "portrait", "landscape", "split"):
        tex = hostile_table.to_latex(layout=layout)
        assert tex.isascii() and _braces_balance(tex)
        _pdflatex(tmp_path, "hostile_" + layout, document(tex), runs=1)
    tex = matrix_table.to_latex(standalone=True)
    assert "Overfull" not in _pdflatex(tmp_path, "matrix", tex)
    assert matrix_table._repr_latex_() == matrix_table.to_latex()


def test_latex_layouts(logistic, wide_table):
    small = sg.table(w * x, wrt=w, at={x: 2, w: 1}).to_latex()
    assert r"\begin{tabular}" in small and "landscape" not in small.split("\n", 1)[1] and "Part" not in small
    assert r"\begin{landscape}" in logistic.to_latex(layout="landscape")
    assert "Part 1 of" in logistic.to_latex(layout="split")
    assert "Part" not in wide_table.to_latex(layout="portrait")  # forced: one table, long columns wrap
    with pytest.raises(sg.InputError, match="layout must be one of"):
        logistic.to_latex(layout="sideways")


# -- Markdown ------------------------------------------------------------------------------------

@given(st.text())
@settings(max_examples=300, deadline=None)
def test_markdown_escaping_round_trips(s):
    e = escape_markdown(s)
    assert unescape_markdown(e) == s
    for m in re.finditer(r"[*_|`<$~&]", e):  # every special character is escaped
        run = len(e[:m.start()]) - len(e[:m.start()].rstrip("\\"))
        assert run % 2 == 1, (s, e)
    assert "](" not in e.replace("\\\\", "")  # no link


def test_markdown_keeps_multiplications_and_subscripts():
    x1, w2 = sp.symbols("x_1 w_2")
    e = sp.tanh(w2 * x1) ** 2
    t = sg.table(e, wrt=w2, at={x1: 3, w2: sp.Rational(1, 2)})
    md = t.to_markdown()
    assert "tanh(w\\_2\\*x\\_1)\\*\\*2" in md and t._repr_markdown_() == md
    body = [ln for ln in md.splitlines() if ln.startswith("| ξ")][1:]
    assert all(re.search(r"(?<!\\)[*_]", ln) is None for ln in body)  # nothing a renderer would eat
    rows, header = read_table(md)  # symgrad reads its own Markdown back, cell for cell
    sheet = t._sheet(tex=False)
    assert header == [h.text for h in sheet.header]
    for (name, cells), r in zip(rows, sheet.rows):
        assert [name] + [cells[h] for h in header[1:]] == [c.text for c in r]
    report = sg.check_table(e, md, wrt=[w2], at={x1: 3, w2: sp.Rational(1, 2)})
    assert report.ok


def test_markdown_of_matrix_tables_and_hostile_names(matrix_table, hostile_table):
    md = matrix_table.to_markdown()
    assert matrix_table._repr_markdown_() == md and "v\\_W = " in md
    md = hostile_table.to_markdown()
    for line in md.splitlines():
        if line.startswith("|"):
            assert len(re.split(r"(?<!\\)\|", line)) == len(hostile_table._header()) + 2  # no stray column
    assert "\\<b>\\&amp;\\</b>" in md and "a\\\\nb" in md  # a line break shown, never taken


# -- HTML ----------------------------------------------------------------------------------------

class _Checker(html.parser.HTMLParser):
    VOID = {"br", "meta", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.tags, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, (tag, self.stack)

    def handle_data(self, data):
        self.text.append(data)


def _parse(page):
    c = _Checker()
    c.feed(page)
    c.close()
    assert not c.stack, c.stack
    return c


TAGS = {"div", "style", "table", "thead", "tbody", "tr", "th", "td", "br", "span", "p"}


def test_html_is_well_formed_with_css(logistic, matrix_table):
    for t in (logistic, matrix_table):
        page = t.to_html()
        c = _parse(page)
        assert set(c.tags) <= TAGS and c.tags.count("tr") == len(t.rows) + 1
        assert "border" in page and "text-align:left" in page and t._repr_html_() == page
    c = _parse(logistic.to_html())
    assert "L = ξ6 = -log(1/(1 + exp(-9))) ≈ 0.0001234021897; dL/dw = -3/(1 + exp(9)) ≈ -0.000370183728" in c.text


def test_html_escapes_hostile_names():
    evil = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "a&b", "x\u202e"]
    names = [sp.Symbol(n) for n in evil]
    t = sg.table(sum(s * x for s in names) + sg.relu(names[0]), wrt=names, at={x: 0, **{s: 1 for s in names}})
    c = _parse(t.to_html())
    assert set(c.tags) <= TAGS  # no script, no img: the names are text
    text = "".join(c.text)
    for n in evil[:3]:
        assert "dL/d" + n in text
    assert "\u202e" not in text and "x\\u202e" in text  # a bidi override is shown, not obeyed
    assert any(tag == "p" for tag in c.tags) and "kink convention" in text  # the note on its own line


# -- text ----------------------------------------------------------------------------------------

@given(width=st.integers(10, 180), which=st.sampled_from(["logistic", "wide", "hostile", "matrix"]),
       layout=st.sampled_from(["auto", "grid", "vertical"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_text_line_fits_the_width(request, width, which, layout):
    t = request.getfixturevalue({"logistic": "logistic", "wide": "wide_table", "hostile": "hostile_table",
                                 "matrix": "matrix_table"}[which])
    out = t.to_text(width=width, layout=layout)
    assert all(display_width(line) <= width for line in out.splitlines()), out


def test_text_without_a_limit_is_one_line_per_node(logistic):
    lines = logistic.to_text(width=0).splitlines()
    assert len(lines) == 2 + len(logistic.rows) + 2 and lines[1].startswith("──")
    assert str(logistic) == logistic.to_text()  # the terminal's width, or 100
    assert max(display_width(ln) for ln in str(logistic).splitlines()) <= default_width()


@pytest.mark.parametrize("width", [0, 24, 40, 72])
def test_vertical_layout_holds_every_value(logistic, wide_table, matrix_table, width):
    for t in (logistic, wide_table, matrix_table):
        out = t.to_text(width=width, layout="vertical")
        names = [r.name if hasattr(r, "name") else r[0] for r in t.rows]
        starts = [k for k, ln in enumerate(out.splitlines()) if ln in names]
        assert len(starts) == len(names)
        lines = out.splitlines()
        for k, (start, row) in enumerate(zip(starts, t._sheet().rows)):
            end = starts[k + 1] if k + 1 < len(starts) else len(lines)
            block = "".join("".join(lines[start:end]).split())
            for part in (p for c in row for p in c.lines):  # each value, each partial
                assert "".join(part.split()) in block, (part, block)


def test_wrapped_grid_keeps_columns(logistic):
    out = logistic.to_text(width=150)
    lines = out.splitlines()
    rule = next(k for k, ln in enumerate(lines) if ln.startswith("──"))
    assert lines[0].startswith("ξ   definition") and set(lines[rule]) <= {"─", " "}
    starts = [k for k, c in enumerate(lines[rule]) if c == "─" and (k == 0 or lines[rule][k - 1] == " ")]
    table = lines[:lines.index("L = ξ6 = -log(1/(1 + exp(-9))) ≈ 0.0001234021897; dL/dw = -3/(1 + exp(9)) ≈ "
                               "-0.000370183728")]
    assert len(starts) == 7 and all(ln[k - 1:k] in ("", " ") for ln in table for k in starts)
    assert all(display_width(ln) <= 150 for ln in lines)
    assert "≈ 0.000123394576" in out  # the decimals on a line of their own under the exact value


def test_bad_widths(logistic):
    for bad in (5, -1, 2.5, "80"):
        with pytest.raises(sg.InputError, match="width"):
            logistic.to_text(width=bad)


def test_cli_width(capsys):
    args = ["table", "-y*log(1/(1+exp(-w*x)))", "--wrt", "w", "--at", "x=3,y=1,w=3"]
    assert main(args + ["--width", "60"]) == 0
    out = capsys.readouterr().out
    assert all(display_width(ln) <= 60 for ln in out.splitlines()) and "dL/dw = -3/(1 + exp(9))" in out
    assert main(args + ["--width", "0"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 10  # header, rule, 6 nodes, blank, footer
    assert main(args + ["--width", "5"]) == 2 and "at least 10" in capsys.readouterr().err
    assert main(args + ["--width", "60", "--format", "json"]) == 2 and "--width" in capsys.readouterr().err


# -- notebook reprs ------------------------------------------------------------------------------

def test_compiled_function_shows_code_and_rewrites():
    s = 1 / (1 + sp.exp(-(w * x + b)))
    f = sg.compile(-y * sp.log(s) - (1 - y) * sp.log(1 - s), wrt=[w, b], args=[x, y])
    page = f._repr_html_()
    c = _parse(page)
    text = "".join(c.text)
    assert f.rewrites and all(r.rule in text for r in f.rewrites)
    assert "def value_and_grad(x, y, w, b):" in text and "np.log1p" in text
    plain = sg.compile(w * x, wrt=[w], args=[x])
    assert "No stability rewrite" in plain._repr_html_()
    evil = sp.Symbol("<script>")
    assert "<script>" not in sg.compile(evil * x, wrt=[evil], args=[x])._repr_html_()


def test_graph_draws_itself():
    root = ET.fromstring(sg.decompose(LOGISTIC)._repr_svg_())
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "ξ6 = -y*ξ5" in texts and "= -y*log(1/(1 + exp(-w*x)))" in texts and "y" in texts
    B = sp.Symbol("B", integer=True, positive=True)
    X, W = sp.MatrixSymbol("X", B, 2), sp.MatrixSymbol("W", 2, 1)
    root = ET.fromstring(sg.decompose(sp.Trace((X * W).T * (X * W))).to_svg())
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "ξ1 = X@W" in texts and "shape (B, 1)" in texts
    evil = sp.Symbol("a\x01<b>\ud800")
    ET.fromstring(sg.decompose(sp.exp(evil * x))._repr_svg_())  # still well-formed XML
    e = x
    for _ in range(40):
        e = sp.sin(e + w)
    assert "nodes not drawn" in sg.decompose(e)._repr_svg_()
