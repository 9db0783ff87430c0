r"""LaTeX for tables, ready for pdflatex: booktabs rules, longtable when long, landscape or split when wide.

``render_latex(sheet)`` writes a fragment for a document that loads ``amsmath``, ``booktabs``,
``longtable``, ``array`` and ``pdflscape`` (``standalone=True``: a whole document that
does). The layout is chosen from an estimate of each column's printed width and each row's
height, for a text block of 468 × 640 pt (Letter with 1 in margins, or A4 with 2 cm and
room to spare) in ``\small``:

- it fits the width: one ``tabular`` (``longtable`` past one page);
- it fits a landscape page: the same on landscape pages (``pdflscape``);
- else its columns are split into parts that fit the width, each repeating the ξ column.

Cells with several lines (a definition and its substituted form, an exact value and
``≈`` its decimals) are stacked in the cell. The footer (L, the gradient) and the notes
(kink conventions, branches) follow the table. The output is ASCII: Unicode in names and
notes becomes LaTeX (``ξ`` is ``\xi``; a character LaTeX has no name for is written as its
code point), and a symbol name LaTeX cannot typeset is set as text, escaped.

>>> import sympy as sp
>>> latex_math(sp.Symbol("x_1")**2 / sp.Symbol("a}{b"))
'\\frac{x_{1}^{2}}{\\text{a\\}\\{b}}'
>>> latex_text("dξ/dv: 50% of ‖·‖")
'd$\\xi$/dv: 50\\% of $\\|\\cdot\\|$'
>>> latex_number("-1.5e-07")
'-1.5 \\cdot 10^{-7}'
"""

from __future__ import annotations

import re
import unicodedata

from sympy.printing.latex import LatexPrinter

from .errors import InputError
from .publish import Cell, Sheet, visible

__all__ = ["render_latex", "latex_math", "latex_text", "latex_number", "latex_numbers", "tex_width", "document",
           "PACKAGES", "LATEX_LAYOUTS", "PORTRAIT_PT", "LANDSCAPE_PT"]

PACKAGES = ("amsmath", "booktabs", "longtable", "array", "pdflscape")
LATEX_LAYOUTS = ("auto", "portrait", "landscape", "split")
PORTRAIT_PT, LANDSCAPE_PT = 468.0, 640.0  # text widths (the landscape one is the portrait height)
PORTRAIT_HEIGHT_PT, LANDSCAPE_HEIGHT_PT = 640.0, 440.0
FONT_PT = 9.0  # \small in a 10 pt document
PAD_EM = 12.0 / FONT_PT  # 2 \tabcolsep
LINE_PT = 11.0  # \small's baseline skip
SAFETY = 1.12  # tex_width is within 12 % of what pdflatex sets (calibrated on the tables' cells)

# -- text and symbols ------------------------------------------------------------------------

_MATH = {"ξ": r"\xi", "∂": r"\partial", "≈": r"\approx", "‖": r"\|", "·": r"\cdot", "⟨": r"\langle",
         "⟩": r"\rangle", "∇": r"\nabla", "×": r"\times", "↦": r"\mapsto", "→": r"\to", "←": r"\leftarrow",
         "≤": r"\leq", "≥": r"\geq", "≠": r"\neq", "√": r"\surd", "∞": r"\infty", "−": "-",
         "…": r"\ldots",
         "±": r"\pm", "∈": r"\in", "∘": r"\circ", "∑": r"\sum", "∏": r"\prod", "²": "^{2}", "³": "^{3}",
         "¹": "^{1}", "′": "'", "⋯": r"\cdots", "∗": "*", "⊙": r"\odot", "⊗": r"\otimes", "ℓ": r"\ell",
         "∫": r"\int", "°": r"^{\circ}"}
_GREEK_SMALL = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
                "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"}
_GREEK_CAPITAL = {"gamma", "delta", "theta", "lambda", "xi", "pi", "sigma", "upsilon", "phi", "psi", "omega"}
_LATIN_CAPITAL = {"alpha": "A", "beta": "B", "epsilon": "E", "zeta": "Z", "eta": "H", "iota": "I", "kappa": "K",
                  "mu": "M", "nu": "N", "omicron": "O", "rho": "P", "tau": "T", "chi": "X"}
