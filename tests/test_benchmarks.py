"""Smoke test: each benchmark script runs at a tiny size (they are scripts, not timed tests)."""

import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")


@pytest.mark.parametrize("script, args, expect", [
    ("bench_scalar.py", ["--n", "500", "--rounds", "2", "--number", "1"], "grad / forward value"),
    ("opcount.py", ["--names", "exp,tanh,lecture_logistic_loss"], "worst reverse/value ratio"),
    ("bench_build.py", ["--depths", "2,3", "--naive-max-depth", "2"], "naive/sg"),
    ("bench_build.py", ["--depths", "2", "--naive-max-depth", "0", "--placeholder-notes"], "compile"),
    ("bench_point.py", ["--quick"], "symgrad f.grad (Python floats)"),
    ("bench_network.py", ["--quick"], "ratio"),
    ("bench_memory.py", ["--quick"], "ratio symgrad / careful hand"),
    ("bench_second.py", ["--quick"], "ratios to the NumPy closed form"),
    ("bench_hessian.py", ["--quick", "--no-peers"], "hessian_diag"),
    ("bench_exact_table.py", ["--depths", "2,8", "--digits", "30"], "rel. error at 30 digits"),
    ("bench_bigdata.py", ["--quick"], "Dask peak / data"),
    ("gpu_check.py", ["--n", "2000", "--batch", "64", "--repeats", "1"], "speed-up vs NumPy"),
])
def test_benchmark_script_runs(script, args, expect):
    r = subprocess.run([sys.executable, os.path.join(BENCH, script), *args], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout
