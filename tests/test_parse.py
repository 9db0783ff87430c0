"""symgrad.parse: strings become the SymPy expressions Python would build, and nothing else runs."""

import ast
import builtins
import time

import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

from symgrad.errors import InputError, ParseError
from sympy.parsing import sympy_parser

from symgrad.functions import ACTIVATIONS, leaky_relu, relu, sigmoid, softplus
from symgrad import parse
from symgrad.parse import FUNCTIONS, MAX_LENGTH, parse_expr, parse_large_expr, parse_symbols, parse_values

x, y, w, z = sp.symbols("x y w z")

# (text, the expression Python builds from the same source with SymPy objects)
GOOD = {
    "lecture": ("-y*log(1/(1+exp(-w*x)))", -y * sp.log(1 / (1 + sp.exp(-w * x)))),
    "rational literal": ("1/2", sp.Rational(1, 2)),
    "rational arithmetic": ("x/3 + 2/3", x / 3 + sp.Rational(2, 3)),
    "float literal": ("0.5*x", 0.5 * x),
    "scientific": ("1e-3*x + 2.5E2", sp.Float(1e-3) * x + sp.Float(250.0)),
    "integer": ("12345678901234567890*x", sp.Integer(12345678901234567890) * x),
    "unary": ("-x + +y - -z", -x + y + z),
    "power right assoc": ("x**y**z", x ** (y ** z)),
    "neg power": ("-x**2", -(x ** 2)),
    "coefficient over sum": ("2*(x + 1)*y", 2 * (x + 1) * y),
    "division chain": ("x/y/z*w", x / y / z * w),
    "sub chain": ("x - y - z + w", x - y - z + w),
    "constants": ("pi*x + E**y", sp.pi * x + sp.exp(y)),
    "nested": ("exp(sin(x)**2 + log(y, 2))", sp.exp(sp.sin(x) ** 2 + sp.log(y, 2))),
    "sqrt": ("sqrt(x**2 + 1)", sp.sqrt(x ** 2 + 1)),
    "builtin aliases": ("abs(x) + max(x, y, 0) + min(x, 1)", sp.Abs(x) + sp.Max(x, y, 0) + sp.Min(x, 1)),
    "atan2": ("atan2(y, x)", sp.atan2(y, x)),
    "heaviside 2 args": ("Heaviside(x, 0)", sp.Heaviside(x, 0)),
    "activations": ("sigmoid(w*x) + relu(x) + softplus(y) + leaky_relu(x, 1/10)",
                    sigmoid(w * x) + relu(x) + softplus(y) + leaky_relu(x, sp.Rational(1, 10))),
    "activation on number": ("sigmoid(0) + relu(-2)", sp.Rational(1, 2)),
    "unusual names": ("self + t + lambda_ + reduce + tangents",
                      sp.Symbol("self") + sp.Symbol("t") + sp.Symbol("lambda_")
                      + sp.Symbol("reduce") + sp.Symbol("tangents")),
    "function names as symbols": ("gamma*exp(x)", sp.Symbol("gamma") * sp.exp(x)),
    "unicode name": ("α*ξ1", sp.Symbol("α") * sp.Symbol("ξ1")),
    "whitespace and newlines": ("  (x +\n y)  \n", x + y),
    "piecewise": ("Piecewise((x, x > 0), (0.1*x, True))", sp.Piecewise((x, x > 0), (0.1 * x, True))),
    "piecewise chained": ("Piecewise((1, 0 < x <= 1), (0, True))",
                          sp.Piecewise((1, sp.And(0 < x, x <= 1)), (0, True))),
    "piecewise combined": ("Piecewise((x, (x > 0) & ~(y < 1)), (y, True))",
                           sp.Piecewise((x, (x > 0) & ~(y < 1)), (y, True))),
    "piecewise or": ("Piecewise((x, (x >= 1) | (x <= -1)), (0, True))",
                     sp.Piecewise((x, (x >= 1) | (x <= -1)), (0, True))),
    "piecewise And Or Not": ("Piecewise((x, And(x > 0, Or(y == 1, Not(y != 2)))), (0, True))",
                             sp.Piecewise((x, sp.And(x > 0, sp.Or(sp.Eq(y, 1), sp.Not(sp.Ne(y, 2))))),
                                          (0, True))),
    "piecewise python and/or/not": ("Piecewise((x, x > 0 and not y > 0), (0, True))",
                                    sp.Piecewise((x, sp.And(x > 0, sp.Not(y > 0))), (0, True))),
}


