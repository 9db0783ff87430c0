"""Standalone export: a compiled function as ONE Python module that runs without symgrad.

``f.export(path)`` (or ``export(f, path)``) writes a module with the same public functions as
the compiled function's methods, ``value``, ``grad``, ``value_and_grad``, ``jvp`` and ``hvp``
(arguments by name or positionally in ``args + wrt`` order, the batch reduction, the shape and
finiteness checks, error messages naming the culprit), plus ``selfcheck()``, which recomputes
test vectors stored at export time. It imports NumPy (and ``scipy.special`` where the code
uses it) and the standard library's ``math``, ``numbers`` and ``difflib``; symgrad need not be
installed where it runs.

``flavour="array-api"`` writes the array-API flavour instead (``f.xp_source``, the programs
``symgrad.portable`` runs on other libraries' arrays): ``value``, ``grad``, ``value_and_grad``
and ``jvp`` find the array namespace of their array arguments (through ``array_api_compat``
where it is installed, else the arrays' own ``__array_namespace__()``), bind ``xp``, ``xsp``
(the library's special functions) and ``_const`` for that library, dtype and device, and
return that library's arrays, as ``symgrad.portable`` does (0-d arrays for numbers, nothing
converted on the host, so ``jax.jit`` traces them; finiteness checked for eager arrays only).
Calls with NumPy arrays or plain numbers run the same programs on NumPy.

The module is assembled from what symgrad generated already (``f.module.source``,
``f.hvp_source``; the per-sample program for ``reduce=None``; ``f.xp_source``): the ξ-tagged
programs are kept line for line, renamed ``_value``, ``_value_and_grad``, ``_grad``, ``_jvp``,
``_hvp``, and wrapped by a fixed runtime that binds, checks and reduces as
``symgrad.compiled`` (and ``symgrad.portable``) do. User text (the expression, symbol and
dimension names) reaches the module only through ``symgrad.naming``: the provenance header
and every string literal are written by ``naming.docstring``, identifiers by
``naming.identifier_names``, comments by ``naming.comment``, so no name can change the code.
Nothing depends on the time or the process: two exports of one function are byte-identical.

The test vectors are compact: their inputs are not stored but made by the module from a
formula (exact binary fractions from an integer recurrence, ``_entries``), and each result is
stored as a few exact projections (its shape, the sum of its entries, the sum of their
absolute values, the largest absolute entry, a weighted sum with formula weights and a
handful of entries), which ``selfcheck()`` recomputes to a relative 1e-10.

>>> import sympy as sp, symgrad as sg
>>> x, w = sp.symbols("x w")
>>> f = sg.compile(sp.exp(-w * x), wrt=[w])
>>> source = f.export()                     # f.export("model.py") also writes the file
>>> model = {}
>>> exec(source, model)                     # what `import model` does
>>> model["grad"](x=2.0, w=0.0), model["value_and_grad"](2.0, 0.0)
({'w': -2.0}, (1.0, {'w': -2.0}))
>>> model["selfcheck"]()                    # the stored test vectors agree (raises if not)
>>> source == f.export()
True
>>> xp_model = {}
>>> exec(f.export(flavour="array-api"), xp_model)
>>> g = xp_model["grad"](x=2.0, w=0.0)["w"]  # NumPy here: a 0-d array of the call's dtype
>>> type(g).__name__, g.shape, float(g)
('ndarray', (), -2.0)
"""

from __future__ import annotations

import ast
import math
import re

import numpy as np
import sympy as sp

from .emit import short_text
from .errors import InputError, SymgradError, UnsupportedError
from .export_runtime import COMMON as _COMMON, HVP as _HVP, NO_HVP as _NO_HVP
from .export_runtime import NUMPY_API as _NUMPY_API, SELFCHECK as _SELFCHECK, XP_API as _XP_API
from .ir import user_text
from .naming import comment, docstring
from .persample import generate_per_sample
from .portable import LIBRARIES, SPECIAL, re_special

__all__ = ["Exportable", "export", "FLAVOURS"]

FLAVOURS = ("numpy", "array-api")
_SPELLINGS = {"numpy": "numpy", "array-api": "array-api", "array_api": "array-api", "xp": "array-api"}

