"""Deep expressions (a chain of 100 or 300 tanh layers, 200 nested sines) through tables in every
format, check_grads and the command line, against derivatives computed by hand with mpmath."""

import dataclasses
import functools
import json
import subprocess
import sys

import mpmath
import pytest
import sympy as sp

import symgrad as sg
from symgrad import parse, rules

w, x = sp.symbols("w x")


# Each chain is built once: SymPy's construction cache compares a new deep tree with an equal one
# built earlier by recursing through both (a RecursionError in SymPy itself, before symgrad is called).
@functools.lru_cache(maxsize=None)
def tanh_chain(n):
    e = w
    for _ in range(n):
        e = sp.tanh(e * w + 1)
    return e


@functools.lru_cache(maxsize=None)
def sin_chain(n):
    e = x
    for _ in range(n):
        e = sp.sin(e)
    return e


def tanh_chain_by_hand(n, w0):
    """(value, d/dw) by forward mode written out: e' = (1 - tanh²)(e'·w + e), with 40 digits."""
    with mpmath.workdps(40):
        wv = mpmath.mpf(w0)
        e, de = wv, mpmath.mpf(1)
        for _ in range(n):
            t = mpmath.tanh(e * wv + 1)
            e, de = t, (1 - t ** 2) * (de * wv + e)
        return float(e), float(de)


def sin_chain_by_hand(n, x0):
    with mpmath.workdps(40):
        e, de = mpmath.mpf(x0), mpmath.mpf(1)
        for _ in range(n):
            e, de = mpmath.sin(e), de * mpmath.cos(e)
        return float(e), float(de)


CASES = {
    "tanh chain 100": (lambda: tanh_chain(100), w, 0.5, lambda: tanh_chain_by_hand(100, 0.5)),
    "tanh chain 300": (lambda: tanh_chain(300), w, 0.5, lambda: tanh_chain_by_hand(300, 0.5)),
    "sin chain 200": (lambda: sin_chain(200), x, 0.5, lambda: sin_chain_by_hand(200, 0.5)),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("exact", [True, False])
def test_table_of_a_deep_expression_in_every_format(case, exact):
    build, s, at, hand = CASES[case]
    value, grad = hand()
    t = sg.table(build(), wrt=[s], at={s: at}, exact=exact)
    assert float(t.gradient[s.name]) == pytest.approx(grad, rel=1e-12)
    assert float(t.value) == pytest.approx(value, rel=1e-13)
    last = t.rows[-1].name
    for text in (str(t), t.to_markdown(), t.to_latex(), t.to_html()):
        assert (last in text or r"\xi_{%s}" % last[1:] in text) and len(text) > 1000
    d = json.loads(t.to_json())
    assert d["gradient"][s.name] == pytest.approx(grad, rel=1e-12)
    assert len(d["nodes"]) == len(t.rows) and d["nodes"][-1]["adjoint"] == 1.0
    assert "levels deep" in d["expression"] or d["expression"].startswith(("tanh(", "sin("))


@pytest.mark.parametrize("case", CASES)
def test_check_grads_on_a_deep_expression_runs_every_check(case):
    build, s, at, _ = CASES[case]
    r = sg.check_grads(build(), wrt=[s], at={s: at}, report=True)
    assert [(c.name, c.status) for c in r.checks] == [("sympy", "passed"), ("fd", "passed"), ("fwd-rev", "passed")]


def test_a_wrong_rule_in_a_deep_expression_is_caught_and_its_node_named(monkeypatch):
    table = tuple(dataclasses.replace(r, partial=lambda e, a, out: 1 - out) if r.name == "tanh" else r
                  for r in rules.RULES)
    monkeypatch.setattr(rules, "RULES", table)
    e = tanh_chain(100)
    f = sg.compile(e, wrt=[w])
    for modes in (("sympy",), ("fd",)):
        with pytest.raises(sg.GradientMismatch) as err:
            sg.check_grads(e, wrt=[w], at={w: 0.5}, fn=f, modes=modes)
        msg = str(err.value)
        assert "levels deep" in msg.splitlines()[0]  # the expression is described, not printed
        assert "wrong rule: node ξ" in msg and "= tanh(ξ" in msg and "symgrad's rule 'tanh'" in msg, msg


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "symgrad", *args], capture_output=True, text=True, timeout=300)


def test_cli_table_of_the_deepest_expression_the_parser_accepts(tmp_path):
    n = parse.MAX_DEPTH - 2  # sin(sin(…(x))): one level of nesting per call
    src = "x"
    for _ in range(n):
        src = "sin(%s)" % src
    path = tmp_path / "deep.txt"
    path.write_text(src)
    value, grad = sin_chain_by_hand(n, 0.5)
    for fmt in ("text", "markdown", "latex", "html", "json"):
        r = _cli("table", "@%s" % path, "--wrt", "x", "--at", "x=0.5", "--format", fmt)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr and "ξ%d" % n in r.stdout or r"\xi_{%d}" % n in r.stdout
        if fmt == "json":
            assert json.loads(r.stdout)["gradient"]["x"] == pytest.approx(grad, rel=1e-12)
    deeper = tmp_path / "deeper.txt"
    deeper.write_text("sin(%s)" % ("sin(" * (n + 5) + "x" + ")" * (n + 5)))
    r = _cli("table", "@%s" % deeper, "--wrt", "x", "--at", "x=0.5")
    assert r.returncode == 2 and "nested more than" in r.stderr and "Traceback" not in r.stderr