@pytest.mark.parametrize("text, expected", GOOD.values(), ids=GOOD.keys())
def test_parses_to_what_python_builds(text, expected):
    assert parse_expr(text) == expected


# One call per whitelisted function, with the arguments it takes.
ARGS_FOR = {1: (x,), 2: (x, y)}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_whitelisted_function(name):
    function, fewest, _ = FUNCTIONS[name]
    args = ARGS_FOR[fewest]
    text = "%s(%s)" % (name, ", ".join(map(str, args)))
    assert parse_expr(text) == function(*args)


def test_log_with_base_and_variadic_max():
    assert parse_expr("log(x, 10)") == sp.log(x, 10)
    assert parse_expr("Max(x, y, z, 1)") == sp.Max(x, y, z, 1)


def test_symbols_are_plain_and_numbers_exact():
    parsed = parse_expr("x + 1/3")
    assert parsed.free_symbols == {sp.Symbol("x")}
    assert sp.Symbol("x").is_real is None  # no assumptions, same symbol a user creates
    assert parse_expr("1/3") == sp.Rational(1, 3) and parse_expr("1/3").is_Rational
    assert parse_expr("2**100") == sp.Integer(2) ** 100
    assert isinstance(parse_expr("0.25"), sp.Float)


def test_long_flat_chains_equal_sympy():
    xs = sp.symbols("x0:300")
    text = " + ".join("%d*%s" % (i, s) if i % 2 else "-%s/%d" % (s, i + 1) for i, s in enumerate(xs))
    expected = sp.Add(*((i * s) if i % 2 else (-s / (i + 1)) for i, s in enumerate(xs)))
    assert parse_expr(text) == expected
    product = parse_expr("*".join(map(str, xs[:100])) + "/" + "/".join(map(str, xs[100:200])))
    assert product == sp.Mul(*xs[:100]) / sp.Mul(*xs[100:200])
    assert parse_expr(" - ".join(["x"] * 500)) == x - 499 * x


# A small grammar of SymPy expressions. Re-parsing the printed form is not always the same
# tree (printing 2*(2 - y)*z and reading it back distributes the 2), so the reference is
# SymPy's own string parser, used here only as an oracle.
_leaves = st.sampled_from([x, y, w, sp.Integer(2), sp.Integer(-3), sp.Rational(1, 2), sp.pi])
_unary = st.sampled_from([sp.exp, sp.sin, sp.tanh, sp.Abs, sp.sqrt, sigmoid, relu, sp.atan])


def _extend(children):
    return st.one_of(
        st.tuples(_unary, children).map(lambda t: t[0](t[1])),
        st.tuples(children, children).map(lambda t: t[0] + t[1]),
        st.tuples(children, children).map(lambda t: t[0] * t[1]),
        st.tuples(children, children).map(lambda t: t[0] - t[1]),
        st.tuples(children, st.sampled_from([2, 3, -1])).map(lambda t: t[0] ** t[1]),
    )


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.recursive(_leaves, _extend, max_leaves=8))
def test_printed_expressions_parse_back(expr):
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo, sp.I):
        return  # e.g. 1/0 or sqrt(-3): the parser refuses these on purpose (tested below)
    text = sp.sstr(expr)
    assert parse_expr(text) == sympy_parser.parse_expr(text, local_dict=dict(ACTIVATIONS))


