"""The command line: ``symgrad table|grad|code "EXPR" ...``; user errors are one line on stderr.

Exit codes: 0 success, 2 a usage or input error (``symgrad: error: ...``), 1 a bug in
symgrad (``symgrad: internal error: ... (please report)``).

>>> main(["grad", "x**2*w", "--wrt", "w", "--at", "x=3,w=1"])
value = 9.0
dL/dw = 9.0
0
"""

import argparse
import difflib
import json
import math
import os
import sys

from . import __version__, compile as compile_expr, table as make_table
from .errors import InputError, SymgradError
from .parse import parse_expr, parse_symbols, parse_values

COMMANDS = ("table", "grad", "code")
TABLE_FORMATS = ("text", "markdown", "latex", "json", "html")
MODES = ("reverse", "forward")
LECTURE = '"-y*log(1/(1+exp(-w*x)))"'


class _UsageError(Exception):
    """Raised instead of argparse's print-and-exit, so main() reports every error one way."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message)


def build_parser():
    """The argparse parser of ``symgrad`` (its --help is the reference for the options)."""
    parser = _Parser(prog="symgrad", description="Derivative tables, gradients and generated "
                     "NumPy code for an expression, via elementary nodes ξ1, ξ2, ...",
                     epilog=f"example: symgrad table {LECTURE} --wrt w --at x=3,y=1,w=3")
    parser.add_argument("--version", action="version", version=f"symgrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{table,grad,code}", parser_class=_Parser)
    commands.required = True

    def command(name, help_text, example):
        sub = commands.add_parser(name, help=help_text, description=help_text,
                                  epilog=f"example: symgrad {name} {example}")
        sub.add_argument("expr", metavar="EXPR", help="the expression, e.g. " + LECTURE)
        sub.add_argument("--wrt", required=True, metavar="W[,W2...]",
                         help="symbols to differentiate with respect to, comma-separated")
        return sub

    table = command("table", "print the ξ derivative table at a point",
                    f"{LECTURE} --wrt w --at x=3,y=1,w=3 --format markdown")
    table.add_argument("--at", required=True, metavar="NAME=VALUE,...",
                       help="the point: a number for every symbol, e.g. x=3,y=1,w=1/3")
    table.add_argument("--format", choices=TABLE_FORMATS, default="text")
    table.add_argument("--float", action="store_true",
                       help="evaluate with floats instead of exact SymPy numbers")

    grad = command("grad", "print the value and gradient at a point",
                   f"{LECTURE} --wrt w --at x=3,y=1,w=3 --mode forward")
    grad.add_argument("--at", required=True, metavar="NAME=VALUE,...",
                      help="the point: a number for every symbol, e.g. x=3,y=1,w=1/3")
    grad.add_argument("--mode", choices=MODES, default="reverse",
                      help="reverse: one backward sweep; forward: one tangent sweep per --wrt")
    grad.add_argument("--format", choices=("text", "json"), default="text")

    code = command("code", "print the generated NumPy source", f"{LECTURE} --wrt w --args x,y")
    code.add_argument("--args", metavar="A[,B...]",
                      help="the other inputs, in order (default: the remaining symbols, sorted)")
    code.add_argument("--mode", choices=MODES, default="reverse")
    return parser


def main(argv=None):
    """Run the command line on ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _check_command(argv)
        try:
            args = build_parser().parse_args(_protect_expressions(argv))
        except SystemExit as done:  # --help and --version print, then exit cleanly
            return done.code or 0
        print(RUN[args.command](args))
        return 0
    except (SymgradError, _UsageError) as exc:
        _complain("error", exc)
        return 2
    except BrokenPipeError:  # the reader left early, e.g. `symgrad table ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush is quiet
        return 1
    except KeyboardInterrupt:
        _complain("error", "interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug must still end in one readable line
        _complain("internal error", f"{type(exc).__name__}: {exc} (please report)")
        return 1


def _complain(kind, message):
    print(f"symgrad: {kind}: {' '.join(str(message).split())}", file=sys.stderr)


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
    space; symgrad has no one-dash options but -h, so a leading space is added (and
    stripped again by the parser).
    """
    return [" " + a if a.startswith("-") and not a.startswith("--") and a != "-h" and a != "-"
            else a for a in argv]


def _point(expr, at_text):
    """Parse --at and check it gives a value for every symbol of the expression."""
    at = parse_values(at_text)
    given = {s.name for s in at}
    missing = sorted(s.name for s in expr.free_symbols if s.name not in given)
    if missing:
        raise InputError(f"--at gives no value for {', '.join(map(repr, missing))}; "
                         f"add {','.join(m + '=...' for m in missing)}")
    used = {s.name for s in expr.free_symbols}
    # A value for a symbol the expression lacks is harmless (as in symgrad.table).
    return {s: v for s, v in at.items() if s.name in used}


def _float(name, value):
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"value of {name!r} is {value}, which is too large for a float")
    return number


def _number(x, as_json):
    x = float(x)
    return None if as_json and not math.isfinite(x) else x


def run_table(args):
    expr = parse_expr(args.expr)
    wrt = parse_symbols(args.wrt)
    at = _point(expr, args.at)
    if args.float:  # evaluated here so that pi/4 or exp(1) become floats like 0.25 does
        at = {s: v.evalf(17) for s, v in at.items()}
    t = make_table(expr, wrt=[w.name for w in wrt], at=at, exact=not args.float)
    render = {"text": str, "markdown": type(t).to_markdown, "latex": type(t).to_latex,
              "json": type(t).to_json, "html": type(t).to_html}
    return render[args.format](t)


def run_grad(args):
    expr = parse_expr(args.expr)
    wrt = parse_symbols(args.wrt)
    values = {s.name: _float(s.name, v) for s, v in _point(expr, args.at).items()}
    fn = compile_expr(expr, wrt=[w.name for w in wrt])  # names: a typo gets a suggestion
    if args.mode == "reverse":
        value, gradient = fn.value_and_grad(**values)
    else:
        gradient = {}
        for w in wrt:  # one forward sweep per parameter, each with a unit tangent
            value, gradient[w.name] = fn.jvp({w.name: 1.0}, **values)
    as_json = args.format == "json"
    value = _number(value, as_json)
    gradient = {name: _number(g, as_json) for name, g in gradient.items()}
    if as_json:
        return json.dumps({"value": value, "gradient": gradient, "mode": args.mode}, indent=2)
    return "\n".join([f"value = {value!r}", *(f"dL/d{n} = {g!r}" for n, g in gradient.items())])


def run_code(args):
    expr = parse_expr(args.expr)
    wrt = parse_symbols(args.wrt)
    if args.args is None:
        others = sorted((s for s in expr.free_symbols if s not in wrt), key=lambda s: s.name)
    else:
        others = parse_symbols(args.args)
    fn = compile_expr(expr, wrt=[w.name for w in wrt], args=[s.name for s in others])
    return fn.sources[args.mode].rstrip("\n")


RUN = {"table": run_table, "grad": run_grad, "code": run_code}