# The generated functions and what the exported module calls them (user identifiers never
# start with "_", so these names cannot meet a parameter's name).
_RENAMED = {"value": "_value", "value_and_grad": "_value_and_grad", "grad": "_grad", "jvp": "_jvp",
            "hvp": "_hvp", "per_sample": "_grad_per_sample"}
_TOLERANCE = 1e-10
_EXPR_LIMIT = 2000  # characters of expression text in the header
_TREE_LIMIT = 5000  # nodes of an expression tree printed whole (a larger one: its ξ form)
_STATEMENT_WIDTH = 100
_DIM_SIZES = (3, 2, 4, 5, 6, 7)  # the sizes given to a matrix expression's symbolic dimensions


class Exportable:
    """Mixin of ``CompiledFunction``: ``export`` (see the module docstring)."""

    def export(self, path=None, flavour: str = "numpy") -> str:
        """The standalone module's source (NumPy only, see ``symgrad.export``); written to
        ``path`` (UTF-8) when given. ``flavour="array-api"``: the module that runs on the
        caller's array library (PyTorch, JAX, CuPy, Dask, array-api-strict, NumPy).

        >>> import sympy as sp, symgrad as sg
        >>> w = sp.Symbol("w")
        >>> model = {}
        >>> exec(sg.compile(w**3, wrt=[w]).export(), model)
        >>> model["value_and_grad"](w=2.0), model["hvp"]({"w": 1.0}, 2.0)
        ((8.0, {'w': 12.0}), {'w': 12.0})
        """
        return export(self, path, flavour)


def export(function, path=None, flavour: str = "numpy") -> str:
    """The standalone Python module of a compiled ``function``: public ``value``, ``grad``,
    ``value_and_grad``, ``jvp`` (and ``hvp``) with the semantics of its methods, and
    ``selfcheck()``. Writes it to ``path`` when given (UTF-8) and returns the source.

    ``flavour``: ``"numpy"`` (the default; NumPy arrays, Python floats for numbers) or
    ``"array-api"`` (the caller's array library, as ``symgrad.portable``; no ``hvp``).
    Raises InputError for another flavour, UnsupportedError for what cannot run without
    symgrad (a user function's Python implementation, ``_imp_``; for the array-API flavour a
    function without an array-API spelling) and for a vector output (``compile`` of a
    ``sympy.Matrix``).
    """
    chosen = _SPELLINGS.get(flavour) if isinstance(flavour, str) else None
    if chosen is None:
        raise InputError("flavour must be one of %s, got %r" % (", ".join(map(repr, FLAVOURS)), flavour))
    if getattr(function, "sweeps", None) is None or getattr(function, "module", None) is None:
        raise UnsupportedError("export takes a compiled scalar or matrix expression (symgrad.compile of one "
                               "expression); got %s, which it cannot export yet" % type(function).__name__)
    source = _module_source(function, chosen == "array-api")
    if path is not None:
        try:
            with open(path, "w", encoding="utf-8", newline="\n") as out:
                out.write(source)
        except OSError as exc:
            raise InputError("cannot write %r: %s" % (str(path), exc.strerror or exc)) from None
    return source


# ---------------------------------------------------------------- the generated programs

def _pieces(source: str):
    """(imports, definitions) of a generated module: import statements' text in order, and
    {name: text} of each top-level function (renamed where it is one of the programs)."""
    lines = source.split("\n")
    imports, defs = [], {}
    for stmt in ast.parse(source).body:
        text = "\n".join(lines[stmt.lineno - 1:stmt.end_lineno])
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            imports.append(text)
        elif isinstance(stmt, ast.FunctionDef):
            name = stmt.name
            if name in _RENAMED:
                text = re.sub(r"\Adef %s\(" % name, "def %s(" % _RENAMED[name], text)
                name = _RENAMED[name]
            defs[name] = text
        elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):  # not the docstring
            defs["statement " + text] = text  # another statement (a constant): kept as it is
    return imports, defs


