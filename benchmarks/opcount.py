"""Operation counts: reverse program against forward (value) program, per catalogue expression.

Counts ``sympy.count_ops`` on each assignment's small right-hand side (never on a whole
expression) plus one reduction per parameter. Baur–Strassen says the gradient program
(values + adjoints) costs at most a small constant times the function; the goal here is
reverse-only ops <= 3x forward ops.

    python benchmarks/opcount.py [--names a,b,...]
"""

import argparse
import os
import sys

import sympy as sp

import symgrad as sg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from catalogue import CATALOGUE  # noqa: E402


def ops(program) -> int:
    return sum(max(int(sp.count_ops(a.expr)), 1) for a in program)


def counts(case):
    f = sg.compile(case.expr, wrt=list(case.wrt), args=case.args)
    fwd = ops(f.sweeps.values)
    rev = ops(f.sweeps.reverse) + len(case.wrt)  # + one reduction per parameter
    tan = ops(f.sweeps.forward)
    return fwd, rev, tan


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", default="", help="comma-separated catalogue names (default: all)")
    a = ap.parse_args(argv)
    names = [n for n in a.names.split(",") if n] or list(CATALOGUE)
    print("%-36s %6s %6s %6s %8s" % ("expression", "value", "rev", "jvp", "rev/val"))
    worst, bad = 0.0, []
    for n in names:
        fwd, rev, tan = counts(CATALOGUE[n])
        r = rev / fwd
        worst = max(worst, r)
        if r > 3:
            bad.append(n)
        print("%-36s %6d %6d %6d %7.2fx" % (n, fwd, rev, tan, r))
    print("worst reverse/value ratio: %.2fx; over 3x: %s" % (worst, ", ".join(bad) or "none"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
