"""The teacher's kit against independent references: sympy.diff, brute-force path sums, hand values."""

import itertools
import json
import math
import pathlib
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.cli import main
from symgrad.errors import InputError
from symgrad.node_code import node_code, node_names

SVG = "{http://www.w3.org/2000/svg}"
x, y, w = sp.symbols("x y w")
LOGISTIC = -y * sp.log(1 / (1 + sp.exp(-w * x)))
POINT = {x: 3, y: 1, w: 3}
x1, x2 = sp.symbols("x1 x2")
Z1, Z2 = sp.tanh(x1 * x2), sp.tanh(x1 + x2)
P = sp.tanh(Z1 * Z2) * sp.tanh(Z1 + Z2)  # seed 004's p(h1, h2)
P_AT = {x1: sp.Rational(1, 2), x2: 1}
SLIDE = (pathlib.Path(__file__).resolve().parent.parent / "examples" / "data" / "lecture_slide_table.md").read_text(
    encoding="utf-8")


def texts(svg):
    return [t.text for t in ET.fromstring(svg).iter(SVG + "text")]


def brute_force_paths(expr, target, at):
    """Every path from the output to ``target`` with its product, from sympy.diff of each node's
    own expression (not symgrad's rules), by exhaustive depth-first search."""
    g = sg.decompose(expr)
    env = dict(at)
    for n in g.nodes:
        env[n.symbol] = n.expr.xreplace(env)
    node = {n.symbol: n for n in g.nodes}
    out = []

    def walk(s, names, prod):
        if s == target:
            out.append((tuple(names), prod))
            return
        if s not in node:
            return
        for a in node[s].args:
            walk(a, names + [str(a)], prod * sp.diff(node[s].expr, a).xreplace(env))

    walk(g.output, [str(g.output)], sp.S.One)
    return [(names, float(sp.N(v, 30))) for names, v in out]


# ---- explain ----------------------------------------------------------------------------

def test_explain_p_h1_h2_has_the_four_lecture_paths():
    e = sg.explain(P, wrt=x1, at=P_AT)
    ref = brute_force_paths(P, x1, P_AT)
    assert len(ref) == 4 and e.count == 4
    assert sorted((p.nodes, pytest.approx(p.value, rel=1e-12)) for p in e.paths) == \
        sorted((n, pytest.approx(v, rel=1e-12)) for n, v in ref)
    truth = float(sp.diff(P, x1).subs(P_AT))
    assert float(e.gradient) == pytest.approx(truth, rel=1e-12)
    assert sum(p.value for p in e.paths) == pytest.approx(truth, rel=1e-12)
    # grouped form: each node's adjoint is dL/dξ from sympy, L written in terms of that subexpression
    grouped = {name: v for name, _, v in e.grouped}
    assert float(grouped["ξ5"]) == pytest.approx(float((sp.tanh(Z1 + Z2) * (1 - sp.tanh(Z1 * Z2) ** 2)).subs(P_AT)))


def test_explain_json_contract_and_the_logistic_chain():
    data = json.loads(sg.explain(LOGISTIC, wrt=w, at=POINT).to_json())
    assert data["gradient"] == pytest.approx(-3 / (1 + math.exp(9)), rel=1e-13)
    (path,) = data["paths"]
    assert path["nodes"] == ["ξ6", "ξ5", "ξ4", "ξ3", "ξ2", "ξ1", "w"]
    assert math.prod(f["value"] for f in path["factors"]) == pytest.approx(path["value"], rel=1e-13)
    # the slide's sign error sits in ∂ξ4/∂ξ3 = -1/ξ3**2 < 0
    assert path["factors"][2]["value"] == pytest.approx(-1 / (1 + math.exp(-9)) ** 2, rel=1e-13)


