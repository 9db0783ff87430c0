"""Exact tables in linear time (issue 11 item 5): large exact values are shared by name, never
expanded as trees, and every column stays exactly right — checked against the recurrence
iterated independently with mpmath at 50 digits."""

import json
import time

import mpmath
import pytest
import sympy as sp

import symgrad as sg
from symgrad.exact import Shared

x, w, y = sp.symbols("x w y")
DIGITS = 50


def sin_chain(n):
    e = x
    for _ in range(n):
        e = sp.sin(e) + x
    return e


def sin_chain_by_hand(n, x0=1):
    """Every row of the table of sin_chain(n) at x0, by the recurrence (mpmath, 70 digits):
    rows ξ(2k-1) = sin(e_{k-1}) and ξ(2k) = ξ(2k-1) + x = e_k, with e_0 = x.
    Returns {row: (value, tangent, adjoint, [partial values])} and dL/dx."""
    with mpmath.workdps(DIGITS + 20):
        xv = mpmath.mpf(x0)
        e, de = [xv], [mpmath.mpf(1)]
        for _ in range(n):
            e.append(mpmath.sin(e[-1]) + xv)
            de.append(mpmath.cos(e[-2]) * de[-1] + 1)
        adj_e = [None] * (n + 1)  # dL/de_k, by the chain rule backwards
        adj_e[n] = mpmath.mpf(1)
        for k in range(n, 1, -1):
            adj_e[k - 1] = adj_e[k] * mpmath.cos(e[k - 1])
        rows = {}
        for k in range(1, n + 1):
            rows["ξ%d" % (2 * k - 1)] = (mpmath.sin(e[k - 1]), mpmath.cos(e[k - 1]) * de[k - 1], adj_e[k],
                                         [mpmath.cos(e[k - 1])])
            rows["ξ%d" % (2 * k)] = (e[k], de[k], adj_e[k], [1, 1])
        return rows, de[n]


def same(exact, reference, digits=DIGITS - 3):
    """``exact`` (a SymPy number) evaluated at 50 digits agrees with ``reference`` to ``digits``."""
    with mpmath.workdps(DIGITS + 10):
        got = mpmath.mpf(str(sp.N(exact, DIGITS)))
        ref = mpmath.mpf(reference)
        return abs(got - ref) <= abs(ref) * mpmath.mpf(10) ** -digits or abs(got - ref) < mpmath.mpf(10) ** -60


@pytest.fixture(scope="module")
def deep():
    start = time.perf_counter()
    t = sg.table(sin_chain(30), wrt=x, at={x: 1}, exact=True)
    return t, time.perf_counter() - start


def test_thirty_deep_exact_table_is_fast(deep):
    t, seconds = deep
    assert len(t.rows) == 60
    assert seconds < 10, seconds  # was: never finished (values expanded as trees)


def test_every_column_of_the_deep_table_is_exact_to_fifty_digits(deep):
    t, _ = deep
    rows, grad = sin_chain_by_hand(30)
    for r in t.rows:
        value, tangent, adjoint, partials = rows[r.name]
        assert same(r.value, value), r.name
        assert same(r.tangents[0], tangent), r.name
        assert same(r.adjoint, adjoint), r.name
        assert all(same(p[3], q) for p, q in zip(r.partials, partials)), r.name
    assert same(t.gradient["x"], grad) and same(t.value, rows["ξ60"][0])


def test_large_values_are_numbers_by_name_with_no_float_inside(deep):
    t, _ = deep
    last = t.rows[-1]
    assert isinstance(last.value, Shared) and last.value.is_number and last.value.is_real
    assert not last.value.free_symbols
    d = t.to_dict()
    assert d["nodes"][-1]["exact_value"] == "1 + ξ59"  # the node's value over earlier ones, by name
    shared = d["exact_shared"]
    assert list(shared)[:1] == ["ξ12"] and "dL/dx" in shared
    # exact: no decimal point in any definition (the old fallback kept 30-digit Floats)
    assert not any(sp.sympify(s.replace("ξ", "xi").replace("(dL/d", "(").replace(" (from ", "_").replace(" on)", ""),
                              strict=False).atoms(sp.Float) for s in shared.values() if "/" not in s)


