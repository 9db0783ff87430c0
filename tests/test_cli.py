"""The command line: right numbers in every format, and every bad input is one line, exit 2."""

import ast
import io
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sympy as sp

from symgrad.cli import main

ROOT = Path(__file__).resolve().parents[1]
LECTURE = "-y*log(1/(1+exp(-w*x)))"
x, y, w = sp.symbols("x y w")
L = -y * sp.log(1 / (1 + sp.exp(-w * x)))
POINT = {x: 3, y: 1, w: 3}
VALUE = float(L.subs(POINT))                    # log(1 + exp(-9)) ≈ 1.2340218972e-4
DL_DW = float(sp.diff(L, w).subs(POINT))        # -3/(1 + exp(9)) ≈ -3.70183727959e-4
DL_DX = float(sp.diff(L, x).subs(POINT))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_reference_numbers():
    # The truth comes from SymPy; these pins catch a mistyped reference expression. Note
    # 1.23394575986e-4 is σ(-9) = 1/(1 + e^9), the adjoint of ξ1, not the value of L.
    assert VALUE == pytest.approx(1.2340218972e-4, rel=1e-9)
    assert DL_DW == pytest.approx(-3.70183727959e-4, rel=1e-9)
    assert DL_DW == pytest.approx(-3 * 1.23394575986e-4, rel=1e-9)


# -- table ------------------------------------------------------------------------------


def test_table_json_has_value_gradient_and_nodes(capsys):
    code, out, err = run(capsys, "table", LECTURE, "--wrt", "w", "--at", "x=3,y=1,w=3", "--format", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["value"] == pytest.approx(VALUE, rel=1e-12)
    assert data["gradient"]["w"] == pytest.approx(DL_DW, rel=1e-12)
    assert data["nodes"] and all({"name", "expr", "value", "tangent", "adjoint"} <= set(n) for n in data["nodes"])
    assert data["nodes"][-1]["value"] == pytest.approx(VALUE, rel=1e-12)


def test_table_float_agrees_with_exact(capsys):
    args = ["table", LECTURE, "--wrt", "w", "--at", "x=3,y=1,w=3", "--format", "json"]
    exact = json.loads(run(capsys, *args)[1])
    floats = json.loads(run(capsys, *args, "--float")[1])
    assert floats["value"] == pytest.approx(exact["value"], rel=1e-12)
    assert floats["gradient"]["w"] == pytest.approx(exact["gradient"]["w"], rel=1e-12)


def test_table_float_with_symbolic_values(capsys):
    code, out, err = run(capsys, "table", "sin(x)*w", "--wrt", "w", "--at", "x=pi/6,w=exp(1)",
                         "--float", "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["gradient"]["w"] == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize("fmt, marker", [
    ("text", "dL/dw"), ("markdown", "|"), ("latex", "\\"), ("html", "<table"), ("json", '"gradient"'),
])
def test_table_every_format(capsys, fmt, marker):
    code, out, err = run(capsys, "table", LECTURE, "--wrt", "w", "--at", "x=3,y=1,w=3", "--format", fmt)
    assert (code, err) == (0, "")
    assert marker in out
    assert out.endswith("\n") and not out.endswith("\n\n\n")


def test_table_several_wrt(capsys):
    code, out, err = run(capsys, "table", LECTURE, "--wrt", "w,x", "--at", "x=3,y=1,w=3", "--format", "json")
    assert code == 0
    gradient = json.loads(out)["gradient"]
    assert gradient["w"] == pytest.approx(DL_DW) and gradient["x"] == pytest.approx(DL_DX)


# -- grad -------------------------------------------------------------------------------


def test_grad_text(capsys):
    code, out, err = run(capsys, "grad", LECTURE, "--wrt", "w", "--at", "x=3,y=1,w=3")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split(" = ")[0] for line in lines] == ["value", "dL/dw"]
    assert float(lines[0].split(" = ")[1]) == pytest.approx(VALUE, rel=1e-12)
    assert float(lines[1].split(" = ")[1]) == pytest.approx(DL_DW, rel=1e-12)


