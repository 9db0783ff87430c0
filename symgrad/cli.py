"""The command line: ``symgrad table|grad|code "EXPR" ...``; user errors are one line on stderr.

Exit codes: 0 success, 2 a usage or input error (``symgrad: error: ...``), 1 a bug in
symgrad (``symgrad: internal error: ... (please report)``), 141 the reader of the output
left early (``symgrad table ... | head -1``), as for a program ended by SIGPIPE.

>>> main(["grad", "x**2*w", "--wrt", "w", "--at", "x=3", "--at", "w=1"])
value = 9.0
dL/dw = 9.0
0
"""

import argparse
import ast
import contextlib
import difflib
import json
import math
import os
import re
import sys
import unicodedata

import sympy as sp

from . import __version__, compile as compile_expr, table as make_table
from .errors import InputError, SymgradError
from .parse import parse_expr, parse_large_expr, parse_symbols, parse_values
from .publish import default_width

COMMANDS = ("table", "grad", "code", "graph", "explain", "check-table", "node")
TABLE_FORMATS = ("text", "markdown", "latex", "json", "html")
MODES = ("reverse", "forward")
LECTURE = '"-y*log(1/(1+exp(-w*x)))"'
EXPR_HELP = (f"the expression, e.g. {LECTURE}; one starting with - may also follow --, as in "
             "-- -x*w; - reads it from standard input, @FILE from a file (any length; line "
             "breaks are spaces, # starts a comment)")
# What an output stream that cannot show them gets instead (the rest: Greek names, NFKD, '?').
ASCII = {"∂": "d", "≈": "~", "─": "-", "—": "--", "…": "...", "·": "*", "×": "*", "≤": "<=",
         "≥": ">=", "→": "->", "√": "sqrt"}