def test_explain_counts_paths_it_does_not_list():
    e, depth = x, 10
    for _ in range(depth):
        e = sp.sin(e) + e  # each level doubles the paths
    ex = sg.explain(e, wrt=x, at={x: sp.Rational(1, 3)})
    assert ex.count == 2 ** depth and ex.paths == ()
    assert "1024 paths" in str(ex)
    v, d = 1 / 3, 1.0  # by hand: e_k = sin(e_{k-1}) + e_{k-1}, so e_k' = (cos(e_{k-1}) + 1) e_{k-1}'
    for _ in range(depth):
        v, d = math.sin(v) + v, (math.cos(v) + 1) * d
    assert float(ex.gradient) == pytest.approx(d, rel=1e-12)


def test_explain_needs_exactly_one_wrt():
    with pytest.raises(InputError, match="one symbol"):
        sg.explain(P, wrt=[x1, x2], at=P_AT)


def test_two_layer_chain_is_the_seed_002_product():
    wh, bh, b = sp.symbols("w_h b_h b")
    a_h = sg.sigmoid(wh * x + bh)
    a = sg.sigmoid(w * a_h + b)
    at = {x: 1, y: 1, wh: sp.Rational(1, 2), bh: 0, w: -1, b: sp.Rational(1, 4)}
    (path,) = sg.explain((y - a) ** 2, wrt=w, at=at).paths
    av, ahv = (1 / (1 + sp.exp(-(w * a_h + b)))).subs(at), (1 / (1 + sp.exp(-(wh * x + bh)))).subs(at)
    hand = 2 * (av - 1) * av * (1 - av) * ahv  # 2(a - y) · a(1 - a) · a_h
    assert float(path.value) == pytest.approx(float(hand), rel=1e-12)


# ---- pictures ---------------------------------------------------------------------------

def test_svg_is_well_formed_and_shows_values_and_partials():
    pic = sg.graph(LOGISTIC, wrt=w, at=POINT)
    back, fwd = texts(pic.to_svg()), texts(pic.to_svg("forward"))
    assert {"ξ%d" % k for k in range(1, 7)} | {"w", "x", "y"} <= set(back)
    assert "∂ξ4/∂ξ3 = -1/ξ3**2" in back and "= %.6g" % (-1 / (1 + math.exp(-9)) ** 2) in back
    assert "dL/dw = %.6g" % (-3 / (1 + math.exp(9))) in back
    assert "dξ4/dw = %.6g" % (3 * math.exp(-9) / (1 + math.exp(-9)) ** 2) in fwd
    assert pic._repr_svg_() == pic.to_svg()


def test_hostile_names_are_escaped_everywhere():
    evil = sp.Symbol('<script>alert("x")</script>\n&')
    pic = sg.graph(sp.exp(evil * w), wrt=w, at={evil: 1, w: 2})
    svg = pic.to_svg()
    assert "<script>" not in svg
    assert evil.name.replace("\n", " ") in " ".join(texts(svg))
    dot = pic.to_dot()
    for line in dot.splitlines()[1:-1]:  # every statement on its own line, quotes balanced
        assert line.replace('\\"', "").count('"') % 2 == 0, line


def test_large_graph_is_cut_and_says_so():
    e = x
    for k in range(80):
        e = sp.sin(e) + k * x
    pic = sg.graph(e, wrt=x, at={x: 0})
    boxes = ET.fromstring(pic.to_svg()).findall(SVG + "g")
    assert len(boxes) <= 60 + 2 and any("nodes; the 60 nearest" in t for t in texts(pic.to_svg()))


def test_network_is_drawn_at_matrix_level():
    from symgrad import nn

    net = nn.mlp([2, 3, 1], activation="sigmoid", loss="binary_cross_entropy")
    params = nn.init_params(net, seed=0)
    at = {"X": np.array([[0.1, 0.2], [0.3, -0.4]]), "Y": np.array([[1.0], [0.0]]), **params}
    t = texts(sg.graph(net.loss, wrt=list(params), at=at).to_svg())
    assert "shape (2, 3)" in t and "W1" in t
    g = sg.compile(net.loss, wrt=list(params))
    _, grads = g.value_and_grad(**at)
    assert "dL/db2 = %s" % np.array2string(grads["b2"], precision=4, separator=", ") in t


