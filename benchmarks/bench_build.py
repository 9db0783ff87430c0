"""W3: build + compile time of a depth-D chain of 2-unit tanh layers, one scalar SymPy expression.

symgrad.compile (split into its phases) against naive sympy.diff + lambdify for every
parameter, the latter only while it stays under a time budget (it grows ~2.3x per layer).

    python benchmarks/bench_build.py [--depths 2,4,8,16,32,64] [--naive-budget 20]
"""

import argparse
import os
import sys
import time

import sympy as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from w3model import tanh_chain  # noqa: E402

from symgrad.emit import generate  # noqa: E402
from symgrad.compiled import compile as sg_compile  # noqa: E402
from symgrad.graph import decompose  # noqa: E402
from symgrad.sweeps import sweeps  # noqa: E402


def phases(depth):
    t0 = time.perf_counter()
    loss, params, inputs = tanh_chain(depth)
    t1 = time.perf_counter()
    g = decompose(loss)
    t2 = time.perf_counter()
    s = sweeps(g, params)
    t3 = time.perf_counter()
    generate(s, inputs)
    t4 = time.perf_counter()
    sg_compile(loss, wrt=params, args=inputs)
    t5 = time.perf_counter()
    return {"nodes": len(g), "build": t1 - t0, "decompose": t2 - t1, "sweeps": t3 - t2, "codegen": t4 - t3,
            "compile": t5 - t4}


def naive(depth):
    loss, params, inputs = tanh_chain(depth)
    t = time.perf_counter()
    sp.lambdify(inputs + params, [sp.diff(loss, p) for p in params], modules="numpy", cse=True)
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", default="2,4,8,16,32,64")
    ap.add_argument("--naive-budget", type=float, default=20.0, help="stop naive once one depth takes longer (s)")
    ap.add_argument("--naive-max-depth", type=int, default=6)
    ap.add_argument("--placeholder-notes", action="store_true",
                    help="replace the per-node comment text that sweeps.py prints with sp.sstr(whole subexpression), "
                         "exponential in D, by a placeholder: shows the cost of everything else")
    a = ap.parse_args(argv)
    if a.placeholder_notes:
        import types

        import symgrad.sweeps as sw
        proxy = types.SimpleNamespace(**{k: getattr(sp, k) for k in dir(sp) if not k.startswith("__")})
        proxy.sstr = lambda e, **kw: "…" if not isinstance(e, sp.Symbol) else sp.sstr(e, **kw)
        sw.sp = proxy
    print("%5s %6s %8s %9s %8s %8s %10s %10s %8s" % ("D", "nodes", "build", "decompose", "sweeps", "codegen",
                                                     "compile", "naive", "naive/sg"))
    naive_on = True
    for d in (int(v) for v in a.depths.split(",")):
        p = phases(d)
        nv = None
        if naive_on and d <= a.naive_max_depth:
            nv = naive(d)
            naive_on = nv < a.naive_budget
        print("%5d %6d %8.3f %9.3f %8.3f %8.3f %10.3f %10s %8s" % (
            d, p["nodes"], p["build"], p["decompose"], p["sweeps"], p["codegen"], p["compile"],
            "%.3f" % nv if nv is not None else "-", "%.1fx" % (nv / p["compile"]) if nv is not None else "-"),
            flush=True)


if __name__ == "__main__":
    main()