class _UsageError(Exception):
    """Raised instead of argparse's print-and-exit, so main() reports every error one way."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message)

    def _print_message(self, message, file=None):  # --help, --version: ASCII where needed
        if message:
            _write(file or sys.stderr, message, end="")


def build_parser():
    """The argparse parser of ``symgrad`` (its --help is the reference for the options)."""
    parser = _Parser(prog="symgrad", description="Derivative tables, gradients and generated "
                     "NumPy code for an expression, via elementary nodes ξ1, ξ2, ...",
                     epilog=f"example: symgrad table {LECTURE} --wrt w --at x=3,y=1,w=3")
    parser.add_argument("--version", action="version", version=f"symgrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{%s}" % ",".join(COMMANDS), parser_class=_Parser)
    commands.required = True

    def command(name, help_text, example, at=True):
        sub = commands.add_parser(name, help=help_text, description=help_text,
                                  epilog=f"example: symgrad {name} {example}")
        sub.add_argument("expr", nargs="?", metavar="EXPR", help=EXPR_HELP)
        sub.add_argument("-e", "--expr", dest="expr_option", metavar="EXPR",
                         help="the expression as an option, instead of EXPR")
        sub.add_argument("--wrt", required=True, action="append", metavar="W[,W2...]",
                         help="symbols to differentiate with respect to, comma-separated; "
                         "may be repeated: --wrt w --wrt b is --wrt w,b")
        if at:
            sub.add_argument("--at", required=True, action="append", metavar="NAME=VALUE,...",
                             help="the point: a number for every symbol and no other, e.g. "
                             "x=3,y=1,w=1/3; may be repeated: --at x=3 --at y=1 is --at x=3,y=1")
        return sub

    table = command("table", "print the ξ derivative table at a point",
                    f"{LECTURE} --wrt w --at x=3,y=1,w=3 --format markdown")
    table.add_argument("--format", choices=TABLE_FORMATS, default="text")
    table.add_argument("--width", type=int, metavar="N",
                       help="fit the text table in N columns: cells wrap, or one block per node where the "
                       "columns would get too narrow; 0: no limit (default: the terminal's width; no limit "
                       "when the output is not a terminal)")
    table.add_argument("--float", action="store_true",
                       help="evaluate with floats instead of exact SymPy numbers")
    table.add_argument("--order", type=int, choices=(1, 2), default=1,
                       help="2: also the tangent of every adjoint along each --wrt (forward-over-reverse, "
                       "columns d(dL/dξ)/dw) and the Hessian")
    table.add_argument("--rewrite", action="store_true",
                       help="tabulate the chain after the stability rewrites, the one 'symgrad code' numbers "
                       "its comments by (default: the literal chain, which compile(expr, rewrite=False) numbers)")

    grad = command("grad", "print the value and gradient at a point (an error where one is "
                   "not finite)", f"{LECTURE} --wrt w --at x=3,y=1,w=3 --mode forward")
    grad.add_argument("--mode", choices=MODES, default="reverse",
                      help="reverse: one backward sweep; forward: one tangent sweep per --wrt")
    grad.add_argument("--format", choices=("text", "json"), default="text")
    grad.add_argument("--hessian", action="store_true",
                      help="also print the Hessian d2L/da db for every pair of --wrt parameters")

    code = command("code", "print the generated NumPy module, ready to run",
                   f"{LECTURE} --wrt w --args x,y", at=False)
    code.add_argument("--args", metavar="A[,B...]",
                      help="the other inputs, in order (default: the remaining symbols, sorted)")
    code.add_argument("--mode", choices=("all", *MODES), default="all",
                      help="all: the whole module (value, value_and_grad, grad, jvp); reverse: "
                      "value_and_grad only, forward: jvp only, each with what it needs")
    code.add_argument("--module", action="store_true",
                      help="the standalone module instead (symgrad.export): value, grad, value_and_grad, jvp "
                      "and hvp with the compiled function's argument checks, and selfcheck(); NumPy only")
    code.add_argument("--flavour", choices=("numpy", "array-api"), default="numpy",
                      help="with --module: numpy (the default), or array-api: the module that runs on the "
                      "caller's array library (PyTorch, JAX, CuPy, Dask, array-api-strict, NumPy) through "
                      "array_api_compat; no hvp")
    code.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    _teacher_commands(commands, command)
    return parser


def _teacher_commands(commands, command):
    """The teacher's kit: graph pictures, chain-rule paths, table checking, node code."""
    pic = command("graph", "draw the derivative computation graph at a point (SVG or DOT)",
                  f"{LECTURE} --wrt w --at x=3,y=1,w=3 -o graph.svg")
    pic.add_argument("--format", choices=("svg", "dot"), default="svg")
    pic.add_argument("--view", choices=("backward", "forward"), default="backward",
                     help="backward: adjoints dL/dξ, arrows from a node to its arguments; forward: tangents")
    pic.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    exp = command("explain", "list every chain-rule path from the output to one --wrt, their sum, "
                  "and how reverse mode groups them", f"{LECTURE} --wrt w --at x=3,y=1,w=3")
    exp.add_argument("--format", choices=("text", "json"), default="text")
    chk = command("check-table", "check a hand-derived table (Markdown or CSV, in symgrad's layout) "
                  "cell by cell; exit code 0 when every cell is right, 1 otherwise",
                  f"{LECTURE} --wrt w --at x=3,y=1,w=3 --table student.md")
    chk.add_argument("--table", required=True, metavar="FILE", help="the student's table (- for standard input)")
    chk.add_argument("--format", choices=("text", "json"), default="text")
    node = commands.add_parser("node", help="print a function's forward_pass and backward_pass",
                               description="print an elementary function's forward_pass(inputs) and "
                               "backward_pass(inputs, incoming_gradient), from its rule",
                               epilog="example: symgrad node sigmoid")
    node.add_argument("function", metavar="FUNCTION", help="a function name such as sigmoid, tanh, exp, mul")