def _programs(function, xp: bool):
    """(imports, helper and program definitions, hvp note) from the function's generated modules
    (``xp``: the array-API flavour's)."""
    user = sorted(k for k in function.functions["value"].__globals__ if k.startswith("_imp_"))
    if user:
        raise UnsupportedError("this function calls the Python implementation (_imp_) of a user function (%s), which "
                               "only exists in this process; export needs every function written in NumPy: give "
                               "it a _numpycode printer, or write it with SymPy's functions" % ", ".join(user))
    if xp:
        try:
            sources = [function.xp_source]
        except UnsupportedError as exc:
            raise UnsupportedError("export(flavour='array-api'): %s (flavour='numpy' exports this function for "
                                   "NumPy)" % exc) from None
        hvp_note = "no Hessian-vector program in the array-API flavour; export flavour='numpy' for hvp"
    else:
        sources = [function.module.source]
        hvp_note = None
        if function.reduce is None:
            sources.append(generate_per_sample(function.graph, function._ir_wrt, function._ir_args).source)
            hvp_note = "second derivatives are of the reduced value (reduce=None here)"
        else:
            try:
                sources.append(function.hvp_source)
            except SymgradError as exc:  # no second-order program for this function
                hvp_note = "no Hessian-vector program: %s" % exc
    imports, defs = [], {}
    for src in sources:
        more, found = _pieces(src)
        imports += [i for i in more if i not in imports]
        for name, text in found.items():
            if name in defs and defs[name] != text:
                raise SymgradError("internal error: two generated modules define %s differently (please report)"
                                   % name)
            defs.setdefault(name, text)
    if xp:
        shadowed = sorted({a.arg for text in defs.values() for node in ast.walk(ast.parse(text))
                           if isinstance(node, ast.arguments) for a in node.args} & {"xp", "xsp"})
        if shadowed:  # a parameter named xp would hide the namespace the programs call
            raise UnsupportedError("export(flavour='array-api'): a symbol is named %s, which the array-API programs "
                                   "use for the array namespace; rename the symbol, or export flavour='numpy'"
                                   % " and ".join(shadowed))
    return imports, defs, hvp_note


def _top_names(text: str) -> set:
    """The names a piece of runtime source defines at the top level."""
    out = set()
    for stmt in ast.parse(text).body:
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            out.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            out.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
    return out


# ---------------------------------------------------------------- literals of user text and numbers

def _literal(text) -> str:
    """A one-line string literal whose value is ``text`` (escaped by naming.docstring)."""
    return '"%s"' % docstring(text)


def _names_literal(names) -> str:
    return "(%s)" % "".join(_literal(n) + ", " for n in names).rstrip(" ")


def _number(v) -> str:
    """The exact repr of a finite float."""
    f = float(v)
    if not math.isfinite(f):  # pragma: no cover - the vectors are finite by construction
        raise SymgradError("internal error: a non-finite number in a test vector (please report)")
    return repr(f)


def _stored(p, indent: str, lead: int = 0) -> str:
    """A stored result (``_projection``'s form): a number's exact repr, or the tuple (shape, sum,
    sum of |entries|, max |entry|, weighted sum, (picked entries...)) wrapped to lines of about
    100 characters, continued at ``indent``."""
    if not isinstance(p, tuple):
        return _number(p)
    shape, total, l1, top, weighted, picks = p
    tokens = ["(%r," % (tuple(shape),)] + [_number(v) + "," for v in (total, l1, top, weighted)]
    inner = [_number(v) + "," for v in picks]
    if len(inner) == 1:
        tokens.append("(%s))" % inner[0])
    elif inner:
        tokens += ["(" + inner[0]] + inner[1:-1] + [inner[-1][:-1] + "))"]
    else:
        tokens.append("())")
    lines, line, room = [], "", _STATEMENT_WIDTH - len(indent) - lead
    for t in tokens:
        if line and len(line) + len(t) + 1 > room:
            lines.append(line)
            line, room = "", _STATEMENT_WIDTH - len(indent) - 1
        line = (line + " " + t) if line else t
    lines.append(line)
    return ("\n" + indent + " ").join(lines)


def _wrapped(tokens, indent: str) -> str:
    """``tokens`` joined by spaces in lines of about 100 characters, continued at ``indent``."""
    lines, line = [], ""
    for t in tokens:
        if line and len(indent) + len(line) + len(t) + 1 > _STATEMENT_WIDTH:
            lines.append(line)
            line = ""
        line = (line + " " + t) if line else t
    lines.append(line)
    return ("\n" + indent).join(lines)


def _dim_code(d):
    """A dimension for the runtime: an int, a dimension name (a string literal), or for a compound
    size such as 2*n a tuple tree ("+"/"*"/"**", ...) the runtime evaluates; None where it cannot."""
    d = sp.sympify(d)
    if d.is_Integer:
        return repr(int(d))
    if d.is_Symbol:
        return _literal(d.name)
    return _tree(d) or "None"


