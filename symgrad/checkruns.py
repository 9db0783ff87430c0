"""The three checks of ``check_grads`` (sympy.diff, finite differences, forward against reverse)
on one ``Context``: the point, the compiled gradient, the direction and the report so far.

Each check appends a ``checkreport.Check`` to ``ctx.result`` or raises ``GradientMismatch``
(through ``Context.fail``) with the numbers, the parameters that disagree, the direction and
the nodes whose local derivative is wrong (``blame.wrong_nodes``).
"""

from __future__ import annotations

import numpy as np

from . import functions as F
from . import numdiff
from .blame import wrong_nodes
from .checkreport import Check, GradCheck, GradientMismatch, expr_text, fmt as _fmt
from .matrix import source_text
from .oracle import network_oracle, sympy_gradient

__all__ = ["Context", "sympy_check", "fd_check", "fwd_rev_check"]


class Context:
    """The point, the compiled gradient, the direction and the report of one check_grads call."""

    def __init__(self, expr, f, wrt, vals, where, network, seed=0):
        self.expr, self.f, self.wrt, self.vals, self.where, self.network = expr, f, wrt, vals, where, network
        self.wnames = [w.name for w in wrt]
        _, self.grads = f.value_and_grad(**vals)  # also checks every shape, naming the culprit
        self.size = max(int(np.size(f(**vals))), 1) if f.reduce == "mean" else 1
        rng = np.random.default_rng(seed)
        self.dirs = {n: _plain(numdiff.scaled_direction(vals[n], _like(rng, vals[n]))) for n in self.wnames}
        self.text = source_text(expr) if network else expr_text(expr)

    def line(self, dirs):
        """t ↦ (Σ f(x + t·d), Σ|f|), reduced as ``f`` reduces."""
        def total(t):
            moved = dict(self.vals)
            for n, d in dirs.items():
                moved[n] = self.vals[n] + t * d
            y = np.asarray(self.f(**moved), dtype=float)
            return float(np.sum(y)) / self.size, float(np.sum(np.abs(y))) / self.size
        return total

    def slope_of(self, dirs):
        return sum(float(np.sum(self.grads[n] * d)) for n, d in dirs.items())

    def add(self, name, status, note=""):
        plan = next(c for c in self.plan if c.name == name)
        self.result.checks += (Check(name, status, plan.independent, plan.note),)
        if note:
            self.result.notes += (note,)

    def fail(self, kind, lines, culprits=()):
        head = "%s check failed for %s at %s" % (kind, self.text, self.where)
        body = list(lines)
        for c in culprits:
            body.append("  wrong rule: %s" % c)
        if not culprits and kind != "forward/reverse":
            body.append("  no single node's local derivative disagrees with central differences of that node")
        done = {c.name for c in self.result.checks}
        summary = GradCheck(self.result.checks + tuple(c for c in self.plan if c.name not in done)).summary()
        err = GradientMismatch("\n".join([head] + body + ["  " + summary]))
        err.report, err.culprits = self.result, tuple(culprits)
        raise err

    def direction_lines(self, dirs=None):
        dirs = self.dirs if dirs is None else dirs
        return ["  direction v (random normal, each coordinate scaled by max(|x_i|, 1)): " +
                "; ".join("v_%s = %s" % (n, _fmt(d).replace("\n", " ")) for n, d in dirs.items())]


def _plain(v):
    return float(v) if np.ndim(v) == 0 else v


_CONVENTION = {"min-norm": "the min-norm subgradient", "mean": "the mean of the one-sided derivatives",
               "right": "the derivative from the right"}


def _kink_note(left, right, along, got, other=""):
    return ("kink: one-sided derivatives differ (left %.10g, right %.10g) along %s; symgrad uses %s "
            "(kink convention %r): %.10g%s" % (left.value, right.value, along, _CONVENTION.get(F.KINK, F.KINK),
                                               F.KINK, got, other))


