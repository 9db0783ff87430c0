"""Second-order tables (issue 10 item 6): ``table(..., order=2)`` adds the tangent of every
adjoint along each parameter (forward-over-reverse) and the Hessian. Each column is checked
against sympy.diff, independently of symgrad's rules: the adjoint of node ξk is ∂L/∂t with ξk's
value replaced by t, and its column is d/dw of that; the Hessian is sympy.hessian."""

import json
import os
import subprocess
import sys

import mpmath
import pytest
import sympy as sp

import symgrad as sg

x, y, w, b, t = sp.symbols("x y w b t")
sig = 1 / (1 + sp.exp(-w * x))

CASES = {
    "lecture logistic loss": (-y * sp.log(sig) - (1 - y) * sp.log(1 - sig), [w], {x: 3, y: 1, w: 3}),
    "two parameters": (w * sp.exp(w * x + b), [w, b], {x: 2, w: 1, b: 0}),
    "shared subexpression": (sp.sin(x * w) + sp.cos(x * w) * b ** 2, [w, b], {x: 1, w: sp.Rational(1, 3), b: 2}),
    "tanh layer squared": ((sp.tanh(w * x + b) - y) ** 2, [w, b], {x: sp.Rational(1, 2), y: 1, w: 2, b: -1}),
    "log and power": (sp.log(1 + w ** 2 * x) / (b + 2), [w, b], {x: 3, w: sp.Rational(1, 2), b: 1}),
}


def close(a, b, digits=25):
    with mpmath.workdps(40):
        p, q = mpmath.mpf(str(sp.N(a, 35))), mpmath.mpf(str(sp.N(b, 35)))
        return abs(p - q) <= mpmath.mpf(10) ** -digits * max(1, abs(q))


def independent_adjoint(graph, node):
    """dL/dξ of ``node`` as a function of the inputs, by sympy.diff: L rebuilt from the node
    definitions with this node's value replaced by t, differentiated in t, then t = the node's
    value in the inputs (symgrad's rules play no part; the graph only says what ξk is)."""
    with_t, plain = {}, {}
    for n in graph.nodes:
        plain[n.symbol] = n.expr.xreplace(plain)
        with_t[n.symbol] = t if n is node else n.expr.xreplace(with_t)
    return sp.diff(with_t[graph.output], t).xreplace({t: plain[node.symbol]})


@pytest.mark.parametrize("case", CASES)
def test_adjoint_tangent_columns_and_hessian_match_sympy(case):
    expr, wrt, at = CASES[case]
    tab = sg.table(expr, wrt=wrt, at=at, order=2)
    assert tab.second == tuple(v.name for v in wrt)
    graph = sg.decompose(expr)
    for row, node in zip(tab.rows, graph.nodes):
        assert row.name == node.name
        adj = independent_adjoint(graph, node)
        assert close(row.adjoint, adj.subs(at)), row.name  # the method agrees with the first order
        for v, col in zip(wrt, row.adjoint_tangents):
            assert close(col, sp.diff(adj, v).subs(at)), (row.name, v)
    hess = sp.hessian(expr, wrt).subs(at)
    for i, a in enumerate(wrt):
        for j, c in enumerate(wrt):
            assert close(tab.hessian[a.name][c.name], hess[i, j]), (a, c)


def test_lecture_table_shows_the_column_and_the_hessian():
    tab = sg.table(-y * sp.log(sig), wrt=w, at={x: 3, y: 1, w: 3}, order=2)
    text = tab.to_text(width=0)
    assert "d(dL/dξ)/dw" in text.splitlines()[0]
    assert "d²L/dw² = 9*exp(9)/(1 + exp(9))**2 ≈ 0.001110414148" in text
    assert sp.simplify(tab.hessian["w"]["w"] - 9 * sp.exp(9) / (1 + sp.exp(9)) ** 2) == 0
    assert tab.rows[3].adjoint_tangents == (3 * sp.exp(-9),)  # d/dw of -1/ξ4 = ξ4_dot/ξ4²
    for rendered in (tab.to_markdown(), tab.to_html(), tab.to_latex()):
        assert "d(dL/d" in rendered and ("d²L/dw²" in rendered or r"\partial^2 L" in rendered)


def test_json_has_the_hessian_and_each_node_its_adjoint_tangents():
    tab = sg.table(w * sp.exp(w * x + b), wrt=[w, b], at={x: 2, w: 1, b: 0}, order=2)
    d = json.loads(tab.to_json())
    e2 = float(sp.exp(2))
    assert d["hessian"] == {"w": {"w": pytest.approx(8 * e2), "b": pytest.approx(3 * e2)},
                            "b": {"w": pytest.approx(3 * e2), "b": pytest.approx(e2)}}
    assert d["exact_hessian"]["w"]["w"] == "8*exp(2)"
    assert d["nodes"][0]["adjoint_tangents"] == {"w": pytest.approx(3 * e2), "b": pytest.approx(e2)}
    first = json.loads(sg.table(w * sp.exp(w * x + b), wrt=[w, b], at={x: 2, w: 1, b: 0}).to_json())
    assert "hessian" not in first and "adjoint_tangents" not in first["nodes"][0]