# ---- check_table ------------------------------------------------------------------------

def test_the_slides_table_one_sign_error_carried_three_times():
    r = sg.check_table(LOGISTIC, SLIDE, wrt=w, at=POINT)
    verdicts = {(c.row, c.column): c.verdict for c in r.cells}
    assert [k for k, v in verdicts.items() if v == "wrong"] == [("ξ4", "partial value")]
    assert sorted(k for k, v in verdicts.items() if v == "follows") == [("ξ4", "dξ/dw"), ("ξ5", "dξ/dw"),
                                                                        ("ξ6", "dξ/dw")]
    last = next(c for c in r.cells if (c.row, c.column) == ("ξ6", "dξ/dw"))
    assert last.expected == pytest.approx(float(sp.diff(LOGISTIC, w).subs(POINT)), rel=1e-13)
    assert (r.wrong, r.follows, r.ok) == (1, 3, False)
    assert "carried into" in str(r)


def test_hand_computed_table_is_all_right_and_digits_set_the_tolerance():
    h = (2 * (x + 1)) ** 2  # h(2): ξ1 = 6, ξ2 = 36, partials 2 and 12, tangents 2 and 24, adjoints 12 and 1
    good = "ξ,value,partial value,dξ/dx,dL/dξ\nξ1,6,2,2,12\nξ2,36,12.0,24,1\n"
    assert sg.check_table(h, good, wrt=x, at={x: 2}).ok
    at = {x: sp.Rational(1, 3)}  # ξ1 = 8/3 = 2.666..., ξ2 = 64/9 = 7.111...
    ok = "| ξ | value | dξ/dx |\n|---|---|---|\n| ξ1 | 2.67 | 2 |\n| ξ2 | 7.111 | 10.6666 |"
    bad = "| ξ | value | dξ/dx |\n|---|---|---|\n| ξ1 | 2.69 | 2 |\n| ξ2 | 7.111 | 10.6666 |"
    assert sg.check_table(h, ok, wrt=x, at=at).ok
    r = sg.check_table(h, bad, wrt=x, at=at)
    assert [(c.row, c.verdict) for c in r.cells if c.verdict != "right"] == [("ξ1", "wrong")]


def test_follow_through_in_the_adjoint_column():
    h = (2 * (x + 1)) ** 2
    student = "ξ,value,partial value,dξ/dx,dL/dξ\nξ1,6,2,2,-12\nξ2,36,-12,-24,1\n"
    r = sg.check_table(h, student, wrt=x, at={x: 2})
    assert {(c.row, c.column): c.verdict for c in r.cells if c.verdict != "right"} == {
        ("ξ2", "partial value"): "wrong", ("ξ2", "dξ/dx"): "follows", ("ξ1", "dL/dξ"): "follows"}


def test_check_table_errors_name_the_culprit():
    with pytest.raises(InputError, match="no ξ column"):
        sg.check_table(x ** 2, "a,b\n1,2\n", wrt=x, at={x: 1})
    with pytest.raises(InputError, match="ξ1 value"):
        sg.check_table(x ** 2, "ξ,value\nξ1,import os\n", wrt=x, at={x: 1})