def main(argv=None):
    """Run the command line on ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _check_command(argv)
        try:
            args = build_parser().parse_args(_protect_expressions(argv))
        except SystemExit as done:  # --help and --version print, then exit cleanly
            return done.code or 0
        result, code = RUN[args.command](args), 0
        if isinstance(result, tuple):  # (text, exit code): check-table's verdict
            result, code = result
        if result is not None:
            _write(sys.stdout, result, table=args.command == "table")
        return code
    except (SymgradError, _UsageError) as exc:
        _complain("error", exc)
        return 2
    except BrokenPipeError:  # the reader left early, e.g. `symgrad table ... | head -1`
        with contextlib.suppress(OSError, ValueError, AttributeError):  # so exit's flush is quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        _complain("error", "interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug must still end in one readable line
        _complain("internal error", f"{type(exc).__name__}: {exc} (please report)")
        return 1


def _complain(kind, message):
    _write(sys.stderr, f"symgrad: {kind}: {' '.join(str(message).split())}")


def _write(stream, text, table=False, end="\n"):
    """Print ``text``, in ASCII (xi1 for ξ1) where the stream cannot encode it."""
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        text = _ascii_table(text) if table else _ascii(text)
    stream.write(text + end)
    stream.flush()  # here, so that a broken pipe is met inside main()


def _ascii(text):
    def one(char):
        if char in ASCII:
            return ASCII[char]
        name = unicodedata.name(char, "")
        if name.startswith(("GREEK SMALL LETTER ", "GREEK CAPITAL LETTER ")):
            word = name.split()[-1].lower()
            return word if "SMALL" in name else word.capitalize()
        plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        return plain or "?"
    return "".join(c if c < "\x80" else one(c) for c in text)


def _ascii_table(text):
    """``_ascii`` for an aligned text table (its second line a ─ rule), realigned."""
    lines = text.split("\n")
    if len(lines) < 2 or not lines[1].startswith("─"):
        return _ascii(text)
    starts = [m.start() for m in re.finditer("─+", lines[1])]
    end = lines.index("") if "" in lines else len(lines)
    rows = [[_ascii(line[a:b].rstrip()) for a, b in zip(starts, starts[1:] + [None])]
            for line in lines[:end]]
    widths = [max(len(r[i]) for k, r in enumerate(rows) if k != 1) for i in range(len(starts))]
    rows[1] = ["-" * wd for wd in widths]
    table = ["  ".join(c.ljust(wd) for c, wd in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(table + [_ascii(line) for line in lines[end:]])


def _check_command(argv):
    """Name the command the user probably meant; argparse only lists the choices."""
    words = [a for a in argv if not a.startswith("-")]
    if not words and not any(a in ("-h", "--help", "--version") for a in argv):
        raise _UsageError(f"no command given; use one of: {', '.join(COMMANDS)} "
                          "(symgrad --help explains them)")
    if words and words[0] not in COMMANDS and argv[0] == words[0]:
        close = difflib.get_close_matches(words[0], COMMANDS, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise _UsageError(f"unknown command {words[0]!r}; {hint}commands are: {', '.join(COMMANDS)}")


def _protect_expressions(argv):
    """Keep an expression such as "-y*log(x)" from being read as an option.

    argparse treats any word starting with '-' as an option, except words containing a
    space; symgrad's only one-dash options are -h, -e and -o, so other such words get a leading
    space (stripped again by the parser). The word after -e, --expr or -- is always the
    expression ('--' itself is dropped, so options may follow it).
    """
    out, words = [], iter(argv)
    for word in words:
        if word in ("--", "-e", "--expr"):
            expr = next(words, None)
            out += ([] if word == "--" else [word]) + ([] if expr is None else [_protect(expr)])
        else:
            out.append(word if word.startswith("--") or word in ("-h", "-e", "-o") else _protect(word))
    return out


def _protect(word):
    return " " + word if word.startswith("-") and word != "-" else word


def _expression(args):
    """The expression, from EXPR or -e: its text, standard input (-) or a file (@FILE)."""
    given = [e for e in (args.expr, args.expr_option) if e is not None]
    if len(given) != 1:
        raise _UsageError("the expression is given twice (as EXPR and as -e); give it once"
                          if given else "no expression given; write it after the command, "
                          f"e.g. symgrad {args.command} {LECTURE} --wrt w ...")
    text = given[0]
    if text == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        return parse_large_expr(_decode(stdin.read(), "standard input") if stdin else sys.stdin.read())
    if text.startswith("@"):  # no expression starts with @ (it is only a binary operator)
        try:
            with open(text[1:], "rb") as file:
                return parse_large_expr(_decode(file.read(), repr(text[1:])))
        except OSError as exc:
            raise InputError(f"cannot read the expression file {text[1:]!r}: "
                             f"{exc.strerror or exc}") from None
    return parse_expr(text)


def _decode(data, where):
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where} is not UTF-8 text (byte {exc.start})") from None


def _wrt(args):
    """The symbols of every --wrt, in order; one named twice counts once."""
    merged = {}
    for text in args.wrt:
        merged.update((s.name, s) for s in parse_symbols(text))
    return list(merged.values())


def _point(expr, at_texts):
    """Merge the --at options and check they give a value for each symbol, and only those."""
    at, names = {}, {s.name: s for s in expr.free_symbols}
    for text in at_texts:
        for symbol, value in parse_values(text).items():
            if symbol in at and (at[symbol] - value).is_zero is not True:
                raise InputError(f"--at gives {symbol.name!r} two values, {_show(at[symbol])} "
                                 f"and {_show(value)}; give it one")
            at.setdefault(symbol, value)
    for symbol in at:
        if symbol.name not in names:
            close = difflib.get_close_matches(symbol.name, list(names), 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(f"--at gives a value for {symbol.name!r}, which is not in the "
                             f"expression{hint}; its symbols: {', '.join(sorted(names)) or 'none'}")
    missing = sorted(n for n in names if names[n] not in at)
    if missing:
        raise InputError(f"--at gives no value for {', '.join(map(repr, missing))}; "
                         f"add {','.join(m + '=...' for m in missing)}")
    return at


def _show(number):
    return sp.sstr(number, full_prec=False)


def _float(name, value):
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"value of {name!r} is {value}, which is too large for a float")
    return number


def run_table(args):
    expr = _expression(args)
    wrt = _wrt(args)
    at = _point(expr, args.at)
    if args.float:  # evaluated here so that pi/4 or exp(1) become floats like 0.25 does
        at = {s: v.evalf(17) for s, v in at.items()}
    if args.width is not None and args.format != "text":
        raise _UsageError(f"--width is for the text table; --format {args.format} has no width")
    t = make_table(expr, wrt=[w.name for w in wrt], at=at, exact=not args.float, order=args.order,
                   rewrite=args.rewrite)
    if args.format == "text":
        width = args.width if args.width is not None else default_width() if _is_terminal(sys.stdout) else 0
        out = t.to_text(width=width)
        try:
            out.encode(getattr(sys.stdout, "encoding", None) or "ascii")
        except (UnicodeEncodeError, LookupError):  # laid out again in ASCII, so the columns still fit
            out = t.to_text(width=width, translate=_ascii)
        return out
    render = {"markdown": type(t).to_markdown, "latex": type(t).to_latex,
              "json": type(t).to_json, "html": type(t).to_html}
    return render[args.format](t)


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def run_grad(args):
    expr = _expression(args)
    wrt = _wrt(args)
    point = _point(expr, args.at)
    values = {s.name: _float(s.name, v) for s, v in point.items()}
    fn = compile_expr(expr, wrt=[w.name for w in wrt])  # names: a typo gets a suggestion
    if args.mode == "reverse":
        value, gradient = fn.value_and_grad(**values)
    else:
        gradient = {}
        for w in wrt:  # one forward sweep per parameter, each with a unit tangent
            value, gradient[w.name] = fn.jvp({w.name: 1.0}, **values)
    results = {"value": float(value), **{f"dL/d{n}": float(g) for n, g in gradient.items()}}
    bad = [f"{label} = {number!r}" for label, number in results.items() if not math.isfinite(number)]
    if bad:  # as the table says of a node, with the point (the table refuses it too)
        where = ", ".join(f"{s.name}={_show(v)}" for s, v in point.items())
        bad = ", ".join(bad[:-1]) + " and " + bad[-1] if len(bad) > 1 else bad[0]
        raise InputError(f"{bad} {'is' if ' and ' not in bad else 'are'} infinite or "
                         f"undefined at the point {where}; choose a point inside the expression's domain")
    hessian = None
    if getattr(args, "hessian", False):
        hessian = {a: {b: float(v) for b, v in row.items()} for a, row in fn.hessian(**values).items()}
        bad = [f"d2L/d{a}d{b}" for a, row in hessian.items() for b, v in row.items() if not math.isfinite(v)]
        if bad:
            raise InputError(f"{bad[0]} is infinite or undefined at this point; choose a point inside the domain")
    if args.format == "json":
        gradient = {name: results[f"dL/d{name}"] for name in gradient}
        out = {"value": results["value"], "gradient": gradient, "mode": args.mode}
        if hessian is not None:
            out["hessian"] = hessian
        return json.dumps(out, indent=2)
    lines = [f"{label} = {number!r}" for label, number in results.items()]
    if hessian is not None:
        lines += [f"d2L/d{a}d{b} = {v!r}" for a, row in hessian.items() for b, v in row.items()]
    return "\n".join(lines)


def run_code(args):
    expr = _expression(args)
    wrt = _wrt(args)
    if args.args is None:
        others = sorted((s for s in expr.free_symbols if s not in wrt), key=lambda s: s.name)
    else:
        others = parse_symbols(args.args)
    if args.module and args.mode != "all":
        raise _UsageError("--module writes the whole standalone module; --mode reverse|forward cuts the plain "
                          "code to one function: give one of them")
    if args.flavour != "numpy" and not args.module:
        raise _UsageError(f"--flavour {args.flavour} is for --module (the standalone module); without it "
                          "symgrad code prints the NumPy module")
    fn = compile_expr(expr, wrt=[w.name for w in wrt], args=[s.name for s in others])
    if args.module:
        out = fn.export(flavour=args.flavour).rstrip("\n")
    elif args.mode == "all":
        out = fn.source.rstrip("\n")
    else:
        out = _needed_by(fn.source, ast.parse(fn.sources[args.mode]).body[0].name)
    if args.output is None:
        return out
    try:
        with open(args.output, "w", encoding="utf-8", newline="\n") as file:
            file.write(out + "\n")
    except OSError as exc:
        raise InputError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
    return None


def _needed_by(source, function):
    """The module ``source`` cut to ``function``, its imports and the definitions it uses."""
    body, lines = ast.parse(source).body, source.split("\n")
    defines = {}
    for stmt in body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt]
        defines.update((getattr(t, "name", getattr(t, "id", None)), stmt) for t in targets)
    keep, todo = set(), [function]
    while todo:
        stmt = defines.get(todo.pop())
        if stmt is not None and id(stmt) not in keep:
            keep.add(id(stmt))
            todo += [n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)]
    starts = [min([s.lineno] + [d.lineno for d in getattr(s, "decorator_list", [])]) - 1 for s in body]
    out = []
    for stmt, start, end in zip(body, starts, starts[1:] + [len(lines)]):  # with its blank lines
        if id(stmt) in keep or isinstance(stmt, (ast.Import, ast.ImportFrom)) or \
                stmt is body[0] and isinstance(stmt, ast.Expr):  # the imports and the docstring
            out += lines[start:end]
    return "\n".join(out).rstrip("\n")


def run_graph(args):
    from .picture import graph

    expr = _expression(args)
    pic = graph(expr, wrt=[w.name for w in _wrt(args)], at=_point(expr, args.at), view=args.view)
    out = pic.to_svg() if args.format == "svg" else pic.to_dot()
    if args.output is None:
        return out
    try:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(out + "\n")
    except OSError as exc:
        raise InputError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
    return None


def run_explain(args):
    from .explain import explain

    expr = _expression(args)
    wrt = _wrt(args)
    if len(wrt) != 1:
        raise InputError(f"explain follows the paths to one symbol; --wrt gives {len(wrt)} "
                         f"({', '.join(w.name for w in wrt)}): run it once for each")
    e = explain(expr, wrt=wrt[0].name, at=_point(expr, args.at))
    return e.to_json() if args.format == "json" else str(e)


def run_check_table(args):
    from .check_table import check_table

    expr = _expression(args)
    if args.table == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(args.table, "rb") as file:
                text = _decode(file.read(), repr(args.table))
        except OSError as exc:
            raise InputError(f"cannot read the table {args.table!r}: {exc.strerror or exc}") from None
    report = check_table(expr, text, wrt=[w.name for w in _wrt(args)], at=_point(expr, args.at))
    return (report.to_json() if args.format == "json" else str(report)), 0 if report.ok else 1


def run_node(args):
    from .node_code import node_code

    return node_code(args.function)


RUN = {"table": run_table, "grad": run_grad, "code": run_code, "graph": run_graph,
       "explain": run_explain, "check-table": run_check_table, "node": run_node}