def test_a_direction_gives_one_column_and_hessian_times_v():
    expr, wrt, at = CASES["tanh layer squared"]
    tab = sg.table(expr, wrt=wrt, at=at, order=2, direction={"w": 1, b: -2})
    assert tab.second == ("v",) and tab._header()[-1] == "d(dL/dξ)/dv"
    hess = sp.hessian(expr, wrt).subs(at)
    hv = hess * sp.Matrix([1, -2])
    assert close(tab.hessian["w"]["v"], hv[0]) and close(tab.hessian["b"]["v"], hv[1])
    d = tab.to_dict()
    assert d["direction"] == {"w": 1.0, "b": -2.0} and set(d["hvp"]) == {"w", "b"} and "hessian" not in d
    assert "(H·v)_w = " in str(tab)


def test_float_mode_agrees_with_exact():
    expr, wrt, at = CASES["shared subexpression"]
    exact = sg.table(expr, wrt=wrt, at=at, order=2)
    floats = sg.table(expr, wrt=wrt, at=at, order=2, exact=False)
    for r, f in zip(exact.rows, floats.rows):
        assert [float(v) for v in r.adjoint_tangents] == pytest.approx([float(v) for v in f.adjoint_tangents],
                                                                        rel=1e-13, abs=1e-15)


def test_deep_exact_table_of_second_order_is_exact():
    n = 20
    e = x
    for _ in range(n):
        e = sp.sin(e) + x
    tab = sg.table(e, wrt=x, at={x: 1}, order=2)
    with mpmath.workdps(60):  # e_k = sin(e_{k-1}) + x: e' = cos·e' + 1, e'' = -sin·e'² + cos·e''
        v, d1, d2 = mpmath.mpf(1), mpmath.mpf(1), mpmath.mpf(0)
        for _ in range(n):
            v, d1, d2 = mpmath.sin(v) + 1, mpmath.cos(v) * d1 + 1, -mpmath.sin(v) * d1 ** 2 + mpmath.cos(v) * d2
        got = mpmath.mpf(str(sp.N(tab.hessian["x"]["x"], 50)))
        assert abs(got - d2) < abs(d2) * mpmath.mpf(10) ** -45


def test_kinks_and_branches_have_second_derivative_zero_where_they_are_linear():
    expr = sg.relu(w * x - 1) * w + sp.Piecewise((w ** 3, w > 0), (w, True))
    tab = sg.table(expr, wrt=w, at={x: 2, w: 3}, order=2)
    # relu(2w - 1)·w = 2w² - w on this side: 4; w³: 6w = 18
    assert tab.hessian["w"]["w"] == 22


@pytest.mark.parametrize("kwargs, message", [
    ({"order": 3}, "order is 1"),
    ({"order": 2, "direction": {"q": 1}}, "direction names 'q'"),
    ({"order": 2, "direction": {"w": "abc"}}, "not a real number"),
    ({"direction": {"w": 1}}, "order=2 tables"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(sg.InputError, match=message):
        sg.table(w * x, wrt=w, at={x: 1, w: 2}, **kwargs)


def test_networks_are_refused_with_a_pointer():
    X, W = sp.MatrixSymbol("X", 2, 2), sp.MatrixSymbol("W", 2, 2)
    with pytest.raises(sg.InputError, match="hvp"):
        sg.table(sp.Trace(X * W), wrt=[W], at={}, order=2)


def test_cli_order_2():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    r = subprocess.run([sys.executable, "-m", "symgrad", "table", "-y*log(1/(1+exp(-w*x)))", "--wrt", "w",
                        "--at", "x=3,y=1,w=3", "--order", "2", "--format", "json"],
                       capture_output=True, text=True, cwd=root, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["hessian"]["w"]["w"] == pytest.approx(9 * float(sp.exp(9) / (1 + sp.exp(9)) ** 2), rel=1e-14)
    r = subprocess.run([sys.executable, "-m", "symgrad", "table", "w*x", "--wrt", "w", "--at", "x=3,w=3",
                        "--order", "3"], capture_output=True, text=True, cwd=root, timeout=120)
    assert r.returncode != 0 and "--order" in r.stderr


def test_readme_shows_the_real_order_2_table():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    readme = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    command = '$ symgrad table "-y*log(1/(1+exp(-w*x)))" --wrt w --at x=3,y=1,w=3 --order 2\n'
    assert command in readme, "README no longer shows the order-2 table"
    shown = readme.split(command, 1)[1].split("\n```", 1)[0]
    r = subprocess.run([sys.executable, "-m", "symgrad", "table", "-y*log(1/(1+exp(-w*x)))", "--wrt", "w",
                        "--at", "x=3,y=1,w=3", "--order", "2"], capture_output=True, text=True, cwd=root, timeout=120)
    assert r.stdout.rstrip("\n") == shown