def test_cli_check_table_exit_codes(tmp_path, capsys):
    slide = tmp_path / "slide.md"
    slide.write_text(SLIDE, encoding="utf-8")
    args = ["check-table", "-y*log(1/(1+exp(-w*x)))", "--wrt", "w", "--at", "x=3,y=1,w=3", "--table"]
    assert main(args + [str(slide), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["wrong"], data["follows"]) == (1, 3)
    good = tmp_path / "good.csv"
    good.write_text("ξ,value\nξ1,-9\nξ2,exp(-9)\n", encoding="utf-8")
    assert main(args + [str(good)]) == 0
    assert main(args + [str(tmp_path / "missing.md")]) == 2


# ---- node code --------------------------------------------------------------------------

_a, _b = sp.symbols("a b", real=True)
RULE_EXPRS = {"add": _a + _b, "mul": _a * _b, "reciprocal": 1 / _a, "square": _a ** 2, "pow": _a ** 3,
              "powvar": _a ** _b, "max": sp.Max(_a, _b), "step": sp.Heaviside(_a), "sinc": sp.sinc(_a),
              "piecewise": sp.Piecewise((_a, _a > 0), (0, True)), "hypot": sp.sqrt(_a ** 2 + _b ** 2),
              "logsumexp": sp.log(sp.exp(_a) + sp.exp(_b)), "leaky_relu": sg.leaky_relu(_a, _b)}


@pytest.mark.parametrize("name", node_names())
def test_node_code_backward_is_the_derivative_times_the_gradient(name):
    ref = RULE_EXPRS.get(name)
    if ref is None:
        ref = sg.parse_expr("%s(a)" % name).subs(sp.Symbol("a"), _a)
    args = [s for s in (_a, _b) if s in ref.free_symbols]
    ns = {}
    exec(node_code(name), ns)  # noqa: S102 - our own generated code
    points = {"acosh": [1.6, 2.5], "asin": [0.3, 0.6], "acos": [0.3, 0.6], "atanh": [0.3, 0.6]}.get(name, [0.6, 1.3])
    for va, vb in itertools.product(points, [0.7, 1.4]):
        at = {_a: va, _b: vb}
        inputs = va if len(args) == 1 else tuple(at[s] for s in args)
        g = 0.37
        assert float(ns["forward_pass"](inputs)) == pytest.approx(float(ref.subs(at).evalf(30)), rel=1e-12)
        got = ns["backward_pass"](inputs, g)
        got = [got] if len(args) == 1 else list(got)
        if name in ("floor", "ceiling"):  # piecewise constant: 0 away from the jumps, by hand
            want = [0.0]
        else:
            want = [float(sp.diff(ref, s).subs(at).evalf(30)) * g for s in args]
        assert [float(v) for v in got] == pytest.approx(want, rel=1e-10, abs=1e-300)


def test_node_code_reuses_the_forward_value_and_refuses_unknown_names():
    src = node_code("sigmoid")
    assert "def forward_pass(inputs):" in src and "def backward_pass(inputs, incoming_gradient):" in src
    assert "sigmoid = " in src.split("def backward_pass")[1]
    with pytest.raises(InputError, match="did you mean 'sigmoid'"):
        node_code("sigmod")


def test_cli_graph_explain_node(tmp_path, capsys):
    out = tmp_path / "g.svg"
    assert main(["graph", "x*w", "--wrt", "w", "--at", "x=3,w=1", "-o", str(out)]) == 0
    assert "ξ1" in texts(out.read_text(encoding="utf-8"))
    assert main(["graph", "x*w", "--wrt", "w", "--at", "x=3,w=1", "--format", "dot"]) == 0
    assert capsys.readouterr().out.startswith("digraph symgrad {")
    assert main(["explain", "x*w", "--wrt", "w", "--at", "x=3,w=1", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["gradient"] == 3.0
    assert main(["explain", "x*w", "--wrt", "w,x", "--at", "x=3,w=1"]) == 2
    assert main(["node", "tanh"]) == 0 and "1 - tanh" in capsys.readouterr().out


def test_latex_of_powers_of_activations_does_not_crash():
    for f in (sg.sigmoid(w * x), sg.relu(w), sg.softplus(w), sg.leaky_relu(w, sp.Rational(1, 10))):
        latex = sg.table(f ** 2 + w, wrt=w, at={x: 1, w: sp.Rational(1, 2)}).to_latex()
        assert r"\right)^{2}" in latex and latex.count("{") == latex.count("}")