def test_json_definitions_rebuild_the_values(deep):
    t, _ = deep
    shared = t.to_dict()["exact_shared"]
    env = {}
    for name, definition in shared.items():
        if name.startswith("ξ"):
            e = sp.sympify(definition.replace("ξ", "xi"), locals={"xi%d" % k: sp.Symbol("xi%d" % k) for k in range(99)})
            env[sp.Symbol(name.replace("ξ", "xi"))] = sp.N(e.xreplace(env), 60)
    rows, _ = sin_chain_by_hand(30)
    assert same(env[sp.Symbol("xi60")], rows["ξ60"][0], 45)


def test_text_cells_show_decimals_and_small_tables_are_unchanged(deep):
    t, _ = deep
    assert "1.934563211" in str(t) and "ξ59" in str(t)
    small = sg.table(-y * sp.log(1 / (1 + sp.exp(-w * x))), wrt=w, at={x: 3, y: 1, w: 3})
    d = small.to_dict()
    assert d["exact_gradient"]["w"] == "-3/(1 + exp(9))" and "exact_shared" not in d
    assert not any(isinstance(v, Shared) for r in small.rows for v in (r.value, r.adjoint, *r.tangents))


def test_cancellation_is_caught_by_raising_the_working_precision():
    # two chains equal in value but not in form: their difference is exactly exp(-120·w)
    a, b = x, x
    for _ in range(8):
        a = sp.sin(a) + x
        b = 2 * sp.sin(b / 2) * sp.cos(b / 2) + x
    t = sg.table(a + sp.exp(-120 * w) - b, wrt=w, at={x: 1, w: 1})
    assert any(isinstance(r.value, Shared) for r in t.rows)
    assert same(t.value, mpmath.exp(-120), 30)
    assert max(t.value.at) >= 512  # 128 bits alone would have left only rounding noise of the two chains
    assert same(t.gradient["w"], -120 * mpmath.exp(-120), 30)


def test_branches_and_kinks_over_shared_values_evaluate():
    e = sin_chain(7)  # ≈ 1.93: the first branch, relu at a negative number, |e - 3| = 3 - e
    t = sg.table(sp.Piecewise((e ** 2, e > sp.Rational(3, 2)), (-e, True)) + sg.relu(e - 2) + sp.Abs(e - 3),
                 wrt=x, at={x: 1})
    with mpmath.workdps(70):
        v, dv = mpmath.mpf(1), mpmath.mpf(1)
        for _ in range(7):
            v, dv = mpmath.sin(v) + 1, mpmath.cos(v) * dv + 1
        value, grad = v ** 2 + (3 - v), (2 * v - 1) * dv
    assert isinstance(t.value, Shared) and same(t.value, value) and same(t.gradient["x"], grad)


def test_float_mode_is_unchanged_and_agrees(deep):
    t, _ = deep
    f = sg.table(sin_chain(30), wrt=x, at={x: 1}, exact=False)
    for a, b in zip(json.loads(t.to_json())["nodes"], json.loads(f.to_json())["nodes"]):
        assert a["value"] == pytest.approx(b["value"], rel=1e-14)
        assert a["adjoint"] == pytest.approx(b["adjoint"], rel=1e-12, abs=1e-15)
    assert "exact_shared" not in f.to_dict()


def test_activations_of_numeric_non_number_arguments():
    """relu(sin(1) - 2) and friends at an exact point: evaluated by sign, never a crash."""
    import mpmath
    from symgrad.functions import leaky_relu, relu, softplus

    x = sp.Symbol("x")
    expr = relu(sp.sin(x) - 2) + softplus(sp.sin(x)) + leaky_relu(sp.cos(x) - 1, sp.Rational(1, 10)) + relu(sp.sin(x))
    t = sg.table(expr, wrt=x, at={x: 1})
    mpmath.mp.dps = 30
    s, c = mpmath.sin(1), mpmath.cos(1)
    value = mpmath.log(1 + mpmath.exp(s)) + (c - 1) / 10 + s  # relu(sin 1 - 2) = 0, leaky slope 1/10 below 0
    grad = c / (1 + mpmath.exp(-s)) - s / 10 + c
    assert abs(float(t.value) - float(value)) < 1e-14
    assert abs(float(t.gradient["x"]) - float(grad)) < 1e-14
