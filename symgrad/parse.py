"""Safe parsing of expression strings into SymPy: a whitelist walk over Python's ast, never eval.

The string is parsed by :func:`ast.parse` and the tree is walked by an explicit stack (no
recursion), accepting only numbers, names, arithmetic, whitelisted function calls and
``Piecewise``. Nothing from the string is ever executed, looked up as an attribute or
imported, so ``__import__('os').system(...)`` is just a rejected call.

Limits (module constants, so a caller may adjust them):

- ``MAX_LENGTH`` characters of input;
- ``MAX_DEPTH`` levels of nesting (brackets, calls, operators; a flat chain such as
  ``a + b - c + d`` counts as one level); Python's own parser also refuses chains longer
  than about 3,000 operators, which is reported the same way;
- ``MAX_EXACT_DIGITS``: exact numbers (``2**10**6``, ``gamma(10**6)``) with more digits
  are refused before they are computed, instead of hanging.

:func:`parse_large_expr`, for text read from a file, allows ``LARGE_MAX_LENGTH`` characters
and a top-level sum of any number of terms.

>>> parse_expr("-y*log(1/(1 + exp(-w*x)))")
-y*log(1/(1 + exp(-w*x)))
>>> parse_symbols("w1, w2")
[w1, w2]
>>> parse_values("x=3, y=1/3, w=pi/4")
{x: 3, y: 1/3, w: pi/4}
"""

import ast
import builtins
import difflib
import io
import itertools
import keyword
import math
import re
import tokenize
import unicodedata

import sympy as sp

from .errors import InputError, ParseError
from . import functions as F
from .functions import ACTIVATIONS

MAX_LENGTH = 50_000
LARGE_MAX_LENGTH = 10_000_000  # parse_large_expr, for files
MAX_DEPTH = 100
# Python refuses to print integers over 4,300 digits (sys.get_int_max_str_digits), so a
# table could not even show a larger exact number.
MAX_EXACT_DIGITS = 4_000
_MAX_EXACT_BITS = MAX_EXACT_DIGITS * 10 // 3  # 10/3 > log2(10): the bound errs on the safe side
# Smallest n whose gamma(n) = (n-1)! has more than MAX_EXACT_DIGITS digits.
_GAMMA_LIMIT = next(n for n in itertools.count(2) if math.lgamma(n) > MAX_EXACT_DIGITS * math.log(10))
# Chains up to this many operands are folded pairwise, exactly as Python would build them
# (so parse_expr("2*(x+1)*y") == 2*(x+1)*y); longer ones are built by one Add/Mul call,
# because SymPy re-flattens at every pairwise step and that is quadratic.
FOLD_LIMIT = 32

CONSTANTS = {"pi": sp.pi, "E": sp.E}
INFINITIES = ("oo", "zoo", "nan", "inf")

_UNARY = {"exp": sp.exp, "sqrt": sp.sqrt, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
          "asin": sp.asin, "acos": sp.acos, "atan": sp.atan, "sinh": sp.sinh,
          "cosh": sp.cosh, "tanh": sp.tanh, "asinh": sp.asinh, "acosh": sp.acosh,
          "atanh": sp.atanh, "erf": sp.erf, "erfc": sp.erfc, "Abs": sp.Abs, "abs": sp.Abs,
          "sign": sp.sign, "floor": sp.floor, "ceiling": sp.ceiling,
          "loggamma": sp.loggamma, "gamma": sp.gamma}
# name -> (SymPy callable, fewest arguments, most arguments or None for any number)
FUNCTIONS = {name: (f, 1, 1) for name, f in _UNARY.items()}
FUNCTIONS.update({"log": (sp.log, 1, 2), "atan2": (sp.atan2, 2, 2),
                  "Heaviside": (sp.Heaviside, 1, 2),
                  "Max": (sp.Max, 1, None), "max": (sp.Max, 1, None),
                  "Min": (sp.Min, 1, None), "min": (sp.Min, 1, None),
                  "log1p": (F.log1p, 1, 1), "expm1": (F.expm1, 1, 1), "logsumexp": (F.logsumexp, 1, None)})
