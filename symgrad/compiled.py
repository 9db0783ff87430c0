"""``symgrad.compile``: an expression -> a callable with value, grad, value_and_grad and jvp.

>>> import numpy as np, sympy as sp
>>> x, y, w = sp.symbols("x y w")
>>> f = compile(-y*sp.log(1/(1 + sp.exp(-w*x))), wrt=[w], args=[x, y])
>>> round(f.grad(x=3.0, y=1.0, w=3.0)["w"], 12)
-0.000370183728
>>> f.grad(x=np.array([3.0, 1.0]), y=np.array([1.0, 0.0]), w=3.0)["w"] == f.grad(x=3.0, y=1.0, w=3.0)["w"]
True
"""

from __future__ import annotations

import builtins
import math
import difflib

import numpy as np
import sympy as sp

from .codegen import generate, short_text
from .errors import InputError
from .graph import decompose
from .rewrite import stabilize
from .sweeps import sweeps

__all__ = ["CompiledFunction", "compile", "as_symbols"]


def as_symbols(items, what: str, known=()) -> list:
    """Check a list of symbols (a single symbol or name is accepted too) and return it as a list.

    A name (str) is resolved to the symbol of that name in ``known`` (the expression's symbols),
    so ``wrt="w"`` works even when the expression's w carries assumptions; a symbol that only
    shares its name with one of ``known`` raises InputError saying so.
    """
    if items is None:
        return []
    if isinstance(items, (sp.Basic, str)):
        items = [items]
    by_name = {k.name: k for k in known}
    out, seen = [], set()
    for s in items:
        if isinstance(s, str):
            s = by_name.get(s, sp.Symbol(s))
        elif isinstance(s, sp.Symbol) and s.name in by_name and by_name[s.name] != s:
            raise InputError("%s %s is not the expression's %s: they differ in their assumptions (%s vs %s), so "
                             "SymPy treats them as different symbols; pass the expression's symbol or its name "
                             "as a string" % (what, s.name, s.name, _assumptions(s), _assumptions(by_name[s.name])))
        if not isinstance(s, (sp.Symbol, sp.MatrixSymbol)):
            raise InputError("%s must be SymPy symbols, got %s (%s)" % (what, sp.sstr(s), type(s).__name__))
        if s in seen:
            raise InputError("%s lists %s twice" % (what, s))
        seen.add(s)
        out.append(s)
    return out


def _assumptions(s) -> str:
    given = {k: v for k, v in s.assumptions0.items() if k in ("real", "positive", "negative", "integer",
                                                            "nonnegative", "complex")}
    return ", ".join("%s=%s" % kv for kv in sorted(given.items())) or "no assumptions"


def free_symbols(expr) -> set:
    """The symbols of ``expr``, visiting each distinct subexpression once.

    ``expr.free_symbols`` walks every path of the tree, which is exponential in the depth
    of an expression with shared subexpressions (a chain of tanh layers).
    """
    seen, out, stack = set(), set(), [expr]
    while stack:
        e = stack.pop()
        if e.is_Symbol:
            out.add(e)
        elif e not in seen:
            seen.add(e)
            stack.extend(e.args)
    return out


def _check_wrt(expr, wrt, args, free=None):
    free = free_symbols(expr) if free is None else free
    for w in wrt:
        if w not in free:
            names = ", ".join(sorted(s.name for s in free)) or "none"
            raise InputError("%s is not in the expression %s (its symbols: %s); its derivative would be 0 — "
                             "drop it from wrt or check the spelling" % (w, short_text(decompose(expr)), names))
    wrt_set = set(wrt)
    overlap = [a for a in args if a in wrt_set]
    if overlap:
        raise InputError("%s is both in args and in wrt; list it once" % overlap[0])


def _plain(v):
    """A 0-d result as a Python float, arrays unchanged."""
    return float(v) if np.ndim(v) == 0 else v


