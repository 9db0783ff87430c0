"""Tables and generated code use the same ξ numbers (issue 11 item 6): ``table(expr)`` is the
literal chain that ``compile(expr, rewrite=False)`` comments by, and ``table(expr,
rewrite=True)`` the rewritten chain that ``compile(expr)`` comments by. Every value line's
comment is its node's row, and every ``∂ξa/∂b`` in a reverse line is a partial the table lists."""

import json
import os
import re
import subprocess
import sys

import pytest
import sympy as sp

import symgrad as sg
from symgrad.printing import text

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from catalogue import CATALOGUE  # noqa: E402

x, y, w = sp.symbols("x y w")
sig = 1 / (1 + sp.exp(-w * x))
LECTURE = -y * sp.log(sig) - (1 - y) * sp.log(1 - sig)
LINE = re.compile(r"^    (\w+) = .*  # (.*)$")


def scalar_point(case):
    at = {s: sp.nsimplify(v) for s, v in case.at.items() if not hasattr(v, "__len__")}
    return at if len(at) == len(case.at) else None


def check(tab, f):
    """Every comment of ``f``'s value_and_grad names the table's nodes and partials."""
    rows = {r.name: r for r in tab.rows}
    partials = {(r.name, text(a)) for r in tab.rows for a, *_ in r.partials}
    seen = 0
    for line in f.sources["reverse"].splitlines():
        m = LINE.match(line)
        if not m:
            continue
        target, note = m.groups()
        if re.fullmatch(r"xi\d+", target):  # a value line: the comment is the node's row
            name = "ξ" + target[2:]
            assert name in rows, (name, line)
            assert note == text(rows[name].substituted) or note.endswith(" ..."), (line, rows[name].substituted)
            seen += 1
        else:  # an adjoint line: each ∂ξa/∂b it cites is a partial of row ξa
            for a, b in re.findall(r"∂(ξ\d+)/∂([^,]+)", note):
                assert (a, b.strip()) in partials, (a, b, line)
                seen += 1
    return seen


def test_the_lecture_loss_two_ways():
    literal = sg.table(LECTURE, wrt=w, at={x: 3, y: 1, w: 3})
    assert len(literal.rows) == 11 and not literal.rewrites
    assert check(literal, sg.compile(LECTURE, wrt=[w], args=[x, y], rewrite=False)) >= 11
    f = sg.compile(LECTURE, wrt=[w], args=[x, y])
    rewritten = sg.table(LECTURE, wrt=w, at={x: 3, y: 1, w: 3}, rewrite=True)
    assert [text(r.substituted) for r in rewritten.rows] == ["w*x", "y*(w*x)", "softplus(w*x)",
                                                             "-y*w*x + softplus(w*x)"]
    assert check(rewritten, f) >= 4
    assert "∂ξ3/∂ξ1" in f.sources["reverse"] and "∂ξ3/∂ξ1 = sigmoid(ξ1)" in str(rewritten)
    assert "its code comments use these ξ numbers" in str(rewritten)
    assert [r.split(":")[0] for r in rewritten.to_dict()["rewrites"]] == [
        "sigmoid", "log-sigmoid", "one-minus-sigmoid", "log-sigmoid", "bce-logits"]
    assert rewritten.gradient["w"] == literal.gradient["w"]  # the same function, one less cancellation
    with pytest.raises(AssertionError):  # the mismatch of the issue: literal table, rewritten code
        check(literal, f)


@pytest.mark.parametrize("name", [n for n, c in CATALOGUE.items() if scalar_point(c) is not None])
def test_catalogue_tables_and_code_agree(name):
    case = CATALOGUE[name]
    at = scalar_point(case)
    args = [s for s in sorted(case.expr.free_symbols, key=lambda s: s.name) if s not in case.wrt]
    for rewrite in (False, True):
        try:
            tab = sg.table(case.expr, wrt=list(case.wrt), at=at, rewrite=rewrite)
        except sg.InputError:  # a point outside the rewritten function's exact domain: nothing to compare
            continue
        assert check(tab, sg.compile(case.expr, wrt=list(case.wrt), args=args, rewrite=rewrite)) > 0


def test_cli_rewrite_flag():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    r = subprocess.run([sys.executable, "-m", "symgrad", "table", "-y*log(1/(1+exp(-w*x)))", "--wrt", "w",
                        "--at", "x=3,y=1,w=3", "--rewrite", "--format", "json"],
                       capture_output=True, text=True, cwd=root, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert [n["expr"] for n in d["nodes"]] == ["-w*x", "softplus(ξ1)", "y*ξ2"]
    assert d["rewrites"] == ["sigmoid: 1/(1 + exp(-w*x)) → sigmoid(w*x)",
                             "log-sigmoid: log(1/(1 + exp(-w*x))) → -softplus(-w*x)"]
