"""Derivative tables: every format from the same rows, exact and float modes, bad input."""

import json
import math

import pytest
import sympy as sp

import symgrad as sg

x, y, w, b = sp.symbols("x y w b")
LOGISTIC = -y * sp.log(1 / (1 + sp.exp(-w * x)))
POINT = {x: 3, y: 1, w: 3}


@pytest.fixture(scope="module")
def t():
    return sg.table(LOGISTIC, wrt=w, at=POINT)


def test_text_has_one_line_per_node_and_the_footer(t):
    lines = t.to_text(width=0).splitlines()  # no width limit: one line per node
    assert lines[0].split()[:3] == ["ξ", "definition", "local"]
    body = [ln for ln in lines if ln.startswith("ξ") and not ln.startswith("ξ ")]
    assert [ln.split()[0] for ln in body] == ["ξ%d" % k for k in range(1, 7)]
    assert "dL/dw = -3/(1 + exp(9)) ≈ -0.000370183728" in lines[-1]


def test_markdown_rows(t):
    md = t.to_markdown().splitlines()
    assert md[0].startswith("| ξ | definition |") and md[1].startswith("|---|")
    assert md[2].startswith("| ξ1 | -w\\*x | ∂ξ1/∂w = -x | -9 | -3 | -3 |")  # * escaped for renderers
    assert sum(1 for ln in md if ln.startswith("| ξ")) == 7  # header + 6 nodes


def test_latex_is_a_booktabs_tabular_with_xi(t):
    tex = t.to_latex()
    assert r"\begin{tabular}" in tex and r"\toprule" in tex and r"\bottomrule" in tex and r"\end{tabular}" in tex
    assert r"\xi_{4} = \frac{1}{\xi_{3}}" in tex
    assert [ln.split(" & ")[0] for ln in tex.splitlines() if ln.startswith(r"$\xi_{")] == [
        r"$\xi_{%d}$" % k for k in range(1, 7)]
    assert r"$dL/dw = - \frac{3}{1 + e^{9}} \approx -0.000370183728$" in tex  # the footer
    assert t._repr_latex_() == tex and tex.isascii()


def test_html_escapes_and_matches_rows(t):
    h = t._repr_html_()
    assert h.count("<tr>") == 7 and "&lt;" not in h.split("<tbody>")[0]
    pw = sg.table(sp.Piecewise((x, x < 1), (w, True)) * w, wrt=w, at={x: 0, w: 2}).to_html()
    assert "x &lt; 1" in pw


def test_json_numbers_match_float_mode(t):
    exact = json.loads(t.to_json())
    floats = json.loads(sg.table(LOGISTIC, wrt=w, at=POINT, exact=False).to_json())
    for a, c in zip(exact["nodes"], floats["nodes"]):
        for key in ("value", "tangent", "adjoint"):
            assert a[key] == pytest.approx(c[key], rel=1e-14)
    assert exact["exact_gradient"]["w"] == "-3/(1 + exp(9))"


def test_several_parameters_give_one_tangent_column_each():
    e = sp.tanh(w * x + b)
    tt = sg.table(e, wrt=[w, b], at={x: 2, w: sp.Rational(1, 2), b: -1})
    assert tt._header()[-3:] == ["dξ/dw", "dξ/db", "dL/dξ"]
    d = json.loads(tt.to_json())
    assert d["gradient"]["w"] == pytest.approx(2 * (1 - math.tanh(0.0) ** 2))
    assert d["gradient"]["b"] == pytest.approx(1.0)
    assert d["nodes"][-1]["tangents"] == {"w": pytest.approx(2.0), "b": pytest.approx(1.0)}


def test_shared_node_adjoint_sums_both_paths():
    e = sp.sin(x * w) + sp.cos(x * w)
    tt = sg.table(e, wrt=w, at={x: 1, w: sp.Rational(1, 3)})
    xw = tt.rows[0]
    assert sp.simplify(xw.adjoint - (sp.cos(sp.Rational(1, 3)) - sp.sin(sp.Rational(1, 3)))) == 0


@pytest.mark.parametrize("at, message", [
    ({x: 3, y: 1}, "no value for 'w' in at; add w=..."),
    ({x: 3, y: 1, w: "abc"}, "value of 'w' is 'abc', which is not a number"),
    ({x: 3, y: 1, w: sp.Symbol("q")}, "value of 'w' is q, which is not a number"),
    ({x: 3, y: 1, w: sp.oo}, "tables need finite real numbers"),
    ([1, 2], "at must be a dict"),
])
def test_bad_points(at, message):
    with pytest.raises(sg.InputError) as err:
        sg.table(LOGISTIC, wrt=w, at=at)
    assert message in str(err.value)


def test_wrt_not_in_expression():
    with pytest.raises(sg.InputError, match=r"'q', which is not in the expression"):
        sg.table(LOGISTIC, wrt="q", at=POINT)
    tt = sg.table(LOGISTIC, wrt=sp.Symbol("q"), at=POINT)  # a symbol the expression lacks: derivative 0
    assert tt.gradient["q"] == 0


def test_values_by_name_and_extra_values_are_accepted():
    tt = sg.table(LOGISTIC, wrt=w, at={"x": 3, "y": 1, "w": 3, "unused": 7})
    assert sp.simplify(tt.value - sp.log(1 + sp.exp(-9))) == 0


def test_kink_convention_is_shown_for_kinked_nodes():
    t = sg.table(sg.relu(w * x) + sp.exp(w), wrt=w, at={x: 0, w: 0})
    relu_row = next(r for r in t.rows if r.op == "function")
    assert [n for n, _ in t.notes] == [relu_row.name]
    assert "relu'(0) = 0" in str(t).splitlines()[-1]
    assert t.gradient["w"] == 1  # relu'(0)·x = 0, plus exp(0)
    assert relu_row.name in json.loads(t.to_json())["notes"]


def test_json_has_one_tangent_per_parameter():
    import sympy as sp
    import symgrad as sg
    x, w, b = sp.symbols("x w b")
    data = sg.table(sp.exp(w * x + b), wrt=[w, b], at={x: 2, w: 0, b: 0}).to_dict()
    first, second = data["nodes"][0], data["nodes"][1]  # ξ1 = w*x, ξ2 = ξ1 + b
    assert "tangent" not in first and first["tangents"] == {"w": 2.0, "b": 0.0}  # dξ1/dw = x, dξ1/db = 0
    assert second["tangents"] == {"w": 2.0, "b": 1.0}