FUNCTIONS.update({name: (cls, int(min(cls.nargs)), int(max(cls.nargs)))
                  for name, cls in ACTIVATIONS.items()})
# Boolean combinators, allowed only inside Piecewise conditions.
CONDITION_FUNCTIONS = {"And": (sp.And, 1, None), "Or": (sp.Or, 1, None), "Not": (sp.Not, 1, 1)}
KNOWN_FUNCTIONS = sorted([*FUNCTIONS, "Piecewise"], key=str.lower)
# Names people reach for that are not ours: suggested, never accepted.
_ALIASES = {"ln": "log", "arcsin": "asin", "arccos": "acos", "arctan": "atan",
            "arctan2": "atan2", "ceil": "ceiling", "lgamma": "loggamma", "sgn": "sign",
            "logistic": "sigmoid", "heaviside": "Heaviside", "fabs": "abs"}

_COMPARE = {ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge,
            ast.Eq: sp.Eq, ast.NotEq: sp.Ne}
_OPERATOR_TEXT = {ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<",
                  ast.RShift: ">>"}
_NOT_FINITE = {sp.S.ComplexInfinity: "complex infinity", sp.S.Infinity: "infinity",
               sp.S.NegativeInfinity: "minus infinity", sp.S.NaN: "undefined"}
_CONDITION_HINT = ("a Piecewise condition must be a comparison such as x > 0, True, or "
                   "conditions combined with &, |, ~ (or And, Or, Not)")
_VALUE, _CONDITION = "value", "condition"


def parse_expr(text):
    """Parse an expression string into a SymPy expression without executing anything.

    Names become plain ``sympy.Symbol`` s (no assumptions) except the constants ``pi`` and
    ``E``; integer literals stay exact, so ``1/2`` is ``Rational(1, 2)``. Raises
    :class:`~symgrad.errors.ParseError` with a one-line message naming the culprit for
    anything outside the whitelist, for non-finite or complex constants, and for inputs
    over the module limits.

    >>> parse_expr("x**2/2 + sigmoid(w*x)")
    x**2/2 + sigmoid(w*x)
    >>> parse_expr("Piecewise((x, x > 0), (0.1*x, True))")
    Piecewise((x, x > 0), (0.1*x, True))
    >>> parse_expr("x^2")
    Traceback (most recent call last):
    ...
    symgrad.errors.ParseError: '^' is not a power in Python syntax ('x^2'); use ** for powers, e.g. x**2
    """
    return _parse(text)


class _ChainTooLong(ParseError):
    """Python's parser ran out of stack on a long chain (parse_large_expr then splits the sum)."""


def _parse(text, large=False):
    source = _check_text(text, large)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ParseError(_syntax_message(exc, text, source)) from None
    except (RecursionError, MemoryError):
        # CPython builds the ast recursively: a chain of a few thousand operators or a few
        # thousand unary minus signs exhausts it.
        raise _ChainTooLong("expression is too long or too deeply nested for Python's parser "
                            "(more than about 3,000 operators in one chain); split it into "
                            "parts or build it with SymPy in Python") from None
    except ValueError as exc:  # e.g. null bytes on older Pythons
        raise ParseError(f"cannot parse the expression: {exc}") from None
    return _Builder(source).build(tree.body)