class CompiledFunction:
    """A compiled expression. Values are passed by symbol name (or positionally in
    ``args + wrt`` order); arrays broadcast as in NumPy.

    - ``f(**values)``: the value, elementwise over a batch;
    - ``f.grad(**values)``: {name: gradient}, each shaped like its parameter, of the value
      summed (``reduce="sum"``) or averaged (``reduce="mean"``) over the batch;
    - ``f.value_and_grad(**values)``: (reduced value, grads) from one reverse sweep;
    - ``f.jvp(tangents, **values)``: (value, directional derivative) by forward mode;
    - ``f.source`` / ``f.sources``: the generated Python.
    """

    def __init__(self, expr, wrt, args, reduce="sum", check_finite=True, rewrite=True):
        if reduce not in ("sum", "mean"):
            raise InputError("reduce must be 'sum' or 'mean', got %r" % (reduce,))
        self.expr = expr
        self.wrt = tuple(wrt)
        self.args = tuple(args)
        self.reduce = reduce
        self.check_finite = check_finite
        # Stability rewrites (symgrad.rewrite); f.rewrites lists what fired.
        stable, self.rewrites = stabilize(expr) if rewrite else (expr, ())
        self.graph = decompose(stable)
        self.sweeps = sweeps(self.graph, self.wrt)
        self.module = generate(self.sweeps, self.args)
        self.params = self.args + self.wrt
        self.names = tuple(p.name for p in self.params)
        self._slot = {n: i for i, n in enumerate(self.names)}
        self._leaves = set(self.graph.leaves)

    @property
    def source(self) -> str:
        """The whole generated module."""
        return self.module.source

    @property
    def sources(self) -> dict:
        """Source of each generated function: ``value``, ``reverse``, ``forward``."""
        return self.module.sources

    @property
    def functions(self) -> dict:
        """The generated functions (``inspect.getsource`` works on them)."""
        return self.module.functions

    def __repr__(self) -> str:
        return "<symgrad compiled %s wrt %s, %d nodes>" % (
            sp.sstr(self.expr)[:60], ", ".join(w.name for w in self.wrt), len(self.graph))

    def _bind(self, args, values) -> list:
        if len(args) > len(self.names):
            raise InputError("got %d positional values but this function takes %d (%s)"
                             % (len(args), len(self.names), ", ".join(self.names)))
        bound = list(args) + [None] * (len(self.names) - len(args))
        given = [True] * len(args) + [False] * (len(self.names) - len(args))
        for k, v in values.items():
            i = self._slot.get(k)
            if i is None:
                close = difflib.get_close_matches(k, self.names, 1)
                hint = " (did you mean %r?)" % close[0] if close else ""
                raise InputError("unexpected value %r%s; this function takes %s" % (k, hint, ", ".join(self.names)))
            if given[i]:
                raise InputError("value for %r given twice" % k)
            bound[i], given[i] = v, True
        missing = [n for n, g in zip(self.names, given) if not g]
        if missing:
            raise InputError("missing value for %s; pass %s" % (
                ", ".join(repr(m) for m in missing), ", ".join("%s=..." % m for m in missing)))
        return [self._convert(n, v) for n, v in zip(self.names, bound)]

    def _convert(self, name, v):
        if isinstance(v, (builtins.float, builtins.int)) and not isinstance(v, bool):
            if self.check_finite and not np.isfinite(v):
                raise InputError("value of %r is %r; symgrad needs finite numbers" % (name, v))
            return np.float64(v)  # NumPy semantics: 1/0 is inf and (-1)**(1/3) nan, never Python errors
        try:
            a = np.asarray(v)
        except Exception:  # noqa: BLE001 - anything NumPy cannot read is the user's value
            a = None
        if a is None or a.dtype.kind not in "biuf":
            raise InputError("value of %r is %r (%s), not a number or numeric array" % (
                name, v if len(repr(v)) < 60 else type(v).__name__, type(v).__name__))
        if a.dtype.kind != "f":
            a = a.astype(np.float64)
        # a NaN or inf makes the sum non-finite (one fast pass); only then look element by element
        if self.check_finite and not math.isfinite(a.sum()) and not np.isfinite(a).all():
            raise InputError("value of %r contains nan or inf; symgrad needs finite inputs" % name)
        return a if a.ndim else a[()]

    def __call__(self, /, *args, **values):
        with np.errstate(all="ignore"):
            return _plain(self.functions["value"](*self._bind(args, values)))

    def value_and_grad(self, /, *args, **values):
        """(value, {name: gradient}) — value reduced like the gradients (sum or mean)."""
        with np.errstate(all="ignore"):
            value, grads = self.functions["reverse"](*self._bind(args, values))
        n = np.size(value)
        total = np.sum(value)
        if self.reduce == "mean" and n > 1:
            total = total / n
            grads = [g / n for g in grads]
        return _plain(total), dict(zip((w.name for w in self.wrt), grads))

    def _bind_unchecked(self, args, values) -> list:
        """``_bind`` without the NaN/inf scan of every input: callers check the result instead
        (one look at a parameter-sized result per call) and call ``_explain_nonfinite``."""
        check, self.check_finite = self.check_finite, False
        try:
            return self._bind(args, values)
        finally:
            self.check_finite = check

    def _explain_nonfinite(self, bound, results) -> None:
        """If a result is not finite, raise InputError naming a non-finite input, if there is one."""
        if self.check_finite and not all(math.isfinite(r if type(r) is float else float(np.sum(r))) for r in results):
            for name, v in zip(self.names, bound):
                self._convert(name, v)

    def grad(self, /, *args, **values) -> dict:
        """{name: gradient of the (summed or averaged) value}, each shaped like its parameter.

        Runs the gradient-only program: values only the output needs are not computed."""
        if "grad" not in self.functions:
            return self.value_and_grad(*args, **values)[1]
        bound = self._bind_unchecked(args, values)
        with np.errstate(all="ignore"):
            grads = self.functions["grad"](*bound)
        self._explain_nonfinite(bound, grads)
        if self.reduce == "mean":
            n = int(np.prod(np.broadcast_shapes(*(np.shape(v) for v, p in zip(bound, self.params)
                                                  if p in self._leaves))))
            if n > 1:
                grads = [g / n for g in grads]
        return dict(zip((w.name for w in self.wrt), grads))

    def _check_tangents(self, tangents) -> list:
        """The parameter names, after checking that ``tangents`` maps some of them to values."""
        wrt_names = [w.name for w in self.wrt]
        if not isinstance(tangents, dict):
            raise InputError("tangents must be a dict {parameter name: tangent}, got %s" % type(tangents).__name__)
        for k in tangents:
            if k not in wrt_names:
                raise InputError("tangent given for %r, which is not a parameter; parameters: %s"
                                 % (k, ", ".join(wrt_names)))
        return wrt_names

    def jvp(self, tangents, /, *args, **values):
        """(value, J·v): directional derivative along ``tangents`` ({wrt name: tangent}), per sample."""
        wrt_names = self._check_tangents(tangents)
        dots = [self._convert(k + " tangent", tangents.get(k, 0.0)) for k in wrt_names]
        with np.errstate(all="ignore"):
            value, dot = self.functions["forward"](*self._bind(args, values), *dots)
        return _plain(value), _plain(np.broadcast_to(dot, np.shape(value)) if np.ndim(dot) < np.ndim(value) else dot)