def sympy_check(ctx, rtol, atol, fd_rtol, oracle_entries):
    """Check (a): the gradient against ``sympy.diff`` (``oracle.sympy_gradient``; for networks
    ``network_oracle`` while the parameters have at most ``oracle_entries`` entries). An entry
    that disagrees passes only at a kink, between its one-sided derivatives. Run by
    ``check_grads(..., modes=("sympy",))``."""
    f, vals = ctx.f, ctx.vals
    entries = sum(int(np.size(vals[n])) for n in ctx.wnames)
    if ctx.network:
        if entries > oracle_entries:
            ctx.add("sympy", "skipped", "sympy.diff skipped: %d parameter entries (more than ORACLE_ENTRIES = %d)"
                    % (entries, oracle_entries))
            return
        refs = network_oracle(ctx.expr, f, list(ctx.wrt), vals)
    else:
        g = sympy_gradient(ctx.expr, list(ctx.wrt), {s: vals[s.name] for s in f.params})
        out_shape = np.shape(f(**vals))
        refs = {}
        for i, w in enumerate(ctx.wnames):
            full = np.broadcast_to(g[i], np.broadcast_shapes(g[i].shape, out_shape))
            refs[w] = _sum_to(full, np.shape(vals[w])) / ctx.size
    lines, bad, kinks = [], False, []
    for w in ctx.wnames:
        got, ref = np.asarray(ctx.grads[w], float), np.asarray(refs[w], float)
        ok = got.shape == ref.shape and np.allclose(got, ref, rtol=rtol, atol=atol, equal_nan=False)
        if not ok and got.shape == ref.shape:
            found = _entry_kinks(ctx, w, got, ref, rtol, atol, fd_rtol)
            if found is not None:
                kinks += found
                ok = True
        bad |= not ok
        if ctx.network:
            lines += _compare(w, got, ref, ok)
        else:
            lines.append("  %-10s compiled = %-24s reference = %s" % (w, _fmt(got), _fmt(ref)))
    if bad:
        ctx.add("sympy", "failed")
        ctx.fail("sympy.diff", lines, wrong_nodes(f, vals, np.random.default_rng(1), fd_rtol))
    ctx.add("sympy", "kink" if kinks else "passed")
    for k in kinks:
        ctx.result.notes += (k,)


def _entry_kinks(ctx, w, got, ref, rtol, atol, fd_rtol, limit=16):
    """Kink notes for every disagreeing entry of ``w`` if each lies at a kink with the compiled
    derivative between the one-sided ones; None if any does not."""
    x = np.asarray(ctx.vals[w], float)
    bad = np.argwhere(~np.isclose(got, ref, rtol=rtol, atol=atol)) if got.ndim else [()]
    if len(bad) > limit:
        return None
    notes = []
    for idx in bad:
        idx = tuple(int(i) for i in idx)
        d = np.zeros(x.shape)
        scale = max(abs(float(x[idx])), 1.0)
        d[idx] = scale
        total = ctx.line({w: _plain(d)})
        left, right = numdiff.one_sided(total, -1), numdiff.one_sided(total, +1)
        g = float(got[idx]) * scale
        if not (numdiff.kink(left, right, fd_rtol) and numdiff.between(g, left, right, fd_rtol)):
            return None
        name = w + ("[%s]" % ", ".join(map(str, idx)) if idx else "")
        l, r = left._replace(value=left.value / scale), right._replace(value=right.value / scale)
        notes.append(_kink_note(l, r, name, float(got[idx]), "; sympy.diff gives %.10g" % float(ref[idx])))
    return notes