def test_grad_modes_agree(capsys):
    results = {}
    for mode in ("reverse", "forward"):
        code, out, err = run(capsys, "grad", LECTURE, "--wrt", "w,x", "--at", "x=3,y=1,w=3",
                             "--mode", mode, "--format", "json")
        assert (code, err) == (0, "")
        results[mode] = json.loads(out)
        assert results[mode]["mode"] == mode
    assert set(results["reverse"]) == {"value", "gradient", "mode"}
    for name, exact in (("w", DL_DW), ("x", DL_DX)):
        assert results["reverse"]["gradient"][name] == pytest.approx(exact, rel=1e-12)
        assert results["forward"]["gradient"][name] == pytest.approx(exact, rel=1e-12)
    assert results["forward"]["value"] == pytest.approx(results["reverse"]["value"], rel=1e-15)


LEADING_MINUS = {  # every way to give "-x*w" (or --x*w), which starts like an option
    "bare": ["-x*w", "--wrt", "w", "--at", "x=2,w=3"],
    "after --": ["--", "-x*w", "--wrt", "w", "--at", "x=2,w=3"],
    "-- after the options": ["--wrt", "w", "--at", "x=2,w=3", "--", "-x*w"],
    "-- with two dashes": ["--", "--x*w", "--wrt", "w", "--at", "x=2,w=3"],
    "-e": ["-e", "-x*w", "--wrt", "w", "--at", "x=2,w=3"],
    "--expr": ["--wrt", "w", "--expr", "-x*w", "--at", "x=2,w=3"],
    "--expr=": ["--wrt", "w", "--at", "x=2,w=3", "--expr=-x*w"],
    "--expr with two dashes": ["--wrt", "w", "--at", "x=2,w=3", "--expr", "--x*w"],
}


@pytest.mark.parametrize("argv", LEADING_MINUS.values(), ids=LEADING_MINUS.keys())
def test_expressions_starting_with_minus(capsys, argv):
    sign = -1 if "--x*w" not in argv else 1
    code, out, err = run(capsys, "grad", *argv)
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"value = {sign * 6.0}", f"dL/dw = {sign * 2.0}"]


@pytest.mark.parametrize("command", ["table", "code"])
def test_leading_minus_for_table_and_code(capsys, command):
    at = ["--at", "x=2,w=3"] if command == "table" else []
    with_option = run(capsys, command, "-e", "-x*w", "--wrt", "w", *at)
    assert run(capsys, command, "--", "-x*w", "--wrt", "w", *at) == with_option and with_option[0] == 0


def test_expression_from_standard_input(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("-x*w  # comment\n + θ\n".encode()),
                                                      encoding="utf-8"))
    code, out, err = run(capsys, "grad", "-", "--wrt", "w", "--at", "x=2,w=3,θ=1")
    assert (code, err) == (0, "") and out.splitlines() == ["value = -5.0", "dL/dw = -2.0"]
    monkeypatch.setattr("sys.stdin", io.StringIO("x**2"))  # a stream without .buffer
    assert run(capsys, "grad", "-e", "-", "--wrt", "x", "--at", "x=3")[1] == "value = 9.0\ndL/dx = 6.0\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = run(capsys, "grad", "-", "--wrt", "x", "--at", "x=3")
    assert (code, out) == (2, "") and "empty expression" in err and err.count("\n") == 1


def test_expression_from_a_file(capsys, tmp_path):
    path = tmp_path / "loss.txt"
    path.write_text(LECTURE.strip('"') + "\n", encoding="utf-8")
    assert run(capsys, "grad", f"@{path}", "--wrt", "w", "--at", "x=3,y=1,w=3") == \
        run(capsys, "grad", LECTURE, "--wrt", "w", "--at", "x=3,y=1,w=3")
    path.write_bytes(b"x*\xff")
    code, out, err = run(capsys, "grad", "-e", f"@{path}", "--wrt", "x", "--at", "x=3")
    assert (code, out) == (2, "") and "is not UTF-8 text" in err and err.count("\n") == 1