def parse_symbols(text):
    """Parse a comma-separated list of symbol names into plain SymPy Symbols, in order.

    Raises :class:`~symgrad.errors.InputError` naming the item for an empty item, a name
    that is not a valid identifier (or is reserved: ``pi``, ``E``, Python keywords), or
    a duplicate.

    >>> parse_symbols("w1,w2")
    [w1, w2]
    """
    if not isinstance(text, str):
        raise InputError(f"expected symbol names as a str such as 'w1,w2', got {type(text).__name__}")
    if not text.strip():
        raise InputError("no symbol names given; write them separated by commas, e.g. w1,w2")
    names = []
    for item in text.split(","):
        name = _check_name(item.strip(), text)
        if name in names:
            raise InputError(f"symbol {name!r} is listed twice in {text!r}; list each symbol once")
        names.append(name)
    return [sp.Symbol(name) for name in names]


def parse_values(text):
    """Parse ``name=value`` pairs separated by commas into ``{Symbol: exact SymPy number}``.

    Each value is any expression :func:`parse_expr` accepts that has no free symbols
    (``1/3``, ``-2.5``, ``pi/4``, ``exp(1)``, ``atan2(1, 2)``). Raises
    :class:`~symgrad.errors.InputError` naming the offending item for a missing ``=``,
    an empty or invalid name, a duplicate name, or a value that is not a number.

    >>> parse_values("x=3,y=1,w=-2.5")
    {x: 3, y: 1, w: -2.50000000000000}
    """
    if not isinstance(text, str):
        raise InputError(f"expected values as a str such as 'x=3,y=1', got {type(text).__name__}")
    if not text.strip():
        raise InputError("no values given; write name=value pairs separated by commas, e.g. x=3,y=1")
    values = {}
    for item in _split_top_level_commas(text):
        name, eq, value = (part.strip() for part in item.partition("="))
        if not eq:
            raise InputError(f"{item.strip()!r} has no '='; write name=value, e.g. x=3")
        if not name:
            raise InputError(f"{item.strip()!r} has no name before '='; write name=value, e.g. x=3")
        symbol = sp.Symbol(_check_name(name, text))
        if symbol in values:
            raise InputError(f"{symbol.name!r} is given twice in {text!r}; give each value once")
        values[symbol] = _parse_number(symbol.name, value)
    return values


def _parse_number(name, value):
    if not value:
        raise InputError(f"value of {name!r} is empty; write name=value, e.g. {name}=3")
    try:
        number = parse_expr(value)
    except ParseError as exc:
        raise InputError(f"value of {name!r} is {value!r}, which is not a number: {exc}") from None
    if number.free_symbols:
        raise InputError(f"value of {name!r} is {value!r}, which is not a number; "
                         f"give a number such as {name}=3, {name}=1/3 or {name}=pi/4")
    return number


def _check_name(name, text):
    """Return the name as the parser would see it (NFKC), or raise InputError naming it."""
    if not name:
        raise InputError(f"empty name in {text!r}; check for doubled or trailing commas")
    if not name.isidentifier() or keyword.iskeyword(name):
        raise InputError(f"{name!r} is not a valid symbol name; use letters, digits and _, "
                         f"starting with a letter, and no Python keyword")
    name = unicodedata.normalize("NFKC", name)  # the way Python's parser reads identifiers
    if name.startswith("__"):
        raise InputError(f"{name!r} is not a valid symbol name: names starting with '__' are reserved")
    if name in CONSTANTS or name in INFINITIES:
        raise InputError(f"{name!r} is a reserved constant, not a symbol; choose another name")
    return name