_TEXT = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%",
         "_": r"\_", "^": r"\^{}", "~": r"\~{}", "<": r"\textless{}", ">": r"\textgreater{}",
         "|": r"\textbar{}", '"': r"\texttt{\char34}", "-": "-{}", "—": "---", "–": "--", "─": "-",
         "‘": "`", "’": "'", "“": "``", "”": "''", "\u00a0": "~", "´": "'"}
_ACCENTS = {"\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~", "\u0304": "=",
            "\u0307": ".", "\u0327": "c", "\u030c": "v", "\u0306": "u", "\u030a": "r", "\u030b": "H"}


def _greek(ch: str) -> str | None:
    name = unicodedata.name(ch, "")
    m = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (FINAL )?(\w+)", name)
    if not m:
        return None
    word = m.group(3).lower().replace("lamda", "lambda")
    if m.group(1) == "SMALL":
        return r"\varsigma" if m.group(2) else "\\" + word if word in _GREEK_SMALL else "o" if word == "omicron" \
            else None
    return "\\" + word.capitalize() if word in _GREEK_CAPITAL else _LATIN_CAPITAL.get(word)


def _unknown(ch: str) -> str:
    return r"\texttt{[U+%04X]}" % ord(ch)


def latex_text(s: str) -> str:
    r"""``s`` for LaTeX's text mode, ASCII only: special characters escaped, mathematical
    Unicode as math (``$\xi$``), accented letters with accents, anything else as its code point."""
    s = visible(s)
    out, math = [], []

    def flush():
        if math:
            out.append("$%s$" % _join(math))
            math.clear()
    for ch in s:
        if ch < "\x80" and ch not in _TEXT:
            flush()
            out.append(ch)
            continue
        cmd = _MATH.get(ch) or _greek(ch)
        if cmd is not None:
            math.append(cmd)
            continue
        flush()
        if ch in _TEXT:
            out.append(_TEXT[ch])
            continue
        base, *marks = unicodedata.normalize("NFD", ch)
        if base < "\x80" and base.isalpha() and marks and all(m in _ACCENTS for m in marks):
            t = base if base not in "ij" else "\\" + base
            for m in marks:
                t = "\\%s{%s}" % (_ACCENTS[m], t)
            out.append(t)
        else:
            out.append(_unknown(ch))
    flush()
    return "".join(out)


def _join(cmds) -> str:
    """Math pieces run together, with a space where a command name would run into a letter."""
    out = ""
    for c in cmds:
        out += " " + c if out[-1:].isalpha() and c[:1].isalpha() else c
    return out


def _ascii_math(s: str) -> str:
    """A math-mode string with every non-ASCII character replaced by LaTeX."""
    if s.isascii():
        return s
    out = []
    for ch in s:
        if ch < "\x80":
            out.append(ch)
            continue
        cmd = _MATH.get(ch) or _greek(ch)
        out.append("{%s}" % cmd if cmd is not None else r"\text{%s}" % latex_text(ch))
    return "".join(out)


_SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?")


class _Printer(LatexPrinter):
    """SymPy's LaTeX, with symbol names LaTeX cannot take set as escaped text."""

    def _print_Symbol(self, expr, style="plain"):
        if _SAFE_NAME.fullmatch(expr.name):
            return super()._print_Symbol(expr, style=style)
        return r"\text{%s}" % latex_text(expr.name)

    _print_Dummy = _print_Symbol


def latex_math(expr) -> str:
    """Math-mode LaTeX of a SymPy expression (ξ as ``\\xi_{k}``), ASCII only, whatever the names."""
    return _ascii_math(_Printer({"order": "none"}).doprint(expr))


def latex_number(s: str) -> str:
    """A decimal (``%g`` text) for math mode: ``1.5e-07`` as ``1.5 \\cdot 10^{-7}``."""
    m = re.fullmatch(r"(-?[0-9.]+)e([+-])0*([0-9]+)", s)
    if m:
        return r"%s \cdot 10^{%s%s}" % (m.group(1), "-" if m.group(2) == "-" else "", m.group(3))
    return {"inf": r"\infty", "-inf": r"-\infty", "nan": r"\mathrm{NaN}"}.get(s, s)