def test_a_20000_term_sum_through_a_file(capsys, tmp_path):
    # Python's parser refuses a chain of more than ~3,000 operators and the command line
    # 50,000 characters; a file may hold any sum. 100 inputs keep the generated code small.
    n, m = 20_000, 100
    path = tmp_path / "sum.txt"
    path.write_text("# one term per line\n" + "\n".join(f"- w*x{k % m}" if k % 3 == 0 else f"+ w*x{k % m}"
                                                        for k in range(n)) + "\n", encoding="utf-8")
    xs = {f"x{j}": j / 10 for j in range(m)}
    at = ",".join(f"{name}={value}" for name, value in xs.items())
    coefficient = {j: sum(-1 if k % 3 == 0 else 1 for k in range(j, n, m)) for j in range(m)}
    expected = sum(coefficient[j] * xs[f"x{j}"] for j in range(m))
    start = time.perf_counter()
    code, out, err = run(capsys, "grad", f"@{path}", "--wrt", "w", "--at", at, "--at", "w=2")
    seconds = time.perf_counter() - start
    assert (code, err) == (0, "")
    value, dw = (float(line.split(" = ")[1]) for line in out.splitlines())
    assert value == pytest.approx(2 * expected, rel=1e-12) and dw == pytest.approx(expected, rel=1e-12)
    assert seconds < 60, seconds  # about 2 s on an idle machine


def test_grad_exact_values_and_leading_minus(capsys):
    # "-x*..." starts with '-', which argparse would otherwise take for an option.
    code, out, err = run(capsys, "grad", "-x*sin(w)", "--wrt", "w", "--at", "x=1/3,w=pi/2")
    assert (code, err) == (0, "")
    value, dw = (float(line.split(" = ")[1]) for line in out.splitlines())
    assert value == pytest.approx(-1 / 3) and dw == pytest.approx(0, abs=1e-15)


# Points outside the domain (log of 0, sqrt of a negative, 0**0) are ordinary user input:
# table and grad both refuse them in one line, grad naming the results that are not finite.
OUTSIDE_DOMAIN = {
    "log at 0": (["log(w*x)", "--wrt", "w", "--at", "x=0,w=1"], "value = -inf and dL/dw = nan are"),
    "log below 0": (["log(w*x)", "--wrt", "w", "--at", "x=-1,w=1"], "value = nan is"),
    "sqrt at 0": (["sqrt(w*x)", "--wrt", "w", "--at", "x=1,w=0"], "dL/dw = inf is"),
    "sqrt of negative": (["sqrt(w*x)", "--wrt", "w", "--at", "x=-1,w=1"], "value = nan and dL/dw = nan"),
    "power at 0": (["w**x", "--wrt", "w", "--at", "x=0,w=0"], "dL/dw = nan is"),
    "negative base": (["x**w", "--wrt", "w", "--at", "x=-1,w=1/3"], "value = nan"),
    "acosh below 1": (["acosh(w*x)", "--wrt", "w", "--at", "x=0.5,w=0.5"], "value = nan"),
    "two parameters": (["log(w)*x", "--wrt", "x,w", "--at", "x=1,w=0"],
                       "value = -inf, dL/dx = -inf and dL/dw = inf are"),
}


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("argv, fragment", OUTSIDE_DOMAIN.values(), ids=OUTSIDE_DOMAIN.keys())
def test_grad_refuses_points_outside_the_domain_like_table(capsys, argv, fragment, mode, fmt):
    code, out, err = run(capsys, "grad", *argv, "--mode", mode, "--format", fmt)
    assert (code, out) == (2, "") and err.count("\n") == 1, err
    if mode == "reverse":  # forward mode may meet a different nan (0*inf) on the way
        assert fragment in err
    point = argv[argv.index("--at") + 1].replace(",", ", ")
    assert err.startswith("symgrad: error: ") and f"infinite or undefined at the point {point}; " in err
    assert err.rstrip().endswith("choose a point inside the expression's domain")
    code, out, err = run(capsys, "table", *argv)  # the table refuses the same point
    assert (code, out) == (2, "") and err.startswith("symgrad: error: ") and err.count("\n") == 1
    assert "domain" in err


