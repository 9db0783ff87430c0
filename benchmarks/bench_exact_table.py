"""Exact derivative tables of e = sin(e) + x nested D deep, at x = 1: seconds per depth.

Each table is built with exact SymPy numbers (``symgrad.table(..., exact=True)``), rendered as
text and JSON, and its value and gradient are checked against the recurrence iterated with
mpmath at 50 digits (e_k = sin(e_{k-1}) + x, e_k' = cos(e_{k-1})·e_{k-1}' + 1).

    python benchmarks/bench_exact_table.py [--depths 5,10,15,20,30] [--digits 50]
"""

import argparse
import time

import mpmath
import sympy as sp

import symgrad as sg


def chain(depth):
    x = sp.Symbol("x")
    e = x
    for _ in range(depth):
        e = sp.sin(e) + x
    return e, x


def by_hand(depth, digits):
    """(value, d/dx) of the chain at x = 1 by the recurrence, with mpmath."""
    with mpmath.workdps(digits + 20):
        x = mpmath.mpf(1)
        e, de = x, mpmath.mpf(1)
        for _ in range(depth):
            e, de = mpmath.sin(e) + x, mpmath.cos(e) * de + 1
        return e, de


def run(depth, digits):
    e, x = chain(depth)
    t0 = time.perf_counter()
    t = sg.table(e, wrt=x, at={x: 1}, exact=True)
    t1 = time.perf_counter()
    str(t), t.to_json()
    t2 = time.perf_counter()
    value, grad = by_hand(depth, digits)
    with mpmath.workdps(digits):
        err = max(abs(mpmath.mpf(str(sp.N(t.value, digits))) / value - 1),
                  abs(mpmath.mpf(str(sp.N(t.gradient["x"], digits))) / grad - 1))
    return t1 - t0, t2 - t1, err


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", default="5,10,15,20,30")
    ap.add_argument("--digits", type=int, default=50)
    a = ap.parse_args(argv)
    print("depth  nodes  table (s)  render (s)  rel. error at %d digits" % a.digits)
    for d in (int(s) for s in a.depths.split(",")):
        build, render, err = run(d, a.digits)
        print("%5d  %5d  %9.2f  %10.2f  %s" % (d, 2 * d, build, render, mpmath.nstr(err, 3)))


if __name__ == "__main__":
    main()
