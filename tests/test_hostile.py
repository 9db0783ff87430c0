"""Hostile input, cross-checked from the robustness side: strings are never executed, and the
command line answers absurd input with exit code 2 and one line, quickly."""

import os
import subprocess
import sys
import time

import pytest

parse = pytest.importorskip("symgrad.parse")
from symgrad.errors import ParseError  # noqa: E402


def canary_attempts(path):
    """Injection attempts that would create ``path`` if any part of them ran."""
    p = repr(str(path))
    return [
        f"__import__('os').system('touch ' + {p})",
        f"open({p}, 'w')",
        f"eval(\"open({p}, 'w')\")",
        f"exec(\"open({p}, 'w')\")",
        f"(lambda: open({p}, 'w'))()",
        f"().__class__.__bases__[0].__subclasses__()",
        f"x.__class__.__init__.__globals__['os'].system('touch ' + {p})",
        f"[open({p}, 'w') for _ in (1,)]",
        f"getattr(__builtins__, 'open')({p}, 'w')",
        f"compile('open({p})', 'f', 'exec')",
        f"x; open({p}, 'w')",
        f"exp(x) + __import__('os').remove({p})",
        f"Piecewise((open({p}, 'w'), True))",
        f"sin(x)(open({p}, 'w'))",
        f"(x := open({p}, 'w'))",
        f"f'{{open({p}, \"w\")}}'",
        f"breakpoint()",
        f"globals()",
        f"import os",
    ]


def test_injection_attempts_are_parse_errors_and_run_nothing(tmp_path):
    canary = tmp_path / "pwned"
    for text in canary_attempts(canary):
        with pytest.raises(ParseError):
            parse.parse_expr(text)
    assert not canary.exists()


def cli(*args, timeout=20):
    env = dict(os.environ, PYTHONHASHSEED="0")
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "symgrad", *args], capture_output=True, text=True,
                         timeout=timeout, env=env)
    return out, time.monotonic() - start


@pytest.fixture(scope="module")
def has_cli():
    pytest.importorskip("symgrad.cli")


ABSURD = {
    "5000-deep parentheses": "(" * 5000 + "x" + ")" * 5000,
    "5000-deep calls": "exp(" * 5000 + "x" + ")" * 5000,
    "very large expression": "+".join("x*%d" % i for i in range(9000)),  # ~80,000 characters
    "huge exact power": "x**(10**10**10)",
}


@pytest.mark.parametrize("name", ABSURD)
def test_cli_refuses_absurd_input_quickly_with_one_line(has_cli, name):
    text = ABSURD[name]
    out, seconds = cli("table", text, "--wrt", "x", "--at", "x=1")
    assert out.returncode == 2, (name, out.stdout[-300:], out.stderr[-300:])  # never the whole input
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr and lines[0].startswith("symgrad")
    assert len(lines[0]) < 400  # names the problem without echoing the input
    assert out.stdout == ""
    assert seconds < 10


def test_cli_injection_runs_nothing(has_cli, tmp_path):
    canary = tmp_path / "pwned"
    out, _ = cli("grad", f"__import__('os').system('touch {canary}')", "--wrt", "x", "--at", "x=1")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert not canary.exists()