def test_table_heaviside_at_0_is_not_an_internal_error(capsys):
    code, _, err = run(capsys, "table", "Heaviside(w*x, 1/2)", "--wrt", "w", "--at", "x=0,w=0")
    assert "internal error" not in err and code in (0, 2)


# -- repeated options ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["table", "grad"])
def test_repeated_at_and_wrt_merge(capsys, command):
    merged = run(capsys, command, LECTURE, "--wrt", "w", "--wrt", "x", "--at", "x=3", "--at", "y=1,w=3")
    single = run(capsys, command, LECTURE, "--wrt", "w,x", "--at", "x=3,y=1,w=3")
    assert merged == single and merged[0] == 0


def test_repeated_wrt_keeps_order_and_the_same_value_twice_is_harmless(capsys):
    code, out, _ = run(capsys, "grad", "w*x", "--wrt", "x", "--wrt", "w,x", "--at", "x=2,w=5", "--at", "x=4/2")
    assert code == 0 and out.splitlines()[1:] == ["dL/dx = 5.0", "dL/dw = 2.0"]


@pytest.mark.parametrize("command", ["table", "grad"])
def test_a_name_given_two_values_is_refused(capsys, command):
    code, out, err = run(capsys, command, "w*x", "--wrt", "w", "--at", "x=1,w=5", "--at", "x=2")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err == "symgrad: error: --at gives 'x' two values, 1 and 2; give it one\n"


# -- --at names -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["table", "grad"])
def test_values_for_absent_symbols_are_refused(capsys, command):
    code, out, err = run(capsys, command, "w*x", "--wrt", "w", "--at", "x=2,w=5,ww=1")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert "'ww', which is not in the expression (did you mean 'w'?); its symbols: w, x" in err
    code, _, err = run(capsys, command, "w*x", "--wrt", "w", "--at", "x=2,w=5", "--at", "unused=1")
    assert code == 2 and "'unused', which is not in the expression; its symbols: w, x" in err


# -- code -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["all", "reverse", "forward"])
def test_code_prints_python_source(capsys, mode):
    code, out, err = run(capsys, "code", LECTURE, "--wrt", "w", "--mode", mode)
    assert (code, err) == (0, "")
    ast.parse(out)  # valid Python
    assert "import numpy as np" in out and "(x, y, w" in out  # --args default: the other symbols, sorted
    functions = {"all": ["value", "value_and_grad", "grad", "jvp"], "reverse": ["value_and_grad"],
                 "forward": ["jvp"]}[mode]
    assert [n.name for n in ast.parse(out).body if isinstance(n, ast.FunctionDef)
            and not n.name.startswith("_")] == functions


CALLS = {  # what the printed module must answer: ((function, args), expected)
    "all": [("value", (3.0, 1.0, 3.0), VALUE), ("grad", (3.0, 1.0, 3.0), (DL_DW,)),
            ("value_and_grad", (3.0, 1.0, 3.0), (VALUE, (DL_DW,))),
            ("jvp", (3.0, 1.0, 3.0, 1.0), (VALUE, DL_DW))],
    "reverse": [("value_and_grad", (3.0, 1.0, 3.0), (VALUE, (DL_DW,)))],
    "forward": [("jvp", (3.0, 1.0, 3.0, 1.0), (VALUE, DL_DW))],
}


def _flat(r):
    return sum(map(_flat, r), []) if isinstance(r, (tuple, list)) else [float(r)]


