"""How a compiled function shows itself in Jupyter (``_repr_html_``): what it computes, the
stability rewrites that fired (``f.rewrites``) and the generated code, all text escaped.

>>> import sympy as sp, html.parser
>>> from symgrad.compiled import compile
>>> x, w = sp.symbols("x w")
>>> page = compile(sp.log(1/(1 + sp.exp(-w*x))), wrt=[w], args=[x])._repr_html_()
>>> "log-sigmoid" in page and "def value_and_grad(x, w):" in page
True
"""

from __future__ import annotations

import html

import sympy as sp

from .publish import visible

__all__ = ["CompiledHTML", "compiled_html"]

CSS = ("div.symgrad-compiled{font-family:sans-serif}"
       "div.symgrad-compiled pre{background:#f7f7f7;border:1px solid #ddd;padding:.5em;overflow-x:auto;"
       "text-align:left;font-size:85%}"
       "div.symgrad-compiled summary{cursor:pointer}"
       "div.symgrad-compiled code,div.symgrad-compiled pre{font-family:'DejaVu Sans Mono',Menlo,Consolas,"
       "monospace;unicode-bidi:isolate}")
TITLES = {"value": "value: the function", "reverse": "value_and_grad: the reverse sweep",
          "grad": "grad", "forward": "jvp: the forward sweep"}


def _e(s) -> str:
    return html.escape(visible(str(s)), quote=True)


def _short(e, n: int = 200) -> str:
    s = sp.sstr(e, order="none")
    return s if len(s) <= n else s[:n - 1] + "…"


def compiled_html(f) -> str:
    """The HTML of a ``symgrad.compiled.CompiledFunction``."""
    names = lambda ps: ", ".join(p.name for p in ps) or "none"  # noqa: E731
    head = ("<p><b>symgrad compiled</b> <code>%s</code> with respect to <code>%s</code> (arguments <code>%s</code>; "
            "%d nodes)</p>" % (_e(_short(f.expr)), _e(names(f.wrt)), _e(names(f.args)), len(f.graph)))
    rewrites = list(getattr(f, "rewrites", ()))
    if rewrites:
        items = "".join("<li><code>%s</code>: <code>%s</code> → <code>%s</code></li>" % (
            _e(r.rule), _e(_short(r.before)), _e(_short(r.after))) if hasattr(r, "rule") else "<li>%s</li>" % _e(r)
            for r in rewrites)
        head += "<p>Stability rewrites (<code>f.rewrites</code>):</p><ul>%s</ul>" % items
    else:
        head += "<p>No stability rewrite fired (<code>f.rewrites</code> is empty).</p>"
    parts = []
    for name, src in f.sources.items():  # the generated code is safe text already (symgrad.naming)
        parts.append("<details%s><summary>%s</summary><pre>%s</pre></details>" % (
            " open" if name == "reverse" else "", _e(TITLES.get(name, name)), html.escape(src.rstrip("\n"))))
    parts.append("<details><summary>the whole generated module (<code>f.source</code>)</summary><pre>%s</pre>"
                  "</details>" % html.escape(f.source.rstrip("\n")))
    return '<div class="symgrad-compiled"><style>%s</style>%s%s</div>' % (CSS, head, "".join(parts))


class CompiledHTML:
    """Mixin of ``symgrad.compiled.CompiledFunction``: Jupyter's ``_repr_html_``."""

    def _repr_html_(self) -> str:
        return compiled_html(self)