def fd_check(ctx, fd_rtol, eps):
    """Check (b): ⟨∇f, v⟩ against central differences along ``ctx.dirs`` (one-sided where one
    side leaves the domain; between the one-sided derivatives at a kink). A failure names the
    parameters that disagree, the direction and the wrong nodes."""
    analytic = ctx.slope_of(ctx.dirs)
    total = ctx.line(ctx.dirs)
    est = numdiff.slope(total, eps)
    if est is not None and numdiff.agree(analytic, est, fd_rtol):
        return ctx.add("fd", "passed")
    left, right = numdiff.one_sided(total, -1, eps), numdiff.one_sided(total, +1, eps)
    if est is None:  # no central step stays in the domain: one side alone
        side = next((s for s in (right, left) if s is not None), None)
        if side is None:
            return ctx.add("fd", "skipped", "finite differences skipped: f is not finite on either side of the point")
        if numdiff.agree(analytic, side, fd_rtol):
            return ctx.add("fd", "passed", "finite differences from one side only (the other leaves the domain)")
        est = side
    elif numdiff.kink(left, right, fd_rtol) and numdiff.between(analytic, left, right, fd_rtol):
        return ctx.add("fd", "kink", _kink_note(left, right, "the direction v", analytic,
                                                "; central differences give %.10g" % est.value))
    lines = ["  %-10s compiled = %-24s reference = %s (central differences, step %.3g, ± %.2g)" % (
        "⟨∇f, v⟩", _fmt(analytic), _fmt(est.value), est.h, est.error)]
    for n in ctx.wnames:  # which parameters disagree
        part = numdiff.slope(ctx.line({n: ctx.dirs[n]}), eps)
        mine = ctx.slope_of({n: ctx.dirs[n]})
        if part is not None:
            verdict = "agrees" if numdiff.agree(mine, part, fd_rtol) else "disagrees"
            lines.append("  parameter %s %s: ⟨∂f/∂%s, v_%s⟩ compiled = %r, central differences = %r" % (
                n, verdict, n, n, mine, part.value))
    ctx.add("fd", "failed")
    ctx.fail("finite-difference", lines + ctx.direction_lines(),
             wrong_nodes(ctx.f, ctx.vals, np.random.default_rng(1), fd_rtol))


def fwd_rev_check(ctx, rtol, atol):
    """Check (c): the forward program's ⟨u, J v⟩ against the reverse program's ⟨Jᵀu, v⟩, relative
    to Σ|∂f/∂x_i · v_i| (a consistency check: both use symgrad's rules)."""
    _, jv = ctx.f.jvp(ctx.dirs, **ctx.vals)
    lhs = float(np.sum(jv)) / ctx.size
    rhs = ctx.slope_of(ctx.dirs)
    scale = sum(float(np.sum(np.abs(ctx.grads[n] * d))) for n, d in ctx.dirs.items())
    if not abs(lhs - rhs) <= rtol * 100 * max(abs(lhs), abs(rhs), scale) + atol * 100:
        ctx.add("fwd-rev", "failed")
        ctx.fail("forward/reverse", [("  %-10s compiled = %-24s reference = %s" % (
            "⟨u, Jv⟩", _fmt(lhs), "⟨Jᵀu, v⟩ = " + _fmt(rhs)))] + ctx.direction_lines())
    ctx.add("fwd-rev", "passed")


# ---------------------------------------------------------------------------- report helpers

def _compare(name, got, ref, ok) -> list:
    """Report lines for one parameter's gradient: whether it agrees, else its worst entry and
    (when small) both arrays in full."""
    shape = "×".join(str(n) for n in got.shape) or "scalar"
    if ok:
        return ["  %-10s (%s) agrees with the reference" % (name, shape)]
    if got.shape != ref.shape:
        return ["  %-10s compiled shape %s, reference shape %s" % (name, got.shape, ref.shape)]
    diff = np.abs(got - ref)
    diff = np.where(np.isnan(diff), np.inf, diff)
    i = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    at = "[%s]" % ", ".join(str(int(j)) for j in i) if i else ""
    lines = ["  %-10s (%s) differs most at %s%s: compiled = %r, reference = %r" % (
        name, shape, name, at, float(got[i]), float(ref[i]))]
    if got.size <= 24:
        pad = "\n" + " " * 25
        lines.append("  %-10s compiled  = %s" % ("", _fmt(got).replace("\n", pad)))
        lines.append("  %-10s reference = %s" % ("", _fmt(ref).replace("\n", pad)))
    return lines


def _like(rng, v):
    return float(rng.standard_normal()) if np.ndim(v) == 0 else rng.standard_normal(np.shape(v))


def _sum_to(g, shape):
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    g = g.sum(axis=axes) if axes else g
    return float(g) if not shape else np.reshape(g, shape)