def _tree(d):
    if d.is_Integer:
        return repr(int(d))
    if d.is_Rational:
        return '("/", %d, %d)' % (d.p, d.q)
    if d.is_Symbol:
        return '("n", %s)' % _literal(d.name)
    if d.is_Pow and d.exp.is_Integer and d.exp >= 0:
        base = _tree(d.base)
        return base and '("**", %s, %d)' % (base, int(d.exp))
    if d.is_Add or d.is_Mul:
        parts = [_tree(a) for a in d.args]
        if all(parts):
            return '("%s", %s)' % ("+" if d.is_Add else "*", ", ".join(parts))
    return None


# ---------------------------------------------------------------- the provenance header

def _tree_size(e, limit: int) -> int:
    """The number of nodes of ``e``'s tree, counted up to ``limit``."""
    count, stack = 0, [e]
    while stack and count <= limit:
        count += 1
        stack.extend(stack.pop().args)
    return count


def _expression_text(function) -> str:
    if function.matrix:
        return user_text(function.expr)
    if _tree_size(function.expr, _TREE_LIMIT) <= _TREE_LIMIT:
        return sp.sstr(function.expr, order="none")
    return short_text(function.graph, _EXPR_LIMIT)


def _header(function, version, hvp_note, vectors, public, xp: bool) -> str:
    def names(ps):
        return docstring(", ".join(p.name for p in ps) or "none")

    reduce = {"sum": "sum (the value and the gradients are summed over the batch)",
              "mean": "mean (the value and the gradients are averaged over the batch)",
              None: "None (value_and_grad and grad give each sample's gradient, batch axes in front)"}
    if xp:
        reduce[None] = "None (the value per sample; per-sample gradients: export flavour='numpy')"
    rewrites = ", ".join(r.rule for r in function.rewrites)
    functions = [n for n in public if n[0].islower() and n != "selfcheck"]
    items = functions + ["selfcheck() (%d stored test vector%s)" % (len(vectors), "" if len(vectors) == 1 else "s")]
    items += [n for n in public if n[0].isupper()]
    lines = [
        "Standalone value and gradients of one expression, exported by symgrad %s%s." % (
            docstring(version), " (array-API flavour)" if xp else ""),
        "",
        "expression: %s" % docstring(_expression_text(function), limit=_EXPR_LIMIT),
    ]
    if rewrites:
        lines.append("compiled as: %s (stability rewrites: %s)" % (
            docstring(short_text(function.graph, _EXPR_LIMIT)), docstring(rewrites)))
    lines += [
        "parameters (wrt): %s" % names(function.wrt),
        "arguments: %s" % names(function.args),
        "positional order: %s" % names(function.params),
        "reduce: %s" % reduce[function.reduce],
        "check_finite: %s" % bool(function.check_finite),
        "",
        "Public: %s and %s." % (", ".join(items[:-1]), items[-1]),
    ]
    if hvp_note is not None and function.reduce is not None:
        lines.append("hvp: not available (%s)." % docstring(hvp_note, limit=300))
    lines.append("Values go by name (a name that is not an identifier through a dict: grad(**{name: value}))")
    if xp:
        lines += [
            "or positionally in the order above. Each call runs on the array library of its array arguments",
            "(NumPy, PyTorch, JAX, CuPy, Dask, array-api-strict, ...; NumPy when none is given), found",
            "through array_api_compat where it is installed (else the arrays' own __array_namespace__()),",
            "and returns that library's arrays (0-d arrays for numbers; Python numbers and NumPy arrays",
            "given alongside become arrays of the call's dtype and device). Nothing is converted on the",
            "host, so jax.jit can trace the functions; the finiteness of inputs is checked for eager",
            "arrays only. Imports NumPy, array_api_compat (optional), the library's special functions",
            "where the code uses them, and the standard library; symgrad is not needed. _value,",
            "_value_and_grad, _grad, _jvp are symgrad's array-API programs, one line per node ξk (xik,",
            "its tangent xik_dot, its adjoint xik_bar), each commented with the subexpression or partial",
            "it computes; they read the globals xp (the namespace), xsp (its special functions) and",
            "_const (a number as a 0-d array of the call's dtype and device), bound per library, dtype",
            "and device by _space.",
        ]
    else:
        lines += [
            "or positionally in the order above. Imports NumPy (and scipy.special where the code uses it)",
            "and the standard library only; symgrad is not needed. _value, _value_and_grad, _grad, _jvp",
            "%sare the programs symgrad generated, one line per node ξk (xik, its tangent xik_dot," % (
                "and _hvp " if hvp_note is None else ""),
            "its adjoint xik_bar), each commented with the subexpression or partial it computes.",
        ]
    return '"""' + "\n".join(lines) + '\n"""\n'