_NUMBERS = re.compile(r"(‖·‖ = )?[-+0-9.eE\[\], ]*(inf|nan)?[-+0-9.eE\[\], ]*")


def latex_numbers(s: str) -> str:
    """A number, an array printed by NumPy or a norm (``‖·‖ = 3``) in math mode, so that minus
    signs are minus signs and exponents are powers of ten; other text as ``latex_text``.

    >>> latex_numbers("[[ 1.5e-07, -2. ]]")
    '$[[ 1.5 \\\\cdot 10^{-7}, -2. ]]$'
    """
    if not s.strip() or not _NUMBERS.fullmatch(s):
        return latex_text(s)
    body = re.sub(r"(-?[0-9.]+)e([+-])0*([0-9]+)", lambda m: latex_number(m.group(0)), s)
    body = body.replace("‖·‖", r"\|\cdot\|").replace("inf", r"\infty").replace("nan", r"\mathrm{NaN}")
    return "$%s$" % body


# -- width estimate -------------------------------------------------------------------------------

_CHAR_EM = {"+": 1.2, "-": 1.2, "=": 1.3, "<": 1.3, ">": 1.3, "(": .39, ")": .39, "[": .28, "]": .28, ",": .45,
            ".": .28, "/": .5, ";": .45, ":": .5, "'": .3, "|": .28, "!": .3, "*": .5}
_CMD_EM = {"approx": 1.3, "cdot": .78, "times": 1.0, "left": 0, "right": 0, ",": .17, ";": .28, ":": .22, "!": 0,
           "quad": 1.0, "qquad": 2.0, "ldots": 1.2, "cdots": 1.2, "infty": 1.0, "mapsto": 1.5, "to": 1.3,
           "leq": 1.3, "geq": 1.3, "neq": 1.3, "|": .5, "{": .5, "}": .5, "langle": .39, "rangle": .39,
           "nabla": .83, " ": .33, "textbackslash": .5, "textless": .5, "textgreater": .5, "textbar": .28,
           "partial": .57, "$": .5, "&": .78, "%": .83, "#": .83, "_": .5, "displaystyle": 0, "limits": 0,
           "begin": 0, "end": 0, "for": 0, "otherwise": 0, "mathrm": 0}
SCRIPT, FRAC_PAD, DELIM = 0.84, 0.3, 0.55  # a script's size; a fraction's extra width; a \left( or \right)
_TEXT_EM = {"+": .78, "=": .78, "-": .33, "(": .39, ")": .39, "[": .28, "]": .28, ",": .28, ".": .28, "/": .5,
            ";": .28, ":": .28, "'": .28, "!": .28, "*": .5, "@": .78, "m": .83, "w": .72}
_TEXT_CMDS = {"text", "texttt", "textit", "emph", "textbf", "mbox", "textrm"}
_MATH_CMDS = {"ensuremath", "mathrm", "mathit", "mathbf", "mathtt"}
_OPERATORS = {"log", "exp", "sin", "cos", "tan", "tanh", "sinh", "cosh", "max", "min", "sec", "csc", "cot",
              "arcsin", "arccos", "arctan", "ln", "sign", "erf", "det", "arg"}