def _split_top_level_commas(text):
    """Split on commas outside brackets, so 'x=atan2(1, 2),y=3' keeps its call together."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    for item in items:
        if not item.strip():
            raise InputError(f"empty item in {text!r}; check for doubled or trailing commas")
    return items


def parse_large_expr(text):
    """:func:`parse_expr` for an expression read from a file: up to ``LARGE_MAX_LENGTH``
    characters, line breaks are spaces and ``#`` starts a comment to the end of its line (so
    a sum may be written one term per line), and a top-level sum of any number of terms is
    parsed in parts of ``_PART_TERMS`` terms (Python's parser refuses a chain of more than
    about 3,000 operators).

    >>> parse_large_expr("+".join(f"x{i}" for i in range(5000))) == sp.Add(*sp.symbols("x0:5000"))
    True
    >>> parse_large_expr("2*x  # the linear term\\n - y**2")
    2*x - y**2
    """
    if isinstance(text, str):
        text = " ".join(line.partition("#")[0] for line in text.splitlines())
    try:
        return _parse(text, large=True)
    except _ChainTooLong:
        starts = _term_starts(text.strip())
        if starts is None or len(starts) <= _PART_TERMS:
            raise
    source, parts = text.strip(), starts[::_PART_TERMS] + [None]
    return sp.Add(*(_parse(source[a:b], large=True) for a, b in zip(parts, parts[1:])))


_PART_TERMS = 1_000
# Operators that bind tighter than a binary + or -, so splitting a sum around them is safe.
_TIGHTER = {"+", "-", "*", "/", "**", "%", "//", "@"}


def _term_starts(source):
    """Offsets where the terms of a top-level sum start, or None where splitting is not safe
    (a comparison, keyword or other low-precedence operator outside brackets)."""
    starts, depth, prev = [0], 0, None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
                continue
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
            elif depth == 0 and tok.type == tokenize.OP:
                if tok.string not in _TIGHTER:
                    return None
                binary = prev is not None and (prev.type in (tokenize.NAME, tokenize.NUMBER)
                                               or prev.string in ")]}")
                if tok.string in "+-" and binary:
                    starts.append(tok.start[1])
            elif depth == 0 and (tok.type not in (tokenize.NAME, tokenize.NUMBER)
                                 or keyword.iskeyword(tok.string)):
                return None
            prev = tok
    except (tokenize.TokenError, SyntaxError):
        return None
    return starts


def _check_text(text, large=False):
    if not isinstance(text, str):
        raise ParseError(f"expected the expression as a str, got {type(text).__name__}")
    limit, name = (LARGE_MAX_LENGTH, "LARGE_MAX_LENGTH") if large else (MAX_LENGTH, "MAX_LENGTH")
    if len(text) > limit:
        raise ParseError(f"expression is {len(text):,} characters long, over the limit of "
                         f"{limit:,} (symgrad.parse.{name}); build large expressions "
                         "with SymPy in Python")
    source = text.strip()  # ast.parse would call leading spaces an indent
    if not source:
        raise ParseError("empty expression; give a formula such as x**2 + 1")
    # Checked before ast.parse, whose own bracket limit (200) gives a less helpful message.
    depth = deepest = 0
    for char in source:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    if deepest > MAX_DEPTH:
        raise ParseError(_too_deep())
    return source


def _too_deep():
    return (f"expression is nested more than {MAX_DEPTH} levels deep (symgrad.parse.MAX_DEPTH); "
            "name intermediate parts or build the expression with SymPy in Python")


def _syntax_message(exc, text, source):
    lead = len(text) - len(text.lstrip())
    if not exc.offset:  # Python gives no position when the input ends too early ("x +")
        message = f"syntax error: {exc.msg} (is the expression incomplete?)"
    elif (exc.lineno or 1) > 1:
        message = f"syntax error at line {exc.lineno}, column {exc.offset}: {exc.msg}"
    else:
        message = f"syntax error at column {exc.offset + lead}: {exc.msg}"
    words = [w for w in re.findall(r"[^\W\d]\w*", source)
             if keyword.iskeyword(w) and w not in ("True", "False", "None", "and", "or", "not")]
    if words:
        message += (f"; {words[0]!r} is a Python keyword and cannot be a symbol name, "
                    f"rename it (e.g. {words[0]}_)")
    return message


class _Builder:
    """Turns a checked ast into SymPy, iteratively: plan a node, visit its children, make it.

    The work stack holds ("visit", node, context, depth) and ("make", maker, n) items; the
    value stack holds (expr, is_constant) pairs. Context is _VALUE or _CONDITION (inside a
    Piecewise condition, where comparisons and &, |, ~ are allowed).
    """

    def __init__(self, source):
        self.source = source

    def build(self, root):
        values, todo = [], [("visit", root, _VALUE, 1)]
        while todo:
            item = todo.pop()
            if item[0] == "visit":
                _, node, context, depth = item
                if depth > MAX_DEPTH:
                    raise ParseError(_too_deep())
                maker, children = self._plan(node, context)
                todo.append(("make", maker, len(children)))
                todo.extend(("visit", child, ctx, depth + 1) for child, ctx in reversed(children))
            else:
                _, maker, n = item
                args = values[len(values) - n:]
                del values[len(values) - n:]
                values.append(maker(args))
        return values[0][0]

    # -- planning: check one node, return (maker, [(child, context), ...]) --------------

    def _plan(self, node, context):
        if context == _CONDITION:
            return self._plan_condition(node)
        kind = type(node)
        if kind is ast.Constant:
            return self._leaf(self._number(node)), []
        if kind is ast.Name:
            return self._leaf(self._name(node)), []
        if kind is ast.UnaryOp and isinstance(node.op, (ast.UAdd, ast.USub)):
            sign = -1 if isinstance(node.op, ast.USub) else 1
            return self._maker(node, lambda a: a[0][0] if sign > 0 else -a[0][0], check=False), \
                [(node.operand, _VALUE)]
        if kind is ast.BinOp:
            return self._plan_binop(node)
        if kind is ast.Call:
            return self._plan_call(node, _VALUE)
        raise ParseError(self._not_allowed(node))

    def _plan_binop(self, node):
        op = type(node.op)
        if op in (ast.Add, ast.Sub):
            return self._plan_chain(node, (ast.Add, ast.Sub), _add_chain)
        if op in (ast.Mult, ast.Div):
            return self._plan_chain(node, (ast.Mult, ast.Div), _mul_chain)
        if op is ast.Pow:
            return self._maker(node, lambda a: self._power(node, *a)), \
                [(node.left, _VALUE), (node.right, _VALUE)]
        if op is ast.BitXor:
            raise ParseError(f"'^' is not a power in Python syntax ({self._snippet(node)!r}); "
                             "use ** for powers, e.g. x**2")
        if op in (ast.BitAnd, ast.BitOr):
            raise ParseError(self._not_allowed(node))
        raise ParseError(f"operator {_OPERATOR_TEXT.get(op, op.__name__)!r} is not supported "
                         f"({self._snippet(node)!r}); use + - * / ** and functions such as floor")

    def _plan_chain(self, node, ops, combine):
        """A left-leaning chain a+b-c+d is one node with operands [a, b, c, d]."""
        top, operands, inverted = node, [], []
        while isinstance(node, ast.BinOp) and isinstance(node.op, ops):
            operands.append(node.right)
            inverted.append(isinstance(node.op, (ast.Sub, ast.Div)))
            node = node.left
        operands.append(node)
        inverted.append(False)
        operands.reverse()
        inverted.reverse()

        def make(args):
            terms = [expr for expr, _ in args]
            if combine is _mul_chain:
                for term, inv in zip(terms, inverted):
                    if inv and term.is_Number and term.is_zero:
                        raise ParseError(f"division by zero in {self._snippet(top)!r}")
            return combine(terms, inverted)
        return self._maker(top, make), [(operand, _VALUE) for operand in operands]

    def _plan_call(self, node, context):
        name = self._function_name(node)
        table = CONDITION_FUNCTIONS if context == _CONDITION else FUNCTIONS
        if name == "Piecewise" and context == _VALUE:
            return self._plan_piecewise(node)
        if name not in table:
            if context == _VALUE and name in CONDITION_FUNCTIONS:
                raise ParseError(self._not_allowed(node))
            if context == _CONDITION and (name in FUNCTIONS or name == "Piecewise"):
                raise ParseError(f"{_CONDITION_HINT}; got {self._snippet(node)!r}")
            raise ParseError(self._unknown_function(name))
        function, fewest, most = table[name]
        count = len(node.args)
        if count < fewest or (most is not None and count > most):
            expected = (f"{fewest}" if fewest == most else
                        f"at least {fewest}" if most is None else f"{fewest} or {most}")
            plural = "" if most == 1 else "s"
            raise ParseError(f"{name}() takes {expected} argument{plural}, got {count}: "
                             f"{self._snippet(node)!r}")
        return (self._maker(node, lambda a: function(*self._guard_gamma(node, name, a)),
                            check=context == _VALUE),
                [(arg, context) for arg in node.args])

    def _plan_piecewise(self, node):
        children = []
        for arg in node.args:
            if not (isinstance(arg, ast.Tuple) and len(arg.elts) == 2):
                raise ParseError(f"Piecewise takes (expression, condition) pairs, got "
                                 f"{self._snippet(arg)!r}; write e.g. Piecewise((x, x > 0), (0, True))")
            children += [(arg.elts[0], _VALUE), (arg.elts[1], _CONDITION)]
        if not children:
            raise ParseError("Piecewise() needs at least one (expression, condition) pair, "
                             "e.g. Piecewise((x, x > 0), (0, True))")

        def make(args):
            exprs = [expr for expr, _ in args]
            return sp.Piecewise(*zip(exprs[::2], exprs[1::2]))
        return self._maker(node, make, check=False), children

    def _plan_condition(self, node):
        kind = type(node)
        if kind is ast.Compare:
            ops = [_COMPARE.get(type(op)) for op in node.ops]
            if None in ops:
                raise ParseError(f"comparison {self._snippet(node)!r} is not supported; "
                                 "use <, <=, >, >=, == or !=")

            def make(args):
                sides = [expr for expr, _ in args]
                return sp.And(*(op(a, b) for op, a, b in zip(ops, sides, sides[1:])))
            return self._maker(node, make, check=False), \
                [(side, _VALUE) for side in [node.left, *node.comparators]]
        if kind is ast.Constant and isinstance(node.value, bool):
            return self._leaf(sp.true if node.value else sp.false), []
        if kind is ast.BoolOp:
            combine = sp.And if isinstance(node.op, ast.And) else sp.Or
            return self._maker(node, lambda a: combine(*(e for e, _ in a)), check=False), \
                [(value, _CONDITION) for value in node.values]
        if kind is ast.BinOp and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            combine = sp.And if isinstance(node.op, ast.BitAnd) else sp.Or
            return self._maker(node, lambda a: combine(a[0][0], a[1][0]), check=False), \
                [(node.left, _CONDITION), (node.right, _CONDITION)]
        if kind is ast.UnaryOp and isinstance(node.op, (ast.Not, ast.Invert)):
            return self._maker(node, lambda a: sp.Not(a[0][0]), check=False), \
                [(node.operand, _CONDITION)]
        if kind is ast.Call:
            return self._plan_call(node, _CONDITION)
        raise ParseError(f"{_CONDITION_HINT}; got {self._snippet(node)!r}")

    # -- leaves -------------------------------------------------------------------------

    def _number(self, node):
        value = node.value
        if isinstance(value, bool):
            raise ParseError(f"{value} is a condition, not a number; conditions are only allowed "
                             "inside Piecewise, e.g. Piecewise((x, x > 0), (0, True))")
        if isinstance(value, int):
            if value.bit_length() - 1 > _MAX_EXACT_BITS:
                raise ParseError(self._too_exact(node, "write it as a float, e.g. 1e300"))
            return sp.Integer(value)
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise ParseError(f"number {self._snippet(node)!r} is too large for a float; "
                                 "symgrad works with finite numbers")
            return sp.Float(value)
        if isinstance(value, complex):
            raise ParseError(f"imaginary number {self._snippet(node)!r} is not supported; "
                             "symgrad works with real numbers")
        if isinstance(value, (str, bytes)):
            raise ParseError(f"strings are not allowed ({self._snippet(node)!r}); give a "
                             "math expression such as x**2 + 1")
        raise ParseError(f"{self._snippet(node)!r} is not a number; give a math expression "
                         "such as x**2 + 1")

    def _name(self, node):
        name = node.id
        if name.startswith("__"):
            raise ParseError(f"name {name!r} is not allowed: names starting with '__' are reserved")
        if name in INFINITIES:
            raise ParseError(f"{name!r} (infinity / nan) is not allowed: symgrad works with "
                             "finite numbers; if you meant a symbol, rename it")
        return CONSTANTS.get(name) or sp.Symbol(name)

    # -- making nodes -------------------------------------------------------------------

    @staticmethod
    def _leaf(expr):
        constant = not isinstance(expr, sp.Symbol)
        return lambda args: (expr, constant)

    def _maker(self, node, build, check=True):
        """Wrap a builder: rephrase SymPy's exceptions, track constness, reject inf/complex."""
        def make(args):
            constant = all(c for _, c in args)
            try:
                result = build(args)
            except ParseError:
                raise
            except (TypeError, ValueError, ArithmeticError, NotImplementedError,
                    RecursionError, MemoryError) as exc:
                detail = " ".join(str(exc).split()) or type(exc).__name__
                raise ParseError(f"cannot build {self._snippet(node)!r}: {detail}") from None
            if check:
                self._check_result(node, result, constant)
            return result, constant
        return make

    def _check_result(self, node, result, constant):
        # An infinity first appears as a whole result (log(0) = zoo) or, next to a symbol,
        # as a direct argument (log(x, 1) = zoo*log(x)); deeper copies were caught earlier.
        for part in (result, *result.args):
            if part in _NOT_FINITE:
                raise ParseError(f"{self._snippet(node)!r} is {_NOT_FINITE[part]} ({part}); "
                                 "symgrad works with finite numbers")
            if part.is_Rational and max(abs(part.p), part.q).bit_length() - 1 > _MAX_EXACT_BITS:
                raise ParseError(self._too_exact(node, "use floats for numbers this large"))
        if constant and result.has(sp.I):
            raise ParseError(f"{self._snippet(node)!r} is not a real number ({result}); "
                             "symgrad works with real numbers")

    def _power(self, node, base, exponent):
        base, exponent = base[0], exponent[0]
        # Checked before computing: 9**9**9 would take minutes and gigabytes.
        if base.is_Rational and exponent.is_Rational:
            # bit_length() - 1 <= log2(base): a lower bound, so the message never overstates.
            bits = (max(abs(base.p), base.q).bit_length() - 1) * abs(exponent.p) // exponent.q
            if bits > _MAX_EXACT_BITS:
                raise ParseError(self._too_exact(node, "write the base as a float, e.g. 2.0 instead of 2"))
        return base ** exponent

    def _guard_gamma(self, node, name, args):
        exprs = [expr for expr, _ in args]
        # gamma(n) of an exact integer is (n-1)!: fine for n = 100, hangs for n = 10**7.
        if name in ("gamma", "loggamma") and exprs[0].is_Rational and abs(exprs[0]) >= _GAMMA_LIMIT:
            raise ParseError(self._too_exact(node, f"write the argument as a float, e.g. {name}(2000.0)"))
        return exprs

    def _too_exact(self, node, hint):
        return (f"{self._snippet(node)!r} would be an exact number with more than "
                f"{MAX_EXACT_DIGITS:,} digits (symgrad.parse.MAX_EXACT_DIGITS); {hint}")

    # -- messages -----------------------------------------------------------------------

    def _function_name(self, node):
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                raise ParseError(self._not_allowed(node.func))
            raise ParseError(f"only functions can be called, by name ({self._snippet(node)!r}); "
                             "for multiplication write *, e.g. 2*(x + 1)")
        if node.func.id.startswith("__"):
            self._name(node.func)
        for keyword_arg in node.keywords:
            shown = f"{keyword_arg.arg}=..." if keyword_arg.arg else "**..."
            raise ParseError(f"keyword arguments are not allowed ({shown} in "
                             f"{self._snippet(node)!r}); pass arguments by position, "
                             "e.g. leaky_relu(x, 0.1)")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise ParseError(f"starred arguments are not allowed ({self._snippet(arg)!r}); "
                                 "pass each argument explicitly")
        return node.func.id

    def _unknown_function(self, name):
        suggestion = _ALIASES.get(name) or _ALIASES.get(name.lower())
        lowered = {known.lower(): known for known in KNOWN_FUNCTIONS}
        suggestion = suggestion or lowered.get(name.lower())
        if not suggestion:
            close = difflib.get_close_matches(name, KNOWN_FUNCTIONS, n=1, cutoff=0.75)
            suggestion = close[0] if close else None
        hint = (f"did you mean {suggestion!r}? " if suggestion else
                "" if hasattr(builtins, name) else f"for multiplication write {name}*(...); ")
        return (f"unknown function {name!r}; {hint}known functions are: "
                f"{', '.join(KNOWN_FUNCTIONS)}")

    def _not_allowed(self, node):
        snippet = self._snippet(node)
        kind = type(node)
        if kind is ast.Attribute:
            return (f"attribute access is not allowed ({snippet!r}); call functions by their "
                    "bare name, e.g. exp(x) rather than sp.exp(x)")
        if kind is ast.Subscript:
            return (f"subscripts are not allowed ({snippet!r}); use a plain name such as "
                    "x0 or x_0")
        if kind is ast.Lambda:
            return f"lambda is not allowed ({snippet!r}); give the expression itself, e.g. x**2"
        if kind in (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp):
            return (f"comprehensions are not allowed ({snippet!r}); write the terms out or "
                    "build the expression with SymPy in Python")
        if kind is ast.Starred:
            return f"starred expressions are not allowed ({snippet!r})"
        if kind is ast.JoinedStr:
            return f"strings are not allowed ({snippet!r}); give a math expression such as x**2 + 1"
        if kind is ast.IfExp:
            return (f"conditional expressions are not allowed ({snippet!r}); "
                    "use Piecewise((a, condition), (b, True))")
        if kind in (ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Call):
            return (f"{snippet!r} is a condition; conditions are only allowed inside Piecewise, "
                    "e.g. Piecewise((x, x > 0), (0, True)); to combine comparisons there, "
                    "wrap each in parentheses: (x > 0) & (x < 1)")
        if kind in (ast.Tuple, ast.List, ast.Set, ast.Dict):
            return (f"{kind.__name__.lower()}s are not allowed ({snippet!r}); give a single "
                    "expression (tuples only as Piecewise((expr, cond), ...) pairs)")
        return f"{snippet!r} ({kind.__name__}) is not allowed in an expression"

    def _snippet(self, node, limit=60):
        text = ast.get_source_segment(self.source, node) or type(node).__name__
        text = " ".join(text.split())
        return text if len(text) <= limit else text[:limit - 1] + "…"


def _add_chain(terms, negated):
    if len(terms) <= FOLD_LIMIT:
        total = terms[0]
        for term, neg in zip(terms[1:], negated[1:]):
            total = total - term if neg else total + term
        return total
    return sp.Add(*(-term if neg else term for term, neg in zip(terms, negated)))


def _mul_chain(factors, inverted):
    if len(factors) <= FOLD_LIMIT:
        product = factors[0]
        for factor, inv in zip(factors[1:], inverted[1:]):
            product = product / factor if inv else product * factor
        return product
    return sp.Mul(*(1 / factor if inv else factor for factor, inv in zip(factors, inverted)))