# (the fixed runtime the module carries is symgrad.export_runtime)


# ---------------------------------------------------------------- test vectors

def _candidates(function, families):
    """Candidate test points, each (family, shapes, scales) for the module's ``_point``, in the
    order tried: for a scalar expression a batch of 3 samples for the arguments it reads, then one
    point of numbers; for a matrix expression small sizes for its dimensions, and weights scaled
    by about 1/sqrt(fan-in) (a power of two)."""
    params, nargs = function.params, len(function.args)
    leaves = set(function.graph.leaves)
    if function.matrix:
        sizes = {d: _DIM_SIZES[k % len(_DIM_SIZES)] for k, d in enumerate(function.graph.dims)}
        batches = [tuple(tuple(int(sp.sympify(d).xreplace(sizes)) for d in p.shape)
                         if isinstance(p, sp.MatrixSymbol) else () for p in params)]
    else:
        batches = [tuple((3,) if i < nargs and p in leaves else () for i, p in enumerate(params)),
                   tuple(() for _ in params)]
    for shapes in batches:
        scales = tuple(-math.ceil(math.log2(math.sqrt(max(s[0], 1)))) if function.matrix and i >= nargs and len(s) == 2
                       else 0 for i, s in enumerate(shapes))
        for family in families:
            yield family, shapes, scales


def _finite(*results) -> bool:
    for r in results:
        if isinstance(r, dict):
            if not _finite(*r.values()):
                return False
        elif isinstance(r, (tuple, list)):
            if not _finite(*r):
                return False
        elif not np.all(np.isfinite(np.asarray(r, dtype=float))):
            return False
    return True


def _vector_source(vec, names) -> str:
    def many(items):
        return "(\n%s        )" % "".join("            %s,\n" % _stored(v, " " * 12) for v in items)

    family, shapes, scales = vec["point"]
    lines = ["    {", "        # inputs made by _point, in positional order: %s" % comment(", ".join(names)),
             '        "point": (%r, %r, %r),' % (family, shapes, scales),
             '        "value": %s,' % _stored(vec["value"], " " * 8, 10),
             '        "jvp": %s,' % _stored(vec["jvp"], " " * 8, 8)]
    if "grad" in vec:
        lines += ['        "reduced": %s,' % _stored(vec["reduced"], " " * 8, 12),
                  '        "grad": %s,' % many(vec["grad"])]
    if "hvp" in vec:
        lines.append('        "hvp": %s,' % many(vec["hvp"]))
    return "\n".join(lines + ["    },"])


def _vectors(function, module: dict, has_grad: bool, has_hvp: bool) -> list:
    """Up to two test vectors (one for a matrix expression) where every result is finite,
    computed by the exported functions, checked against the compiled function's methods and
    kept as the module's projections. ``has_grad``/``has_hvp``: whether gradients and H·v exist
    (a matrix-valued output summed without being asked has none) and are stored."""
    wrt = [w.name for w in function.wrt]
    point, project = module["_point"], module["_projection"]
    out, seen_shapes = [], []
    for spec in _candidates(function, module["_FAMILIES"]):
        if spec[1] in seen_shapes:
            continue
        inputs, tangents = point(*spec)
        t = dict(zip(wrt, tangents))
        try:
            with np.errstate(all="ignore"):
                results = {"value": module["value"](*inputs), "jvp": module["jvp"](t, *inputs)[1]}
                if has_grad:
                    reduced, grads = module["value_and_grad"](*inputs)
                    results["reduced"], results["grad"] = reduced, [grads[n] for n in wrt]
                if has_hvp:
                    h = module["hvp"](t, *inputs)
                    results["hvp"] = [h[n] for n in wrt]
        except (ValueError, ArithmeticError):  # module["InputError"] is a ValueError: a domain the inputs miss
            continue
        if not _finite(*results.values()):
            continue
        _agrees(function, inputs, results, t)
        vec = {"point": spec}
        for k, r in results.items():
            vec[k] = [project(g) for g in r] if k in ("grad", "hvp") else project(r)
        out.append(vec)
        seen_shapes.append(spec[1])
    return out


