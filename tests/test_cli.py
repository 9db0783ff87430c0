"""The command line: right numbers in every format, and every bad input is one line, exit 2."""

import ast
import json
import os
import subprocess
import sys
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


def test_grad_exact_values_and_leading_minus(capsys):
    # "-x*..." starts with '-', which argparse would otherwise take for an option.
    code, out, err = run(capsys, "grad", "-x*sin(w)", "--wrt", "w", "--at", "x=1/3,w=pi/2")
    assert (code, err) == (0, "")
    value, dw = (float(line.split(" = ")[1]) for line in out.splitlines())
    assert value == pytest.approx(-1 / 3) and dw == pytest.approx(0, abs=1e-15)


def test_grad_ignores_values_of_absent_symbols(capsys):
    code, out, _ = run(capsys, "grad", "w*x", "--wrt", "w", "--at", "x=2,w=5,unused=1")
    assert code == 0 and out.splitlines()[1] == "dL/dw = 2.0"


# Points outside the domain (log of 0, sqrt of a negative, 0**0) are ordinary user input:
# the answer may be inf/nan or a one-line error, never an internal error.
OUTSIDE_DOMAIN = {
    "grad log at 0": ["grad", "log(w*x)", "--wrt", "w", "--at", "x=0,w=1"],
    "grad forward log at 0": ["grad", "log(w*x)", "--wrt", "w", "--at", "x=0,w=1", "--mode", "forward"],
    "grad power at 0": ["grad", "w**x", "--wrt", "w", "--at", "x=0,w=0"],
    "grad negative base": ["grad", "x**w", "--wrt", "w", "--at", "x=-1,w=1/3"],
    "table log at 0": ["table", "log(w*x)", "--wrt", "w", "--at", "x=0,w=1"],
    "table sqrt of negative": ["table", "sqrt(w*x)", "--wrt", "w", "--at", "x=-1,w=1"],
    "table acosh below 1": ["table", "acosh(w*x)", "--wrt", "w", "--at", "x=0.5,w=0.5"],
    "table Heaviside at 0": ["table", "Heaviside(w*x, 1/2)", "--wrt", "w", "--at", "x=0,w=0"],
}


@pytest.mark.parametrize("argv", OUTSIDE_DOMAIN.values(), ids=OUTSIDE_DOMAIN.keys())
def test_points_outside_the_domain_are_not_internal_errors(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert "internal error" not in err and code in (0, 2)


# -- code -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_code_prints_python_source(capsys, mode):
    code, out, err = run(capsys, "code", LECTURE, "--wrt", "w", "--mode", mode)
    assert (code, err) == (0, "")
    assert out.lstrip().startswith("def ")
    ast.parse(out)  # valid Python
    assert "def " in out and "(x, y, w" in out  # --args default: the other symbols, sorted


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


def _program(*argv):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "symgrad", *argv], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


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