def _run_module(tmp_path, source, calls):
    """Run the printed module in a fresh python (no symgrad on its path) and make the calls."""
    module = tmp_path / "generated.py"
    module.write_text(source + "\n", encoding="utf-8")
    script = ("import json, runpy, sys, numpy as np\n"
              "ns = runpy.run_path(sys.argv[1])\n"
              "flat = lambda r: sum(map(flat, r), []) if isinstance(r, (tuple, list)) else [float(r)]\n"
              "print(json.dumps([flat(ns[f](*a)) for f, a in json.loads(sys.argv[2])]))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-I", "-c", script, str(module), json.dumps(calls)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("mode", CALLS)
def test_printed_code_runs_on_its_own(capsys, tmp_path, mode):
    code, out, err = run(capsys, "code", LECTURE, "--wrt", "w", "--mode", mode)
    assert (code, err) == (0, "")
    assert "symgrad" not in out.replace("Generated by symgrad", "")  # needs numpy only
    results = _run_module(tmp_path, out, [(f, a) for f, a, _ in CALLS[mode]])
    for got, (_, _, expected) in zip(results, CALLS[mode]):
        assert got == pytest.approx(_flat(expected), rel=1e-12)


def test_printed_code_with_special_functions_runs(capsys, tmp_path):
    pytest.importorskip("scipy")
    expr = "erf(w*x) + loggamma(w**2 + 1) + Max(w, x) + Piecewise((w, x > 0), (x, True)) + sigmoid(w)"
    w0, x0 = 1.2, 0.5
    exact = sp.sympify(expr.replace("sigmoid(w)", "1/(1 + exp(-w))"), locals={"w": w, "x": x})
    expected = [float(exact.subs({w: w0, x: x0})), float(sp.diff(exact, w).subs({w: w0, x: x0}))]
    for mode in ("all", "reverse"):
        code, out, _ = run(capsys, "code", expr, "--wrt", "w", "--mode", mode)
        assert code == 0
        assert _run_module(tmp_path, out, [("value_and_grad", (x0, w0))]) == [pytest.approx(expected, rel=1e-9)]


def test_code_args_order(capsys):
    code, out, _ = run(capsys, "code", LECTURE, "--wrt", "w", "--args", "y,x")
    assert code == 0 and "(y, x, w" in out


# -- errors -----------------------------------------------------------------------------

BAD = {
    "subcommand typo": (["tabel", "x", "--wrt", "x", "--at", "x=1"], "did you mean 'table'"),
    "unknown subcommand": (["frobnicate"], "unknown command 'frobnicate'"),
    "no command": ([], "no command given"),
    "unknown function": (["grad", "expp(x)", "--wrt", "x", "--at", "x=1"], "did you mean 'exp'"),
    "syntax error": (["grad", "x +* y", "--wrt", "x", "--at", "x=1,y=1"], "syntax error at column"),
    "caret": (["table", "x^2", "--wrt", "x", "--at", "x=1"], "use ** for powers"),
    "missing --at": (["grad", "x*y", "--wrt", "x"], "--at"),
    "missing --wrt": (["table", "x*y", "--at", "x=1,y=2"], "--wrt"),
    "missing --at value": (["grad", "x*y", "--wrt", "x", "--at"], "expected one argument"),
    "missing a symbol's value": (["grad", "x*y", "--wrt", "x", "--at", "x=1"], "no value for 'y'"),
    "non-numeric value": (["table", "x*y", "--wrt", "x", "--at", "x=1,y=abc"],
                          "value of 'y' is 'abc', which is not a number"),
    "value without =": (["grad", "x", "--wrt", "x", "--at", "x"], "has no '='"),
    "duplicate value": (["grad", "x", "--wrt", "x", "--at", "x=1,x=2"], "given twice"),
    "bad wrt name": (["grad", "x", "--wrt", "x-1", "--at", "x=1"], "not a valid symbol name"),
    "duplicate wrt": (["grad", "x", "--wrt", "x,x", "--at", "x=1"], "listed twice"),
    "wrt not in expression": (["grad", "x*y", "--wrt", "z", "--at", "x=1,y=2"], "not in the expression"),
    "value too large": (["grad", "x", "--wrt", "x", "--at", "x=exp(1000)"], "too large for a float"),
    "bad mode": (["grad", "x", "--wrt", "x", "--at", "x=1", "--mode", "sideways"], "invalid choice"),
    "bad format": (["table", "x", "--wrt", "x", "--at", "x=1", "--format", "pdf"], "invalid choice"),
    "unknown option": (["table", "x", "--wrt", "x", "--at", "x=1", "--colour"], "unrecognized"),
    "code arg overlap": (["code", "x*y", "--wrt", "x", "--args", "x,y"], "both in args and in wrt"),
    "code arg missing": (["code", "x*y", "--wrt", "x", "--args", "z"], "neither args nor wrt"),
    "injection": (["grad", "__import__('os').system('echo hi')", "--wrt", "x", "--at", "x=1"],
                  "attribute access"),
    "injection in a value": (["grad", "x", "--wrt", "x", "--at", "x=eval('1')"], "unknown function 'eval'"),
    "too deep": (["grad", "(" * 5000 + "x" + ")" * 5000, "--wrt", "x", "--at", "x=1"], "MAX_DEPTH"),
    "no expression": (["grad", "--wrt", "x", "--at", "x=1"], "no expression given"),
    "expression twice": (["grad", "x", "-e", "x", "--wrt", "x", "--at", "x=1"], "given twice"),
    "-e without expression": (["grad", "--wrt", "x", "--at", "x=1", "-e"], "expected one argument"),
    "-- without expression": (["grad", "--wrt", "x", "--at", "x=1", "--"], "no expression given"),
    "missing file": (["grad", "@/no/such/file", "--wrt", "x", "--at", "x=1"],
                     "cannot read the expression file '/no/such/file': No such file or directory"),
    "a directory as the file": (["grad", "@/", "--wrt", "x", "--at", "x=1"], "cannot read the expression file"),
    "double minus without --": (["grad", "--x", "--wrt", "x", "--at", "x=1"], "unrecognized arguments: --x"),
}


@pytest.mark.parametrize("argv, fragment", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_exit_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("symgrad: error: ") and err.count("\n") == 1
    assert fragment in err
    assert "internal error" not in err and "Traceback" not in err


def test_injection_through_the_cli_has_no_side_effect(capsys, tmp_path):
    path = tmp_path / "pwned"
    code, _, _ = run(capsys, "table", "__import__('os').system('touch %s')" % path,
                     "--wrt", "x", "--at", "x=1")
    assert code == 2 and not path.exists()


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "table" in out and "grad" in out and "code" in out
    code, out, _ = run(capsys, "table", "--help")
    assert code == 0 and "--wrt" in out and "--format" in out
    for command in ("table", "grad", "code"):
        code, out, _ = run(capsys, command, "--help")
        text = " ".join(out.split())
        assert code == 0 and "-e EXPR, --expr EXPR" in text and "@FILE" in text and "standard input" in text
        assert "--wrt w --wrt b is --wrt w,b" in text and "follow --" in text
        assert command == "code" or "--at x=3 --at y=1 is --at x=3,y=1" in text
    code, out, _ = run(capsys, "code", "--help")
    assert "all: the whole module" in " ".join(out.split())
    code, out, _ = run(capsys, "grad", "--help")
    assert "not finite" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("symgrad ")


def test_internal_errors_are_one_line_exit_1(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")
    monkeypatch.setattr("symgrad.cli.make_table", broken)
    code, out, err = run(capsys, "table", "x", "--wrt", "x", "--at", "x=1")
    assert code == 1 and out == ""
    assert err == "symgrad: internal error: RuntimeError: simulated bug (please report)\n"


# -- as a program -----------------------------------------------------------------------


def _env(**extra):
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **extra)


def _program(*argv, **env):
    return subprocess.run([sys.executable, "-m", "symgrad", *argv], capture_output=True, text=True,
                          env=_env(**env), cwd=ROOT, timeout=120, encoding="utf-8", errors="replace")


def _columns(rule):
    return [i for i, c in enumerate(rule) if c != " " and (i == 0 or rule[i - 1] == " ")]


def test_ascii_output_stream_gets_ascii(tmp_path):
    done = _program("table", LECTURE, "--wrt", "w", "--at", "x=3,y=1,w=3", PYTHONIOENCODING="ascii")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.isascii() and "xi1" in done.stdout and "dxi1/dw = -x" in done.stdout
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["xi", "definition", "local", "partial", "value", "partial", "value",
                                "dxi/dw", "dL/dxi"]
    starts = _columns(lines[1])  # the rule, now of '-', still lines up with every row
    assert set(lines[1]) == {"-", " "} and len(starts) == 7
    for line in [lines[0]] + lines[2:8]:
        assert all(line[i] != " " and line[i - 1:i] in ("", " ") for i in starts), line
    assert "~" in done.stdout and "L = xi6 = " in done.stdout
    unicode = _program("table", LECTURE, "--wrt", "w", "--at", "x=3,y=1,w=3", PYTHONIOENCODING="utf-8")
    assert len(_columns(unicode.stdout.splitlines()[1])) == len(starts)  # the same columns, wider
    for fmt in ("markdown", "html", "latex", "json"):
        done = _program("table", LECTURE, "--wrt", "w", "--at", "x=3,y=1,w=3", "--format", fmt,
                        PYTHONIOENCODING="ascii")
        assert done.returncode == 0 and done.stdout.isascii() and done.stderr == ""
    code = _program("code", LECTURE, "--wrt", "w", PYTHONIOENCODING="ascii")
    assert code.returncode == 0 and code.stdout.isascii() and "dxi2/dxi1" in code.stdout
    assert _run_module(tmp_path, code.stdout, [("grad", (3.0, 1.0, 3.0))]) == [[pytest.approx(DL_DW, rel=1e-12)]]


@pytest.mark.parametrize("argv", [["--help"], ["table", "--help"], ["--version"]])
def test_ascii_help(argv):
    done = _program(*argv, PYTHONIOENCODING="ascii")
    assert (done.returncode, done.stderr) == (0, "") and done.stdout.isascii() and "symgrad" in done.stdout
    assert argv == ["--version"] or " xi" in done.stdout


def test_ascii_error_stream_and_c_locale():
    done = _program("table", "log(w*x)", "--wrt", "w", "--at", "x=0,w=1", PYTHONIOENCODING="ascii")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.isascii() and "(node xi1 = w*x)" in done.stderr and done.stderr.count("\n") == 1
    done = _program("table", LECTURE, "--wrt", "w", "--at", "x=3,y=1,w=3", LC_ALL="C", LANG="C",
                    PYTHONIOENCODING="")
    assert done.returncode == 0 and done.stderr == "" and "1 + exp(-w*x)" in done.stdout


def test_ascii_stdout_in_process(capsys, monkeypatch):
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr("sys.stdout", stream)
    assert main(["table", "x**2*w", "--wrt", "w", "--at", "x=3,w=1", "--format", "markdown"]) == 0
    text = stream.buffer.getvalue().decode("ascii")
    assert "| xi | definition |" in text and "dxi1/dx = 2\\*x" in text and "L = xi2 = 9; dL/dw = 9" in text


def test_broken_pipe_ends_quietly():
    # The reader is gone before symgrad writes: the write fails with EPIPE.
    argv = [sys.executable, "-m", "symgrad", "table", LECTURE, "--wrt", "w", "--at", "x=3,y=1,w=3"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=ROOT)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) in (0, 141) and err == b""
    # ... and through a shell, as people write it: `symgrad table ... | head -1`.
    script = f"{' '.join(map(shlex.quote, argv))} --format latex | head -1; echo \"rc=${{PIPESTATUS[0]}}\""
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=_env(), cwd=ROOT,
                          timeout=120)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("% symgrad table") and lines[1] in ("rc=0", "rc=141")
    assert done.stderr == ""


def test_python_dash_m_success():
    done = _program("grad", LECTURE, "--wrt", "w", "--at", "x=3,y=1,w=3", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["gradient"]["w"] == pytest.approx(DL_DW, rel=1e-12)


def test_python_dash_m_error():
    done = _program("table", "exec('import os')", "--wrt", "w", "--at", "w=1")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("symgrad: error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_grad_hessian_flag_prints_second_derivatives():
    import json as _json
    import subprocess as _sp
    import sys as _sys
    r = _sp.run([_sys.executable, "-m", "symgrad", "grad", "x**3*y", "--wrt", "x,y", "--at", "x=2,y=5",
                 "--hessian", "--format", "json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    h = _json.loads(r.stdout)["hessian"]
    # d2/dx2 x^3 y = 6xy = 60, d2/dxdy = 3x^2 = 12, d2/dy2 = 0
    assert h == {"x": {"x": 60.0, "y": 12.0}, "y": {"x": 12.0, "y": 0.0}}