def _agrees(function, inputs, results, tangents) -> None:
    """The exported functions gave what the compiled function's methods give (else: a bug)."""
    with np.errstate(all="ignore"):
        pairs = [("value", function(*inputs), results["value"]),
                 ("jvp", function.jvp(tangents, *inputs)[1], results["jvp"])]
        if "grad" in results:
            reduced, grads = function.value_and_grad(*inputs)
            pairs.append(("value_and_grad", reduced, results["reduced"]))
            pairs += [("gradient %s" % w.name, grads[w.name], g) for w, g in zip(function.wrt, results["grad"])]
        if "hvp" in results:
            h = function.hvp(tangents, *inputs)
            pairs += [("hvp %s" % w.name, h[w.name], g) for w, g in zip(function.wrt, results["hvp"])]
    for what, a, b in pairs:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-300)
        if a.shape != b.shape or (a.size and float(np.max(np.abs(a - b))) > 1e-8 * scale):
            raise SymgradError("internal error: the exported %s differs from the compiled function's (please report)"
                               % what)


def _refusals(function) -> dict:
    """{"grad"/"value_and_grad"/"hvp": message} for what the compiled function refuses before
    binding (a matrix-valued output that ``reduce`` was not asked to sum: symgrad.matjac),
    worded for the exported module, which has no jacobian or vjp."""
    check = getattr(function, "_check_reduction", None)
    if check is None or function._out_size is None:
        return {}
    out = {}
    for kind in ("value_and_grad", "grad", "hvp"):
        try:
            check("f." + kind)
        except InputError:
            text = user_text(function.expr)
            text = text if len(text) <= 60 else text[:57] + "..."
            out[kind] = ("%s needs one number to differentiate, but the output %s is a %s matrix; this module's jvp "
                         "gives the output's tangent; for gradients export a function compiled with reduce='sum' "
                         "(or 'mean'), which differentiates the sum (mean) of the entries, or use symgrad's "
                         "f.jacobian and f.vjp" % (kind, text, "×".join(sp.sstr(d) for d in function._out_size)))
    return out


# ---------------------------------------------------------------- assembly

_XP_IMPORTS = '''import difflib
import importlib
import math
import numbers
import types

import numpy as np

try:
    import array_api_compat  # optional: without it, the arrays' own __array_namespace__()
except ImportError:
    array_api_compat = None'''


def _settings(function, version, refused, xp_names=None) -> str:
    """The module's constants: the inputs' names (string literals), the reduction, and the plans
    of the shape, broadcast and finiteness checks (as ``CompiledFunction`` holds them); for the
    array-API flavour (``xp_names``: (generated function names, xsp names)) the libraries
    symgrad.portable knows and their special-function modules."""
    f = function
    leaves = set(f.graph.leaves)
    shapes = []
    for i, p in enumerate(f.params):
        if isinstance(p, sp.MatrixSymbol):
            axes = "".join(_dim_code(d) + ", " for d in p.shape).rstrip()
            text = "(%s)" % ", ".join(sp.sstr(d) for d in p.shape)
            shapes.append("(%d, (%s), %s)," % (i, axes, _literal(text)))
    out = f._out_size
    lines = [
        "SYMGRAD_VERSION = %s" % _literal(version),
        "NAMES = %s  # every input, in positional order: the arguments, then the parameters" % _names_literal(f.names),
        "ARGS = %s" % _names_literal(p.name for p in f.args),
        "WRT = %s" % _names_literal(p.name for p in f.wrt),
        "REDUCE = %r" % (f.reduce,),
        "",
        "_CHECK_FINITE = %r" % bool(f.check_finite),
        "_MATRIX = %r" % bool(f.matrix),
        "_SHAPES = (%s)  # matrix inputs: (slot, size per axis, declared shape)" % (
            ("\n    " + "\n    ".join(shapes) + "\n") if shapes else ""),
        "_COMPOUND = %r" % bool(f._compound_dims),
        "_DIVISOR_DIMS = %s" % _names_literal(f._divisor_dims),
        "_SCALAR_SLOTS = %r" % (tuple(f._scalar_slots),),
        "_BCAST_SLOTS = %r" % (tuple(f._bcast_slots),),
        "_LEAF_SLOTS = %r" % (tuple(i for i, p in enumerate(f.params) if p in leaves),),
        "_OUT_SIZE = %s" % ("None" if out is None else "(%s)" % "".join(_dim_code(d) + ", " for d in out).rstrip()),
        "_REFUSED = {%s}  # what this function refuses before reading any value" % "".join(
            '\n    "%s": %s,' % (k, _literal(m)) for k, m in refused.items()) + ("\n" if refused else ""),
        "_TOLERANCE = %r" % _TOLERANCE,
    ]
    if xp_names is not None:
        generated, special = xp_names
        lines += [
            "",
            "# the array-API flavour: the generated functions, bound per (library, dtype, device) by _space,",
            "# the special functions they call on xsp, and the libraries symgrad.portable knows",
            "_GENERATED = (%s)" % _wrapped(['"%s",' % n for n in generated], "    "),
            "_SPECIAL = (%s)" % "".join('"%s", ' % n for n in special).rstrip(" "),
            "_LIBRARIES = %r" % (tuple(LIBRARIES),),
            "_SPECIAL_MODULES = %r" % (dict(sorted(SPECIAL.items())),),
            "xp = xsp = _const = _library = None  # what the programs read: bound in _space's copies of them",
        ]
    return "\n".join(lines)