def compile(expr, wrt, args=None, reduce: str = "sum", check_finite: bool = True,  # noqa: A001
            rewrite: bool = True) -> CompiledFunction:
    """Compile ``expr`` into NumPy functions for its value and its derivatives w.r.t. ``wrt``.

    ``args`` are the other inputs (default: the remaining free symbols, sorted by name).
    ``reduce`` says how gradients combine over a batch: "sum" (default) or "mean".
    ``rewrite`` applies the stability rewrites of symgrad.rewrite (listed in ``f.rewrites``).
    Raises InputError when a wrt symbol is not in the expression or a symbol is unaccounted for.

    >>> import sympy as sp
    >>> x, w = sp.symbols("x w")
    >>> f = compile(sp.sin(w*x), wrt=[w])
    >>> f.value_and_grad(x=2.0, w=0.0)
    (0.0, {'w': 2.0})
    >>> f.jvp({"w": 1.0}, x=2.0, w=0.0)
    (0.0, 2.0)
    """
    try:
        expr = sp.sympify(expr, strict=True)
    except (sp.SympifyError, TypeError):
        raise InputError("expected a SymPy expression, got %r; parse strings with symgrad.parse_expr" % (expr,)) from None
    from .matrix import is_matrix_expr, matrix_leaves  # matrix networks have their own graph and code

    matrix = is_matrix_expr(expr)
    known = sum(matrix_leaves(expr)[:2], ()) if matrix else tuple(free_symbols(expr))
    wrt = as_symbols(wrt, "wrt", known)
    if not wrt:
        raise InputError("wrt is empty; name the parameters to differentiate with respect to")
    if matrix:
        from .matcodegen import compile_matrix

        return compile_matrix(expr, wrt, as_symbols(args, "args", known) if args is not None else None,
                              check_finite)
    free = set(known)
    if args is None:
        wrt_set = set(wrt)
        args = sorted((s for s in free if s not in wrt_set), key=lambda s: s.name)
    args = as_symbols(args, "args", known)
    _check_wrt(expr, wrt, args, free)
    given = set(wrt) | set(args)
    missing = sorted(s.name for s in free if s not in given)
    if missing:
        raise InputError("the expression uses %s, which is in neither args nor wrt; add it to args"
                         % ", ".join(missing))
    return CompiledFunction(expr, wrt, args, reduce=reduce, check_finite=check_finite, rewrite=rewrite)