def _group(s: str, i: int):
    """(the argument at s[i]: a braced group or one token, the index after it)."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "", i
    if s[i] == "{":
        depth, j = 0, i
        while j < len(s):
            if s[j] == "\\":
                j += 2
                continue
            depth += {"{": 1, "}": -1}.get(s[j], 0)
            if depth == 0:
                return s[i + 1:j], j + 1
            j += 1
        return s[i + 1:], len(s)
    if s[i] == "\\":
        m = re.match(r"\\([A-Za-z]+|.)", s[i:])
        return m.group(0), i + len(m.group(0))
    return s[i], i + 1


def tex_width(s: str, math: bool = False) -> float:
    """An estimate, in ems of the font it is set in, of how wide LaTeX sets ``s`` (text mode,
    ``$...$`` for math): fractions by their wider part, scripts smaller, operators spaced."""
    w, i = 0.0, 0
    while i < len(s):
        ch = s[i]
        if ch == "$":
            math = not math
            i += 1
        elif ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", s[i:])
            name = m.group(1) if m else ""
            i += len(m.group(0)) if m else 1
            if name == "frac":
                a, i = _group(s, i)
                b, i = _group(s, i)
                w += SCRIPT * max(tex_width(a, True), tex_width(b, True)) + FRAC_PAD
            elif name == "sqrt":
                a, i = _group(s, i)
                w += tex_width(a, True) + 0.85
            elif name == "operatorname":
                a, i = _group(s, i)
                w += len(a) * 0.45 + 0.17
            elif name in _TEXT_CMDS:
                a, i = _group(s, i)
                w += tex_width(a, False)
            elif name in _MATH_CMDS:
                a, i = _group(s, i)
                w += tex_width(a, True)
            elif name in ("left", "right"):
                a, i = _group(s, i)
                w += 0 if a == "." else DELIM
            elif name in _OPERATORS:
                w += len(name) * 0.45 + 0.17
            elif name == "begin":
                env, i = _group(s, i)
                close = s.find(r"\end{%s}" % env, i)
                close = len(s) if close < 0 else close
                body, i = s[i:close], close + len(r"\end{%s}" % env)
                w += max(sum(tex_width(c, True) + 1.0 for c in row.split("&")) for row in body.split(r"\\")) + 0.9
            else:
                w += _CMD_EM.get(name, 0.55)
        elif ch in "^_" and math:
            a, i = _group(s, i + 1)
            w += SCRIPT * tex_width(a, True)
        elif ch in "{}":
            i += 1
        elif ch == " ":
            w += 0 if math else 0.33
            i += 1
        elif ch == "&":
            w += 0.5
            i += 1
        else:
            w += (_CHAR_EM if math else _TEXT_EM).get(ch, 0.72 if ch.isupper() else 0.5)
            i += 1
    return w


# -- layout ---------------------------------------------------------------------------------------

def _tex(c: Cell) -> tuple:
    return c.tex or (latex_text(c.text),)


def _stack(lines, pcol: bool) -> str:
    if len(lines) == 1:
        return lines[0]
    if pcol:
        return r"\newline ".join(lines)
    return r"\begin{tabular}[t]{@{}l@{}}%s\end{tabular}" % r" \\ ".join(lines)


def _block(header, rows, widths_em, pwidths, long: bool) -> list:
    """One table (tabular or longtable) of the given columns; ``pwidths[k]`` (em) makes column k
    a ragged-right paragraph column of that width."""
    spec = "".join(r">{\raggedright\arraybackslash}p{%.1fem}" % p if p else "l" for p in pwidths)
    head = " & ".join(_stack(h, bool(p)) for h, p in zip(header, pwidths)) + r" \\"
    tall = any(len(c) > 1 for r in rows for c in r)
    body = []
    for k, r in enumerate(rows):
        if tall and k:
            body.append(r"\addlinespace[3pt]")
        body.append(" & ".join(_stack(c, bool(p)) for c, p in zip(r, pwidths)) + r" \\")
    if long:
        n = len(header)
        return ([r"\begin{longtable}[l]{%s}" % spec, r"\toprule", head, r"\midrule", r"\endfirsthead",
                 r"\toprule", head, r"\midrule", r"\endhead",
                 r"\midrule", r"\multicolumn{%d}{r}{\emph{continued on the next page}} \\" % n, r"\endfoot",
                 r"\bottomrule", r"\endlastfoot"] + body + [r"\end{longtable}"])
    return [r"\noindent\begin{tabular}{%s}" % spec, r"\toprule", head, r"\midrule"] + body + \
        [r"\bottomrule", r"\end{tabular}\par"]


def _widths(cols, budget_em):
    """Paragraph widths for the columns that must wrap so that ``cols`` (natural widths in em,
    padding included) fit ``budget_em``; 0 for a column that keeps its natural width."""
    if sum(cols) <= budget_em:
        return [0.0] * len(cols)
    p = [0.0] * len(cols)
    # the widest columns become paragraphs of a common width c: sum(min(col, c)) = budget
    lo, hi = 4.0, max(cols)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(min(c, mid) for c in cols) <= budget_em else (lo, mid)
    for k, c in enumerate(cols):
        if c > lo:
            p[k] = max(4.0, lo - PAD_EM)
    return p


def _partition(cols, budget) -> list:
    """Column 0 followed by consecutive runs of the others, each part within ``budget`` where
    possible (a column too wide for it is a part alone): the fewest parts, and of those the
    one whose widest part is narrowest."""
    items = cols[1:]
    best = {0: (0, 0.0, [])}
    for i in range(1, len(items) + 1):
        cand = None
        for j in range(i - 1, -1, -1):
            width = cols[0] + sum(items[j:i])
            if width > budget and j < i - 1:
                break
            n, widest, parts = best[j]
            c = (n + 1, max(widest, width), parts + [list(range(j + 1, i + 1))])
            if cand is None or c[:2] < cand[:2]:
                cand = c
        best[i] = cand
    return [[0] + p for p in best[len(items)][2]] or [[0]]


def _height(rows) -> float:
    return sum(max(len(c) for c in r) * LINE_PT + 3 for r in rows) + 3 * LINE_PT


def render_latex(sheet: Sheet, layout: str = "auto", standalone: bool = False) -> str:
    """The sheet as LaTeX (see the module's doc); ``layout`` "portrait", "landscape" or
    "split" overrides the choice, ``standalone`` wraps it in a whole document."""
    if layout not in LATEX_LAYOUTS:
        raise InputError("layout must be one of %s, got %r" % (", ".join(LATEX_LAYOUTS), layout))
    header = [_tex(h) for h in sheet.header]
    rows = [[_tex(c) for c in r] for r in sheet.rows]
    cols = [SAFETY * max(tex_width(t) for col in group for t in col) + PAD_EM
            for group in zip(header, *rows)]
    portrait, landscape = PORTRAIT_PT / FONT_PT, LANDSCAPE_PT / FONT_PT
    total = sum(cols)
    if layout == "split" or layout == "auto" and total > landscape:
        # parts of the portrait width; when too wide for landscape, landscape parts if fewer
        groups = tall = _partition(cols, portrait)
        if layout == "auto":
            wide = _partition(cols, landscape)
            groups = tall if len(tall) <= len(wide) else wide
        parts = [(g, sum(cols[k] for k in g) > portrait) for g in groups]
    elif layout == "auto":
        parts = [(list(range(len(cols))), total > portrait)]
    else:
        parts = [(list(range(len(cols))), layout == "landscape")]
    out = ["%% symgrad table: needs \\usepackage{%s}" % ",".join(PACKAGES),
           r"\begingroup\small\renewcommand{\arraystretch}{1.3}"]
    tall_page = _height(rows)
    for n, (g, land) in enumerate(parts, 1):
        budget = landscape if land else portrait
        pw = _widths([cols[k] for k in g], budget)
        long = tall_page > (LANDSCAPE_HEIGHT_PT if land else PORTRAIT_HEIGHT_PT) * 0.85
        block = []
        if len(parts) > 1:
            block.append(r"\noindent\emph{Part %d of %d}\par\nopagebreak" % (n, len(parts)))
        block += _block([header[k] for k in g], [[r[k] for k in g] for r in rows], [cols[k] for k in g], pw, long)
        if n == len(parts):
            block += _footer(sheet)
        if land:
            block = [r"\begin{landscape}"] + block + [r"\end{landscape}"]
        elif n < len(parts):
            block.append(r"\bigskip")
        out += block
    out.append(r"\endgroup")
    tex = "\n".join(out)
    return document(tex) if standalone else tex


def _footer(sheet: Sheet) -> list:
    out = [r"\smallskip"] if sheet.footer else []
    for line in sheet.footer:
        out.append(r"\noindent %s\par" % "; ".join(" ".join(_tex(i)) for i in line.items))
    return out


def document(body: str) -> str:
    """A whole LaTeX document around ``body`` (A4, 2 cm margins, the packages tables need)."""
    return "\n".join([r"\documentclass[10pt]{article}", r"\usepackage[a4paper,margin=2cm]{geometry}",
                      r"\usepackage{%s}" % ",".join(PACKAGES), r"\pagestyle{empty}", r"\begin{document}",
                      body, r"\end{document}", ""])