# name -> (input, a fragment the one-line message must contain)
BAD = {
    "attribute": ("().__class__", "attribute access"),
    "module attribute": ("sp.exp(x)", "bare name"),
    "subclasses walk": ("().__class__.__bases__[0].__subclasses__()", "attribute access"),
    "import os": ("__import__('os').system('echo hi')", "attribute access"),
    "bare import call": ("__import__('os')", "'__import__'"),
    "dunder name": ("__builtins__", "'__'"),
    "eval": ('eval("1")', "unknown function 'eval'"),
    "exec": ("exec('import os')", "unknown function 'exec'"),
    "open": ("open('/etc/passwd')", "unknown function 'open'"),
    "globals": ("globals()", "unknown function 'globals'"),
    "lambda": ("lambda: 1", "lambda is not allowed"),
    "list comprehension": ("[x for x in y]", "comprehensions"),
    "generator": ("sum(x for x in y)", "unknown function 'sum'"),
    "generator in known function": ("exp(x for x in y)", "comprehensions"),
    "subscript": ("x[0]", "subscripts"),
    "string": ("'abc'", "strings are not allowed"),
    "f-string": ("f'{x}'", "strings are not allowed"),
    "string argument": ("exp('x')", "strings are not allowed"),
    "keyword argument": ("leaky_relu(x, alpha=0.1)", "keyword arguments"),
    "double star": ("exp(**d)", "keyword arguments"),
    "starred": ("Max(*xs)", "starred"),
    "unknown function": ("foo(x)", "unknown function 'foo'; "),
    "lists known functions": ("foo(x)", "known functions are: Abs"),
    "typo suggestion": ("expp(x)", "did you mean 'exp'"),
    "case suggestion": ("Exp(x)", "did you mean 'exp'"),
    "alias suggestion": ("ln(x)", "did you mean 'log'"),
    "implicit multiplication": ("x(y + 1)", "x*(...)"),
    "number called": ("2(x + 1)", "write *"),
    "too many args": ("exp(x, y)", "exp() takes 1 argument, got 2"),
    "too few args": ("atan2(x)", "atan2() takes 2 arguments, got 1"),
    "leaky needs alpha": ("leaky_relu(x)", "leaky_relu() takes 2 arguments, got 1"),
    "empty max": ("Max()", "at least 1"),
    "caret": ("x^2", "use ** for powers"),
    "modulo": ("x % 2", "operator '%'"),
    "floor division": ("x // 2", "operator '//'"),
    "matmul": ("x @ y", "operator '@'"),
    "syntax": ("x + * y", "syntax error at column"),
    "unclosed": ("exp(x", "syntax error"),
    "incomplete": ("x +", "is the expression incomplete?"),
    "column counts leading spaces": ("  x + * y", "syntax error at column 7"),
    "keyword as name": ("x + lambda", "'lambda' is a Python keyword"),
    "statement": ("import os", "syntax error"),
    "assignment": ("x = 3", "syntax error"),
    "unicode power": ("x²", "syntax error"),
    "empty": ("", "empty expression"),
    "whitespace": ("   \n ", "empty expression"),
    "null byte": ("x\0", "null bytes"),
    "comparison outside piecewise": ("x > 0", "only allowed inside Piecewise"),
    "and outside piecewise": ("x & y", "only allowed inside Piecewise"),
    "True as number": ("True + x", "True is a condition"),
    "None": ("None", "not a number"),
    "ternary": ("x if y > 0 else y", "use Piecewise"),
    "tuple": ("x, y", "tuples are not allowed"),
    "list": ("[x]", "lists are not allowed"),
    "dict": ("{x: 1}", "dicts are not allowed"),
    "walrus": ("(a := 1)", "NamedExpr"),
    "piecewise non pair": ("Piecewise(x)", "(expression, condition) pairs"),
    "piecewise empty": ("Piecewise()", "at least one"),
    "piecewise symbol condition": ("Piecewise((x, y))", "condition must be a comparison"),
    "piecewise is": ("Piecewise((x, x is y))", "use <, <="),
    "piecewise unprotected &": ("Piecewise((x, x > 0 & x < 1), (0, True))", "wrap each in parentheses"),
    "infinity name": ("oo", "infinity"),
    "nan name": ("nan*x", "finite"),
    "float overflow": ("1e400*x", "too large for a float"),
    "imaginary": ("3j", "imaginary"),
    "division by zero": ("x/0", "division by zero"),
    "zero to negative power": ("0**-1 + x", "complex infinity"),
    "log of zero": ("log(0)", "complex infinity"),
    "log base one": ("log(x, 1)", "complex infinity"),
    "undefined": ("atan2(0, 0)", "undefined"),
    "complex constant": ("sqrt(-4)*x", "not a real number"),
    "huge power": ("9**9**9", "MAX_EXACT_DIGITS"),
    "huge negative power": ("(1/2)**-100000", "MAX_EXACT_DIGITS"),
    "huge factorial": ("gamma(10**7)", "MAX_EXACT_DIGITS"),
    "huge product": ("10**3000*10**3000", "MAX_EXACT_DIGITS"),
    "too deep": ("(" * 5000 + "x" + ")" * 5000, "MAX_DEPTH"),
    "too deep without brackets": ("-" * 500 + "x", "MAX_DEPTH"),
    "too deep calls": ("exp(" * 150 + "x" + ")" * 150, "MAX_DEPTH"),
    "too long": ("x+" * 100_000 + "x", "MAX_LENGTH"),
    "chain too long for python": ("+".join(["x"] * 20_000), "Python's parser"),
}