def _module_source(function, xp: bool = False) -> str:
    from . import __version__  # the package's version (the package has imported this module by then)

    imports, defs, hvp_note = _programs(function, xp)
    refused = _refusals(function)
    has_hvp = hvp_note is None
    public = ["value", "grad", "value_and_grad", "jvp"]
    if xp:
        runtime = [_COMMON, _XP_API]
        public += ["selfcheck", "InputError", "UnsupportedError"]
        generated = [n for n in defs if not n.startswith("statement ")]
        special = sorted({n for text in defs.values() for n in re_special(text)})
        settings = _settings(function, __version__, refused, (generated, special))
        head = _XP_IMPORTS + "".join("\n" + i for i in imports)
    else:
        runtime = [_COMMON, _NUMPY_API, _HVP if has_hvp else _NO_HVP if function.reduce is None else ""]
        public += (["hvp"] if has_hvp or function.reduce is None else []) + ["selfcheck", "InputError"]
        settings = _settings(function, __version__, refused)
        head = "import difflib\nimport math\nimport numbers\n\n" + "\n".join(imports)
    clash = set(defs) & set().union(*(_top_names(r) for r in runtime + [_SELFCHECK] if r))
    if clash:  # pragma: no cover - the generated helpers and the runtime are both symgrad's
        raise SymgradError("internal error: the exported runtime redefines generated %s (please report)"
                           % ", ".join(sorted(clash)))
    names = _vector_names(function)
    banner = "# ---- generated by symgrad: one line per node (ξk is xik), tangents _dot, adjoints _bar ----"
    if xp:
        banner = banner.replace("symgrad:", "symgrad (array-API flavour):") + (
            "\n# ---- they read xp, xsp and _const, which _space binds per (library, dtype, device) ----")

    def assemble(vectors):
        parts = [
            _header(function, __version__, hvp_note, vectors, public, xp),
            head,
            "__all__ = [%s]\n\n%s" % (", ".join('"%s"' % n for n in public), settings),
            banner,
            *defs.values(),
            *runtime,
            _SELFCHECK,
            "_VECTORS = [\n%s\n]" % "\n".join(_vector_source(v, names) for v in vectors)
            if vectors else "_VECTORS = []",
        ]
        return "\n\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"

    vectors = _vectors(function, _load(assemble([])), "grad" not in refused and not (xp and function.reduce is None),
                       has_hvp and "hvp" not in refused)
    source = assemble(vectors)
    if vectors:
        _load(source)["selfcheck"]()
    return source


def _vector_names(function) -> list:
    """The positional order for the vectors' comment (each name shortened; naming.comment escapes it)."""
    return [n if len(n) <= 40 else n[:36] + " ..." for n in function.names]


def _load(source: str) -> dict:
    """The exported module's namespace (its source compiled here, as importing it would)."""
    namespace: dict = {"__name__": "symgrad_export"}
    exec(compile(source, "<symgrad-export>", "exec"), namespace)  # noqa: S102 - our own source, user text escaped
    return namespace