@pytest.mark.parametrize("text, fragment", BAD.values(), ids=BAD.keys())
def test_rejections_name_the_culprit(text, fragment):
    with pytest.raises(ParseError) as info:
        parse_expr(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message and len(message) < 600


@pytest.mark.parametrize("value", [3, 3.0, None, sp.Symbol("x"), b"x"])
def test_non_str_input(value):
    with pytest.raises(ParseError, match="expected the expression as a str"):
        parse_expr(value)


INJECTIONS = [
    "__import__('os').system('touch {path}')",
    "__import__('subprocess').call(['touch', '{path}'])",
    "open('{path}', 'w')",
    "exec(\"open('{path}', 'w')\")",
    "eval(\"open('{path}', 'w')\")",
    "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0](['touch', '{path}'])",
    "(lambda: open('{path}', 'w'))()",
    "getattr(__builtins__, 'open')('{path}', 'w')",
    "exp(x).func.__globals__['os'].system('touch {path}')",
]


@pytest.mark.parametrize("template", INJECTIONS)
def test_injection_has_no_side_effect(template, tmp_path):
    path = tmp_path / "pwned"
    with pytest.raises(ParseError):
        parse_expr(template.format(path=path))
    assert not path.exists()


def test_never_evaluates_strings(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the parser must not evaluate code")
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    real_compile = builtins.compile

    def ast_only(source, filename, mode, flags=0, *args, **kwargs):
        assert flags & ast.PyCF_ONLY_AST, "the parser may compile to an ast, never to code"
        return real_compile(source, filename, mode, flags, *args, **kwargs)
    monkeypatch.setattr(builtins, "compile", ast_only)
    monkeypatch.setattr("sympy.parsing.sympy_parser.parse_expr", forbidden)
    for text, expected in GOOD.values():
        assert parse_expr(text) == expected
    for text, _ in BAD.values():
        with pytest.raises(ParseError):
            parse_expr(text)


HUGE = {
    "5000 nested parentheses": "(" * 5000 + "x" + ")" * 5000,
    "200k characters": "x+" * 100_000 + "x",
    "deep unary": "-" * (MAX_LENGTH - 1) + "x",
    "deep power tower": "**".join(["x"] * 10_000),
    "nested calls at the limit": "exp(" * 99 + "x" + ")" * 99,
    "long sum within limits": "+".join("x%d" % i for i in range(2500)),
    "balanced sum": "+".join("(x%d+y%d)" % (i, i) for i in range(2000)),
    "many brackets": "*".join("(x+%d)" % i for i in range(2000)),
    "exact power tower": "2**2**2**2**2**2",
    "half integer gamma": "gamma(10**6 + 1/2)",
}


@pytest.mark.parametrize("text", HUGE.values(), ids=HUGE.keys())
def test_huge_inputs_finish_with_result_or_one_line_error(text):
    start = time.perf_counter()
    try:
        parse_expr(text)
    except ParseError as exc:
        assert "\n" not in str(exc)
    assert time.perf_counter() - start < 10  # a hang guard, not a benchmark


def test_within_limits_is_a_result():
    assert parse_expr("+".join("x%d" % i for i in range(2500))) == sp.Add(*sp.symbols("x0:2500"))
    assert parse_expr("-" * 98 + "x") == x  # 98 signs and the name: 99 levels
    assert parse_expr("exp(" * 99 + "x" + ")" * 99).count(sp.exp) == 99


# -- parse_large_expr (files) -------------------------------------------------------------


def test_large_sum_in_parts_equals_sympy():
    xs = sp.symbols("x0:20000")
    start = time.perf_counter()
    assert parse_large_expr("\n+ ".join(map(str, xs))) == sp.Add(*xs)
    assert time.perf_counter() - start < 60  # about 2 s on an idle machine
    with pytest.raises(ParseError, match="too long"):
        parse_expr(" + ".join(map(str, xs[:5000])))  # the command-line argument path keeps its limits


# Each term holds what a naive split at + or - would cut: exponents, unary signs, brackets.
_TERMS = ["2.5e-3*X", "X**-2", "2*-y", "-(X - y)", "(X + 1)**2", "exp(-X + y)", "-w", "+z",
          "X/2*y", "3*X**2", "Piecewise((X, X > 0), (-X, True))", "1e+2", "sin(X)/-3"]


def test_large_sum_splits_only_between_terms():
    terms = [_TERMS[k % len(_TERMS)].replace("X", f"x{k}") for k in range(4000)]
    text = " - ".join(terms)
    expected = sp.Add(*(parse_expr(t) if k == 0 else -parse_expr(t) for k, t in enumerate(terms)))
    assert parse_large_expr(text) == expected
    for t in _TERMS:  # short inputs: exactly what parse_expr builds
        assert parse_large_expr(t.replace("X", "x") + " - y") == parse_expr(t.replace("X", "x") + " - y")


def test_large_input_lines_and_comments():
    assert parse_large_expr("# the loss\n x**2   # square\n\n - 3*x\r\n + 1\n") == x ** 2 - 3 * x + 1
    assert parse_large_expr("x +\n y") == x + y


LARGE_BAD = {
    "long product": ("*".join(["x"] * 5000), "too long"),
    "comparison outside brackets": (" + ".join(["x"] * 4000) + " < 1", "too long"),
    "keyword": (" + ".join(["x"] * 4000) + " if x else y", "too long"),
    "error in a part": (" + ".join(["x"] * 2500 + ["foo(x)"] + ["x"] * 2500), "unknown function 'foo'"),
    "syntax error": (" + ".join(["x"] * 4000) + " +", "syntax error"),
    "empty": ("# nothing\n", "empty expression"),
    "not a str": (b"x", "expected the expression as a str"),
}


@pytest.mark.parametrize("text, fragment", LARGE_BAD.values(), ids=LARGE_BAD.keys())
def test_large_input_errors_are_one_line(text, fragment):
    with pytest.raises(ParseError, match=fragment) as info:
        parse_large_expr(text)
    assert "\n" not in str(info.value)


def test_large_input_length_limit(monkeypatch):
    monkeypatch.setattr(parse, "LARGE_MAX_LENGTH", 1000)
    with pytest.raises(ParseError, match="LARGE_MAX_LENGTH"):
        parse_large_expr("x+" * 600 + "x")
    assert parse_large_expr("x+" * 400 + "x") == 401 * x  # over MAX_LENGTH is fine here


# -- parse_symbols and parse_values ------------------------------------------------------


def test_parse_symbols():
    assert parse_symbols("w1,w2") == [sp.Symbol("w1"), sp.Symbol("w2")]
    assert parse_symbols(" w , b ") == [w, sp.Symbol("b")]
    assert parse_symbols("self") == [sp.Symbol("self")]


@pytest.mark.parametrize("text, fragment", [
    ("", "no symbol names"),
    ("w,,b", "empty name"),
    ("w,", "empty name"),
    ("1w", "'1w' is not a valid symbol name"),
    ("w-1", "'w-1'"),
    ("lambda", "'lambda'"),
    ("__class__", "reserved"),
    ("pi", "reserved constant"),
    ("w,b,w", "'w' is listed twice"),
])
def test_parse_symbols_rejects(text, fragment):
    with pytest.raises(InputError) as info:
        parse_symbols(text)
    assert fragment in str(info.value)


def test_parse_values():
    values = parse_values("x=3,y=1,w=3")
    assert values == {x: 3, y: 1, w: 3} and list(values) == [x, y, w]
    assert parse_values("x=1/3, w=-2.5") == {x: sp.Rational(1, 3), w: sp.Float(-2.5)}
    assert parse_values("x=pi/4,y=exp(1)") == {x: sp.pi / 4, y: sp.E}
    assert parse_values("x=atan2(1, 2),y=Max(1, 2)") == {x: sp.atan2(1, 2), y: 2}


@pytest.mark.parametrize("text, fragment", [
    ("", "no values given"),
    ("x3", "'x3' has no '='"),
    ("x=3,y", "'y' has no '='"),
    ("=3", "no name before '='"),
    ("x=", "value of 'x' is empty"),
    ("x=3,,y=1", "empty item"),
    ("x=3,", "empty item"),
    ("1x=3", "'1x' is not a valid symbol name"),
    ("x=3,x=4", "'x' is given twice"),
    ("x=abc", "value of 'x' is 'abc', which is not a number"),
    ("x=y+1", "which is not a number"),
    ("x=3+", "value of 'x' is '3+', which is not a number: syntax error"),
    ("x=1/0", "division by zero"),
    ("x=sqrt(-1)", "not a real number"),
    ("x==3", "value of 'x' is '=3'"),
    ("x=__import__('os')", "value of 'x'"),
])
def test_parse_values_rejects(text, fragment):
    with pytest.raises(InputError) as info:
        parse_values(text)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_non_str_symbols_and_values():
    with pytest.raises(InputError):
        parse_symbols(["w"])
    with pytest.raises(InputError):
        parse_values({"x": 3})
