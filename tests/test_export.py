"""Standalone export (symgrad.export): one module, NumPy only, that runs where symgrad is not installed.

The exported modules run in a fresh interpreter (``python -I -S``, sys.path holding only the
temporary directory, the standard library and NumPy's/SciPy's site directory, and a meta path
finder refusing symgrad), and are compared with independent references: sympy.diff evaluated
at 30 digits for scalar expressions, the hand-written backprop of symgrad.reference and central
differences for a network. The array-API flavour runs the same way on NumPy, array-api-strict,
PyTorch and JAX (eager and under jax.jit), with and without array_api_compat.
"""

import ast
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy
import sympy as sp

import symgrad as sg
from symgrad import nn, reference
from symgrad.cli import main
from symgrad.errors import InputError, UnsupportedError
from symgrad.export import Exportable, export

SITES = sorted({os.path.dirname(os.path.dirname(m.__file__)) for m in (np, scipy)})

PRELUDE = r'''
import sys


class _NoSymgrad:
    def find_spec(self, name, path=None, target=None):
        for blocked in {blocked!r}:
            if name == blocked or name.startswith(blocked + "."):
                raise ImportError("%s is not installed here (blocked by the test)" % blocked)
        return None


sys.meta_path.insert(0, _NoSymgrad())
sys.path.insert(0, {tmp!r})
sys.path.extend({sites!r})
try:
    import symgrad
except ImportError:
    pass
else:
    raise SystemExit("symgrad is importable")
import json
import numpy as np


def J(v):
    if isinstance(v, dict):
        return {{k: J(x) for k, x in v.items()}}
    if isinstance(v, (tuple, list)):
        return [J(x) for x in v]
    try:
        return np.asarray(v).tolist()
    except (TypeError, ValueError, RuntimeError):  # an array NumPy cannot read directly
        return np.from_dlpack(v).tolist()


def done(result):
    assert not any(m == "symgrad" or m.startswith("symgrad.") for m in sys.modules)
    print(json.dumps(result))
'''


def fresh(tmp_path, body, blocked=("symgrad",)):
    """Run ``body`` in a fresh interpreter without symgrad (nor the other ``blocked`` packages);
    (returncode, stdout, stderr)."""
    code = PRELUDE.format(tmp=str(tmp_path), sites=SITES, blocked=tuple(blocked)) + textwrap.dedent(body)
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=str(tmp_path), capture_output=True,
                         text=True, timeout=300)
    return out.returncode, out.stdout, out.stderr


def fresh_json(tmp_path, body, blocked=("symgrad",)):
    code, out, err = fresh(tmp_path, body, blocked)
    assert code == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def load(source):
    """The exported module's namespace, in this process (for semantics against the compiled function)."""
    namespace = {"__name__": "exported"}
    exec(compile(source, "<exported>", "exec"), namespace)
    return namespace


def close(a, b, rel):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-300)
    assert float(np.max(np.abs(a - b))) <= rel * scale, (a, b)


# ---------------------------------------------------------------------------- scalar expressions

x, y, w, b = sp.symbols("x y w b")
S = 1 / (1 + sp.exp(-(w * x + b)))
LOGISTIC = -y * sp.log(S) - (1 - y) * sp.log(1 - S) + sp.erf(b * x) / 10  # rewrites, scipy.special
X = [3.0, -1.0, 0.5, 2.0]
Y = [1.0, 0.0, 1.0, 0.0]
W, B0 = 0.75, -0.25
V = {"w": 0.5, "b": -2.0}


def sympy_reference(expr):
    """Per-sample values, summed gradient, per-sample jvp and H·v of the sum, by sympy.diff at 30 digits."""
    def at(e, xi, yi):
        return float(sp.N(e.subs({x: sp.Float(xi, 30), y: sp.Float(yi, 30), w: sp.Float(W, 30),
                                  b: sp.Float(B0, 30)}), 30))

    d = {"w": sp.diff(expr, w), "b": sp.diff(expr, b)}
    h = {p: {"w": sp.diff(d[p], w), "b": sp.diff(d[p], b)} for p in d}
    samples = list(zip(X, Y))
    return {
        "value": [at(expr, *s) for s in samples],
        "grad": {p: sum(at(d[p], *s) for s in samples) for p in d},
        "jvp": [sum(V[p] * at(d[p], *s) for p in d) for s in samples],
        "hvp": {p: sum(V[q] * at(h[p][q], *s) for q in V for s in samples) for p in d},
    }


def test_scalar_export_runs_without_symgrad_and_matches_sympy_diff(tmp_path):
    f = sg.compile(LOGISTIC, wrt=[w, b], args=[x, y])
    source = f.export(tmp_path / "model.py")
    assert (tmp_path / "model.py").read_text(encoding="utf-8") == source
    imports = {a.name for n in ast.parse(source).body if isinstance(n, ast.Import) for a in n.names}
    assert imports == {"difflib", "math", "numbers", "numpy", "scipy.special"}
    assert not any(isinstance(n, ast.ImportFrom) for n in ast.parse(source).body)
    assert "ξ" in source and "def _value_and_grad(x, y, w, b):" in source  # the generated programs, kept
    got = fresh_json(tmp_path, f"""
        import model
        X, Y, V = np.array({X!r}), np.array({Y!r}), {V!r}
        model.selfcheck()
        value, grads = model.value_and_grad(x=X, y=Y, w={W!r}, b={B0!r})
        done({{"value": J(model.value(X, Y, {W!r}, {B0!r})), "reduced": value, "vg": J(grads),
               "grad": J(model.grad(X, Y, w={W!r}, b={B0!r})), "jvp": J(model.jvp(V, x=X, y=Y, w={W!r}, b={B0!r})),
               "hvp": J(model.hvp(V, X, Y, {W!r}, {B0!r})), "names": list(model.NAMES), "all": model.__all__}})
    """)
    ref = sympy_reference(LOGISTIC)
    close(got["value"], ref["value"], 1e-13)
    close(got["reduced"], sum(ref["value"]), 1e-13)
    close(got["jvp"][0], ref["value"], 1e-13)
    close(got["jvp"][1], ref["jvp"], 1e-12)
    for p in ("w", "b"):
        close(got["grad"][p], ref["grad"][p], 1e-12)
        close(got["vg"][p], ref["grad"][p], 1e-12)
        close(got["hvp"][p], ref["hvp"][p], 1e-11)
    assert got["names"] == ["x", "y", "w", "b"]
    assert got["all"] == ["value", "grad", "value_and_grad", "jvp", "hvp", "selfcheck", "InputError"]


def test_same_semantics_as_the_compiled_methods():
    f = sg.compile(LOGISTIC, wrt=[w, b], args=[x, y])
    m = load(f.export())
    Xa, Ya = np.array(X), np.array(Y)
    calls = [((), dict(x=Xa, y=Ya, w=W, b=B0)), ((Xa, Ya, W, B0), {}), ((Xa, Ya), dict(w=W, b=B0)),
             ((), dict(x=3.0, y=1.0, w=W, b=B0)), ((), dict(x=Xa, y=1.0, w=np.array([W]), b=B0)),
             ((), dict(x=[[1.0], [2.0]], y=Ya, w=W, b=1)), ((), dict(x=Xa.astype(np.float32), y=Ya, w=W, b=B0))]
    for args, values in calls:
        for name in ("value", "grad", "value_and_grad"):
            a, e = m[name](*args, **values), getattr(f, name if name != "value" else "__call__")(*args, **values)
            assert type(a) is type(e)
            if isinstance(a, tuple):
                close(a[0], e[0], 1e-13)
                a, e = a[1], e[1]
            if isinstance(a, dict):
                assert list(a) == list(e)
                for k in a:
                    assert np.shape(a[k]) == np.shape(e[k]) and type(a[k]) is type(e[k])
                    close(a[k], e[k], 1e-13)
            else:
                close(a, e, 1e-13)
        for fn in ("jvp", "hvp"):
            try:
                e = getattr(f, fn)(V, *args, **values)
            except InputError as error:  # H·v takes directions shaped exactly like the parameters
                with pytest.raises(m["InputError"]) as info:
                    m[fn](V, *args, **values)
                assert str(info.value) == str(error)
                continue
            a = m[fn](V, *args, **values)
            for u, v in zip(a, e) if fn == "jvp" else ((a[k], e[k]) for k in e):
                close(u, v, 1e-12)


def test_reduce_mean_and_per_sample():
    for reduce in ("mean", None):
        f = sg.compile(LOGISTIC, wrt=[w, b], args=[x, y], reduce=reduce)
        m = load(f.export())
        m["selfcheck"]()
        values = dict(x=np.array(X), y=np.array(Y), w=W, b=B0)
        a, e = m["value_and_grad"](**values), f.value_and_grad(**values)
        close(a[0], e[0], 1e-13)
        for k in e[1]:
            close(a[1][k], e[1][k], 1e-13)
            close(m["grad"](**values)[k], e[1][k], 1e-13)
        ref = sympy_reference(LOGISTIC)
        if reduce == "mean":
            close(a[1]["w"], ref["grad"]["w"] / len(X), 1e-12)
            close(m["hvp"](V, **values)["b"], ref["hvp"]["b"] / len(X), 1e-11)
            with pytest.raises(m["InputError"], match="the batch is empty"):
                m["grad"](x=np.array([]), y=np.array([]), w=W, b=B0)
        else:
            assert a[1]["w"].shape == (len(X),)
            with pytest.raises(m["InputError"], match="second derivatives are of the reduced value"):
                m["hvp"](V, **values)


def test_check_finite_false_lets_nan_through():
    f = sg.compile(LOGISTIC, wrt=[w, b], args=[x, y], check_finite=False)
    m = load(f.export())
    m["selfcheck"]()
    value = m["value"](x=np.array([1.0, np.nan]), y=1.0, w=W, b=B0)
    assert np.isnan(value[1]) and np.isfinite(value[0])
    assert np.isnan(m["grad"](x=np.nan, y=1.0, w=W, b=B0)["w"])


# ---------------------------------------------------------------------------- networks

def net_params(net, seed=3):
    rng = np.random.default_rng(seed)
    return {p.name: rng.normal(scale=0.5, size=tuple(int(n) for n in p.shape)) for p in net.params}


def test_network_export_runs_without_symgrad_and_matches_hand_written_backprop(tmp_path):
    net = nn.mlp([3, 5, 4], activation="tanh", loss="softmax_cross_entropy")
    f = sg.compile(net.loss, wrt=list(net.params), args=[net.inputs, net.targets])
    f.export(str(tmp_path / "net_model.py"))
    rng = np.random.default_rng(0)
    Xb, Yb = rng.normal(size=(6, 3)), np.eye(4)[[0, 1, 2, 3, 1, 0]]
    params = net_params(net)
    tangents = net_params(net, seed=4)
    data = {"X": Xb.tolist(), "Y": Yb.tolist(), "p": {k: v.tolist() for k, v in params.items()},
            "t": {k: v.tolist() for k, v in tangents.items()}}
    (tmp_path / "data.json").write_text(json.dumps(data))
    got = fresh_json(tmp_path, """
        import net_model as m
        d = json.load(open("data.json"))
        X, Y = np.array(d["X"]), np.array(d["Y"])
        p = {k: np.array(v) for k, v in d["p"].items()}
        t = {k: np.array(v) for k, v in d["t"].items()}
        m.selfcheck()
        loss, grads = m.value_and_grad(X=X, Y=Y, **p)
        done({"loss": loss, "grads": J(grads), "grad": J(m.grad(X, Y, *p.values())), "value": m.value(X=X, Y=Y, **p),
              "jvp": J(m.jvp(t, X=X, Y=Y, **p)), "hvp": J(m.hvp(t, X=X, Y=Y, **p))})
    """)
    loss, grads = reference.mlp_value_and_grad(params, Xb, Yb, activation="tanh", loss="softmax_cross_entropy")
    close(got["loss"], loss, 1e-13)
    close(got["value"], loss, 1e-13)
    for k in params:
        close(got["grads"][k], grads[k], 1e-12)
        close(got["grad"][k], grads[k], 1e-12)
    # jvp and H·v against central differences of the hand-written loss and gradient
    h = 1e-5

    def shifted(s):
        return {k: params[k] + s * tangents[k] for k in params}

    fd = (reference.mlp_value_and_grad(shifted(h), Xb, Yb)[0] - reference.mlp_value_and_grad(shifted(-h), Xb, Yb)[0])
    close(got["jvp"][0], loss, 1e-13)
    close(got["jvp"][1], fd / (2 * h), 1e-7)
    gp, gm = reference.mlp_value_and_grad(shifted(h), Xb, Yb)[1], reference.mlp_value_and_grad(shifted(-h), Xb, Yb)[1]
    for k in params:
        close(got["hvp"][k], (gp[k] - gm[k]) / (2 * h), 1e-6)


def test_network_with_other_losses_and_a_fixed_batch_exports():
    for net in (nn.mlp([2, 3, 1], activation="sigmoid", loss="binary_cross_entropy"),
                nn.mlp([2, 3, 2], activation="relu", loss="mse", batch=4), nn.logistic_regression(3)):
        f = sg.compile(net.loss, wrt=list(net.params), args=[net.inputs, net.targets])
        m = load(f.export())
        m["selfcheck"]()
        rng = np.random.default_rng(1)
        n = 4
        values = {"X": rng.normal(size=(n, int(net.inputs.shape[1]))),
                  "Y": (rng.random(size=(n, int(net.targets.shape[1]))) > 0.5).astype(float), **net_params(net)}
        a, e = m["value_and_grad"](**values), f.value_and_grad(**values)
        close(a[0], e[0], 1e-13)
        for k in e[1]:
            close(a[1][k], e[1][k], 1e-13)


def test_matrix_valued_output():
    n = sp.Symbol("n", integer=True, positive=True)
    Xm, Wm = sp.MatrixSymbol("X", n, 3), sp.MatrixSymbol("W", 3, 2)
    rng = np.random.default_rng(2)
    values = {"X": rng.normal(size=(5, 3)), "W": rng.normal(size=(3, 2))}
    tangent = {"W": rng.normal(size=(3, 2))}
    T = np.tanh(values["X"] @ values["W"])
    f = sg.compile((Xm * Wm).applyfunc(sp.tanh), wrt=[Wm], args=[Xm])
    m = load(f.export())
    m["selfcheck"]()
    close(m["value"](**values), T, 1e-14)
    value, dot = m["jvp"](tangent, **values)
    close(dot, (1 - T ** 2) * (values["X"] @ tangent["W"]), 1e-13)
    try:
        f.grad(**values)
    except InputError:  # a matrix-valued output is not summed unless reduce says so (symgrad.matjac)
        with pytest.raises(m["InputError"], match="grad needs one number to differentiate"):
            m["grad"](**values)
    for reduce, scale in (("sum", 1), ("mean", T.size)):
        g = sg.compile((Xm * Wm).applyfunc(sp.tanh), wrt=[Wm], args=[Xm], reduce=reduce)
        m = load(g.export())
        m["selfcheck"]()
        loss, grads = m["value_and_grad"](**values)
        close(loss, T.sum() / scale, 1e-13)
        close(grads["W"], values["X"].T @ (1 - T ** 2) / scale, 1e-13)
        close(m["grad"](**values)["W"], values["X"].T @ (1 - T ** 2) / scale, 1e-13)


# ---------------------------------------------------------------------------- determinism

def test_exports_are_byte_identical_in_one_process_and_across_processes(tmp_path):
    f = sg.compile(LOGISTIC, wrt=[w, b], args=[x, y])
    first, first_xp = f.export(), f.export(flavour="array-api")
    assert sg.compile(LOGISTIC, wrt=[w, b], args=[x, y]).export() == first == f.export() == export(f)
    assert sg.compile(LOGISTIC, wrt=[w, b], args=[x, y]).export(flavour="array-api") == first_xp
    assert first_xp == export(f, flavour="array-api") != first
    for source in (first, first_xp):
        assert not re.search(r"\b(19|20)\d\d-\d\d-\d\d\b|\d\d:\d\d:\d\d", source)  # no date, no time
    script = textwrap.dedent("""
        import sys, sympy as sp, symgrad as sg
        x, y, w, b = sp.symbols("x y w b")
        S = 1 / (1 + sp.exp(-(w * x + b)))
        e = -y * sp.log(S) - (1 - y) * sp.log(1 - S) + sp.erf(b * x) / 10
        f = sg.compile(e, wrt=[w, b], args=[x, y])
        f.export(sys.argv[1])
        f.export(sys.argv[3], flavour="array-api")
        net = sg.nn.mlp([3, 4, 2])
        g = sg.compile(net.loss, wrt=list(net.params), args=[net.inputs, net.targets])
        g.export(sys.argv[2])
        g.export(sys.argv[4], flavour="array-api")
    """)
    outputs = []
    for seed in ("0", "12345"):
        paths = [str(tmp_path / ("%s%s.py" % (kind, seed))) for kind in ("s", "n", "sx", "nx")]
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run([sys.executable, "-c", script, *paths], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append([open(p, "rb").read() for p in paths])
    assert outputs[0] == outputs[1]
    assert outputs[0][0] == first.encode("utf-8") and outputs[0][2] == first_xp.encode("utf-8")


# ---------------------------------------------------------------------------- selfcheck

def test_selfcheck_fails_when_a_stored_vector_is_tampered_with(tmp_path):
    f = sg.compile(LOGISTIC, wrt=[w, b], args=[x, y])
    source = f.export()
    (tmp_path / "good.py").write_text(source, encoding="utf-8")
    match = re.search(r'"reduced": (-?[0-9.e+-]+),', source)
    tampered = float(match.group(1)) * (1 + 1e-8)
    (tmp_path / "bad.py").write_text(source.replace(match.group(0), '"reduced": %r,' % tampered, 1), encoding="utf-8")
    grads = re.search(r'"grad": \(\n\s+(-?[0-9.e+-]+),', source)
    (tmp_path / "bad_grad.py").write_text(
        source.replace(grads.group(0), grads.group(0).replace(grads.group(1), repr(float(grads.group(1)) + 1e-3)), 1),
        encoding="utf-8")
    # a projection of a batch result: the sum of the values' entries, off by a relative 1e-9
    value = re.search(r'"value": \(\(3,\), (-?[0-9.e+-]+),', source)
    off = value.group(0).replace(value.group(1), repr(float(value.group(1)) * (1 + 1e-9)))
    (tmp_path / "bad_sum.py").write_text(source.replace(value.group(0), off, 1), encoding="utf-8")
    # the generated code itself: one coefficient of the gradient-only program, off by 1e-6
    (tmp_path / "bad_code.py").write_text(tamper(source, "_grad"), encoding="utf-8")
    got = fresh_json(tmp_path, """
        import good, bad, bad_grad, bad_sum, bad_code
        good.selfcheck()
        out = []
        for m in (bad, bad_grad, bad_sum, bad_code):
            try:
                m.selfcheck()
            except AssertionError as e:
                out.append(str(e))
            else:
                out.append(None)
        done(out)
    """)
    assert got[0].startswith("selfcheck failed: value_and_grad() value at test vector 1 differs from the value "
                             "stored at export: got ")
    assert "relative difference" in got[0] and "> 1e-10" in got[0]
    assert got[1].startswith("selfcheck failed: value_and_grad() gradient 'w' at test vector 1")
    assert got[2].startswith("selfcheck failed: value() at test vector 1 differs from the value stored at export: "
                             "the sum of its entries is ")
    assert got[3].startswith("selfcheck failed: grad()['w'] at test vector 1"), got[3]


def tamper(source, program):
    """``source`` with the first adjoint line of ``program`` (a generated function) scaled by
    1 + 1e-6: one coefficient of the generated code changed, the stored numbers untouched."""
    start = source.index("\ndef %s(" % program)
    end = source.index("\ndef ", start + 1)
    body = source[start:end]
    line = re.search(r"\n(    xi\d+_bar = )(.*?)(  # .*)?\n", body)
    assert line, body
    changed = "\n%s1.000001*(%s)%s\n" % (line.group(1), line.group(2), line.group(3) or "")
    out = source[:start] + body.replace(line.group(0), changed, 1) + source[end:]
    assert out != source
    return out


MLP_SIZES = [64, 128, 10]


@pytest.fixture(scope="module")
def big_mlp():
    net = nn.mlp(MLP_SIZES)
    f = sg.compile(net.loss, wrt=list(net.params), args=[net.inputs, net.targets])
    return f, {flavour: f.export(flavour=flavour) for flavour in ("numpy", "array-api")}


def test_network_export_is_compact(big_mlp):
    f, sources = big_mlp
    for flavour, source in sources.items():
        # the test vectors store projections, not every entry: the code is most of the module
        # (before: about 9,000 lines and 0.78 MB for this network)
        assert len(source.encode("utf-8")) < 60_000, (flavour, len(source))
        vectors = source[source.index("\n_VECTORS = ["):]
        assert vectors.count("\n") < 60 and len(vectors) < 6_000, (flavour, len(vectors))
        selfcheck = source[source.index("# ---- selfcheck"):]
        assert selfcheck.count("\n") < 250, flavour
        numbers = re.findall(r"-?\d+\.\d+(?:e[+-]?\d+)?", vectors)
        assert numbers and all(repr(float(s)) == s for s in numbers)
        m = load(source)
        m["selfcheck"]()
        (vec,) = m["_VECTORS"]
        inputs, tangents = m["_point"](*vec["point"])
        assert [np.shape(v) for v in inputs] == [(3, 64), (3, 10), (64, 128), (1, 128), (128, 10), (1, 10)]
        # exact binary fractions from the integer recurrence: no entry needs more than 24 bits
        for v in inputs + tangents:
            assert np.all(np.asarray(v) * 2.0 ** 24 == np.round(np.asarray(v) * 2.0 ** 24))
        assert len({float(e) for e in np.ravel(inputs[2])}) > 4000  # W1's entries do not repeat with a short period
        # the stored projections are those of the compiled function's own results at that point
        values = dict(zip(m["NAMES"], inputs))
        loss, grads = f.value_and_grad(**values)
        assert vec["reduced"] == pytest.approx(loss, rel=1e-12)
        for k, name in enumerate(m["WRT"]):
            shape, total, l1, top, weighted, picks = vec["grad"][k]
            g = grads[name]
            assert shape == g.shape and total == pytest.approx(g.sum(), rel=1e-9, abs=1e-12 * l1)
            assert l1 == pytest.approx(np.abs(g).sum(), rel=1e-12) and top == pytest.approx(np.abs(g).max(), rel=1e-12)
            assert weighted == pytest.approx(np.dot(m["_weights"](g.size), g.ravel()), rel=1e-9, abs=1e-12 * l1)
            assert picks == pytest.approx([g.ravel()[i] for i in m["_picks"](g.size)], rel=1e-12)


def test_selfcheck_fails_when_the_generated_network_code_is_tampered_with(big_mlp):
    _, sources = big_mlp
    for flavour, source in sources.items():
        for program, first in (("_grad", "grad()['W1']"), ("_value_and_grad", "value_and_grad() gradient 'W1'")):
            m = load(tamper(source, program))
            with pytest.raises(AssertionError) as info:
                m["selfcheck"]()
            assert str(info.value).startswith("selfcheck failed: %s at test vector 1" % first), (flavour, info.value)
            assert "> 1e-10" in str(info.value)
        # the formula of the inputs is part of the check too
        m = load(source.replace("1664525 * state", "1664527 * state", 1))
        with pytest.raises(AssertionError, match=r"selfcheck failed: value\(\) at test vector 1"):
            m["selfcheck"]()


def test_selfcheck_vectors_are_exact_float_reprs_and_finite():
    f = sg.compile(sp.log(x) * w + sp.sqrt(1 - x) * b, wrt=[w, b])  # finite only for 0 < x <= 1
    for flavour in ("numpy", "array-api"):
        source = f.export(flavour=flavour)
        vectors = source[source.index("_VECTORS = ["):]
        numbers = re.findall(r"-?\d+\.\d+(?:e[+-]?\d+)?", vectors)
        assert numbers and all(repr(float(s)) == s for s in numbers)
        m = load(source)
        assert len(m["_VECTORS"]) == 2  # a batch and a point
        m["selfcheck"]()
        family, shapes, _ = m["_VECTORS"][0]["point"]
        assert family == "positive" and shapes == ((3,), (), ())
        inputs, _ = m["_point"](*m["_VECTORS"][0]["point"])
        assert all(0 < v < 1 for v in np.ravel(inputs[0]))


# ---------------------------------------------------------------------------- errors

ERROR_CALLS = """[
    ("missing", (), dict(x=np.array(X), y=np.array(Y), w=W)),
    ("typo", (), dict(x=np.array(X), y=np.array(Y), w=W, bb=B0)),
    ("twice", (np.array(X),), dict(x=np.array(X), y=np.array(Y), w=W, b=B0)),
    ("too_many", (1.0, 2.0, 3.0, 4.0, 5.0), {}),
    ("shape", (), dict(x=np.ones(3), y=np.ones(4), w=W, b=B0)),
    ("param_shape", (), dict(x=np.ones(4), y=np.ones(4), w=np.ones(3), b=B0)),
    ("nan", (), dict(x=np.array([1.0, np.nan]), y=1.0, w=W, b=B0)),
    ("inf", (), dict(x=1.0, y=float("inf"), w=W, b=B0)),
    ("string", (), dict(x="abc", y=1.0, w=W, b=B0)),
    ("complex", (), dict(x=1j, y=1.0, w=W, b=B0)),
    ("huge", (), dict(x=10 ** 400, y=1.0, w=W, b=B0)),
]"""


def compiled_error(fn, *args, **values):
    with pytest.raises(InputError) as info:
        fn(*args, **values)
    return str(info.value)


def test_error_messages_name_the_culprit_like_the_compiled_function(tmp_path):
    f = sg.compile(LOGISTIC, wrt=[w, b], args=[x, y])
    f.export(tmp_path / "model.py")
    calls = eval(ERROR_CALLS, {"np": np, "X": X, "Y": Y, "W": W, "B0": B0})  # noqa: S307 - the test's own text
    expected = {k: compiled_error(f.grad, *a, **v) for k, a, v in calls}
    assert "missing value for 'b'" in expected["missing"] and "did you mean 'b'?" in expected["typo"]
    assert "x has shape (3,) and y has shape (4,)" in expected["shape"]
    assert "value of 'x' contains nan or inf" in expected["nan"]
    got = fresh_json(tmp_path, f"""
        import model
        X, Y, W, B0 = {X!r}, {Y!r}, {W!r}, {B0!r}
        out = {{}}
        for key, args, values in eval({ERROR_CALLS!r}):
            try:
                model.grad(*args, **values)
            except model.InputError as e:
                assert isinstance(e, ValueError)
                out[key] = str(e)
        try:
            model.jvp({{"w": np.ones(7)}}, x=np.ones(4), y=np.ones(4), w=0.5, b=0.0)
        except model.InputError as e:
            out["tangent"] = str(e)
        try:
            model.hvp({{"q": 1.0}}, 1.0, 1.0, 0.5, 0.0)
        except model.InputError as e:
            out["direction"] = str(e)
        done(out)
    """)
    for key, message in expected.items():
        assert got[key] == message.replace("symgrad computes", "this module computes"), key
    assert got["tangent"] == compiled_error(f.jvp, {"w": np.ones(7)}, x=np.ones(4), y=np.ones(4), w=0.5, b=0.0)
    assert got["direction"] == compiled_error(f.hvp, {"q": 1.0}, 1.0, 1.0, 0.5, 0.0)


def test_network_shape_errors_name_the_matrix():
    net = nn.mlp([3, 4, 2])
    f = sg.compile(net.loss, wrt=list(net.params), args=[net.inputs, net.targets])
    m = load(f.export())
    good = {"X": np.ones((5, 3)), "Y": np.ones((5, 2)), **net_params(net)}
    bad = [dict(good, W1=np.ones((4, 4))), dict(good, Y=np.ones((6, 2))), dict(good, X=np.ones(3)),
           dict(good, b1=2.0), dict(good, W2=np.full((4, 2), np.nan)), dict(good, X=np.ones((0, 3)), Y=np.ones((0, 2)))]
    for values in bad:
        message = compiled_error(f.value_and_grad, **values)
        with pytest.raises(m["InputError"]) as info:
            m["value_and_grad"](**values)
        assert str(info.value) == message
    assert "W1 has shape (4, 4) but the expression needs (3, 4)" in compiled_error(f.grad, **bad[0])
    assert "Y has shape (6, 2) but the expression needs (B, 2) with B = 5 from X" in compiled_error(f.grad, **bad[1])


def test_refusals():
    f = sg.compile(LOGISTIC, wrt=[w, b], args=[x, y])
    assert f.export(flavour="array_api") == f.export(flavour="xp") == f.export(flavour="array-api")
    for bad in ("torch", None, 3):
        with pytest.raises(InputError, match="flavour must be one of 'numpy', 'array-api'"):
            f.export(flavour=bad)
    assert isinstance(f, Exportable)

    class twice(sp.Function):
        _imp_ = staticmethod(lambda t: 2 * t)

        def fdiff(self, argindex=1):
            return sp.Integer(2)

    g = sg.compile(twice(w * x), wrt=[w])
    for flavour in ("numpy", "array-api"):
        with pytest.raises(UnsupportedError, match="_imp_"):
            g.export(flavour=flavour)
        with pytest.raises(UnsupportedError, match="cannot export"):
            export(sg.compile(sp.Matrix([w * x, w]), wrt=[w]), flavour=flavour)
    namespace = sg.compile(sp.exp(w * sp.Symbol("xp")), wrt=[w])  # xp is reserved: the parameter is xp_
    load(namespace.export())["selfcheck"]()
    load(namespace.export(flavour="array-api"))["selfcheck"]()


# ---------------------------------------------------------------------------- hostile names

HOSTILE = ['x"""; import os', "a\nimport os\nos.system('touch PWNED')", "a\r\nb", "a\u2028b", "\\N{", "a\\",
           '"', "", "lambda", "a\ud800b", "_sum_to", "value", "grad", "InputError", "NAMES", "selfcheck", "np",
           "# comment", "{0}%s", "x" * 500]


def skeleton(source):
    """The module's AST with every name and constant blanked: what no user text may change."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.value = None
        elif isinstance(node, ast.Name):
            node.id = "_"
        elif isinstance(node, ast.arg):
            node.arg = "_"
    return ast.dump(tree)


def test_hostile_names_cannot_change_the_exported_code(tmp_path):
    def build(names):
        syms = [sp.Symbol(n) for n in names]
        params = [sp.Symbol("p%d" % i) for i in range(3)]
        e = sp.tanh(params[0] * syms[0]) + sp.exp(params[1] * syms[1]) * syms[2]
        for s in syms[3:]:
            e += sp.sin(params[2] * s)
        return sg.compile(e, wrt=params, args=syms)

    hostile = build(HOSTILE)
    plain = build(["n%d" % i for i in range(len(HOSTILE))])
    source = hostile.export(tmp_path / "hostile.py")
    assert skeleton(source) == skeleton(plain.export())
    xp_source = hostile.export(flavour="array-api")
    assert skeleton(xp_source) == skeleton(plain.export(flavour="array-api"))
    assert xp_source.splitlines() == xp_source.split("\n")[:-1]
    xm = load(xp_source)
    assert xm["NAMES"] == hostile.names
    xm["selfcheck"]()
    assert source.splitlines() == source.split("\n")[:-1]  # no character but \n ends a line
    m = load(source)
    assert m["NAMES"] == hostile.names and m["ARGS"] == tuple(HOSTILE)
    m["selfcheck"]()
    values = {n: 0.1 * (i + 1) for i, n in enumerate(hostile.names)}
    got, want = m["grad"](**values), hostile.grad(**values)
    assert got.keys() == want.keys() and all(abs(got[k] - want[k]) <= 1e-14 * abs(want[k]) for k in want)
    got = xm["grad"](**values)
    assert got.keys() == want.keys() and all(abs(float(got[k]) - want[k]) <= 1e-14 * abs(want[k]) for k in want)
    out = fresh_json(tmp_path, """
        import hostile
        hostile.selfcheck()
        values = {n: 0.1 * (i + 1) for i, n in enumerate(hostile.NAMES)}
        try:
            hostile.grad(**{k: v for k, v in values.items() if k != hostile.NAMES[1]})
        except hostile.InputError as e:
            message = str(e)
        done({"grad": hostile.grad(**values), "message": message})
    """)
    assert out["grad"] == pytest.approx(want, rel=1e-14)
    assert out["message"].startswith("missing value for %r" % HOSTILE[1])
    assert not (tmp_path / "PWNED").exists()


def test_hostile_matrix_and_dimension_names():
    n = sp.Symbol('n"""\nimport os', integer=True, positive=True)
    A = sp.MatrixSymbol("A\nimport os", n, 2)
    Wm = sp.MatrixSymbol('W"""', 2, 3)
    e = sp.Trace(sp.OneMatrix(1, n) * (A * Wm).applyfunc(sp.tanh) * sp.OneMatrix(3, 1)) / n
    f = sg.compile(e, wrt=[Wm], args=[A])
    source = f.export()
    m = load(source)
    m["selfcheck"]()
    values = {A.name: np.linspace(-1, 1, 8).reshape(4, 2), Wm.name: np.linspace(0.5, -0.5, 6).reshape(2, 3)}
    close(m["grad"](**values)[Wm.name], f.grad(**values)[Wm.name], 1e-13)
    with pytest.raises(m["InputError"]) as info:
        m["grad"](**dict(values, **{Wm.name: np.ones((3, 3))}))
    assert str(info.value) == compiled_error(f.grad, **dict(values, **{Wm.name: np.ones((3, 3))}))
    assert not any(isinstance(s, (ast.Import, ast.ImportFrom)) and any(a.name == "os" for a in s.names)
                   for s in ast.walk(ast.parse(source)))


# ---------------------------------------------------------------------------- the array-API flavour

PLAIN = -y * sp.log(S) - (1 - y) * sp.log(1 - S)  # LOGISTIC without erf: the array API standard alone
NET_SIZES = [3, 5, 4]


@pytest.fixture(scope="module")
def xp_exports():
    """The compiled functions and their array-API exports (compiled once for the module's tests)."""
    net = nn.mlp(NET_SIZES, activation="tanh", loss="softmax_cross_entropy")
    fs = {"scalar": sg.compile(LOGISTIC, wrt=[w, b], args=[x, y]),
          "plain": sg.compile(PLAIN, wrt=[w, b], args=[x, y]),
          "net": sg.compile(net.loss, wrt=list(net.params), args=[net.inputs, net.targets])}
    return fs, {k: f.export(flavour="array-api") for k, f in fs.items()}, net


def network_point(net):
    rng = np.random.default_rng(0)
    values = {"X": rng.normal(size=(6, 3)), "Y": np.eye(4)[[0, 1, 2, 3, 1, 0]], **net_params(net)}
    return values, net_params(net, seed=4)


def network_reference(values, tangents):
    """The hand-written backprop of symgrad.reference, and central differences for J·v."""
    params = {k: v for k, v in values.items() if k not in ("X", "Y")}
    loss, grads = reference.mlp_value_and_grad(params, values["X"], values["Y"])
    h = 1e-5
    plus, minus = ({k: params[k] + s * tangents[k] for k in params} for s in (h, -h))
    fd = (reference.mlp_value_and_grad(plus, values["X"], values["Y"])[0]
          - reference.mlp_value_and_grad(minus, values["X"], values["Y"])[0]) / (2 * h)
    return loss, grads, fd


LIBRARY_RUNS = ["numpy", "numpy-no-compat", "array_api_strict", "array_api_strict-no-compat", "torch", "jax"]

XP_BODY = r"""
LIB = {lib!r}
import xp_scalar, xp_plain, xp_net
d = json.load(open("data.json"))
if LIB == "torch":
    import torch
    A = lambda v, dtype="float64": torch.asarray(np.asarray(v, dtype=dtype))
elif LIB == "jax":
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    A = lambda v, dtype="float64": jnp.asarray(np.asarray(v, dtype=dtype))
elif LIB == "array_api_strict":
    import array_api_strict as xps
    A = lambda v, dtype="float64": xps.asarray(np.asarray(v, dtype=dtype))
else:
    A = lambda v, dtype="float64": np.asarray(v, dtype=dtype)

for m in (xp_scalar, xp_plain, xp_net):
    m.selfcheck()  # on NumPy arrays
scalar = xp_plain if LIB == "array_api_strict" else xp_scalar
X, Y, Wv, Bv = A(d["X"]), A(d["Y"]), A(d["W"]), A(d["B0"])
V = {{k: A(v) for k, v in d["V"].items()}}
net = {{k: A(v) for k, v in d["net"].items()}}
T = {{k: A(v) for k, v in d["tangents"].items()}}


def leaves(v):
    if isinstance(v, dict):
        return [x for k in sorted(v) for x in leaves(v[k])]
    if isinstance(v, (tuple, list)):
        return [x for e in v for x in leaves(e)]
    return [v]


def describe(v):
    return [[type(a).__module__.partition(".")[0], list(getattr(a, "shape", ["no shape"])), str(a.dtype)]
            for a in leaves(v)]


calls = {{
    "value": lambda: scalar.value(X, Y, Wv, Bv),
    "value_and_grad": lambda: scalar.value_and_grad(x=X, y=Y, w=Wv, b=Bv),
    "grad": lambda: scalar.grad(X, Y, w=Wv, b=Bv),
    "jvp": lambda: scalar.jvp(V, x=X, y=Y, w=Wv, b=Bv),
    "mixed": lambda: scalar.grad(X, d["Y"], float(d["W"]), np.float64(d["B0"])),
    "float32": lambda: scalar.value_and_grad(A(d["X"], "float32"), A(d["Y"], "float32"), 0.75, -0.25),
    "net_value": lambda: xp_net.value(**net),
    "net_vg": lambda: xp_net.value_and_grad(**net),
    "net_grad": lambda: xp_net.grad(*net.values()),
    "net_jvp": lambda: xp_net.jvp(T, **net),
}}
if LIB == "jax":
    calls["jit_value_and_grad"] = lambda: jax.jit(scalar.value_and_grad)(X, Y, Wv, Bv)
    calls["jit_grad"] = lambda: jax.jit(scalar.grad)(x=X, y=Y, w=Wv, b=Bv)
    calls["jit_jvp"] = lambda: jax.jit(lambda t, *a: scalar.jvp(t, *a))(V, X, Y, Wv, Bv)
    calls["jit_net_vg"] = lambda: jax.jit(xp_net.value_and_grad)(**net)
    calls["jit_net_jvp"] = lambda: jax.jit(lambda t, *a: xp_net.jvp(t, *a))(T, *net.values())
    calls["jit_nan"] = lambda: jax.jit(scalar.value)(A([1.0, float("nan")]), 1.0, Wv, Bv)  # traced: not checked
out = {{}}
for key, call in calls.items():
    result = call()
    out[key] = {{"result": J(result), "kinds": describe(result)}}
try:
    scalar.value(A([1.0, float("nan")]), Y[:2], Wv, Bv)
except scalar.InputError as e:
    out["nan"] = str(e)
try:
    xp_scalar.grad(X, Y, Wv, Bv)
except (xp_scalar.UnsupportedError, xp_scalar.InputError) as e:
    out["special"] = str(e)
out["modules"] = sorted(m for m in ("torch", "jax", "array_api_strict", "array_api_compat", "scipy")
                        if m in sys.modules)
done(out)
"""


@pytest.mark.parametrize("run", LIBRARY_RUNS)
def test_array_api_export_runs_without_symgrad_on_each_library(tmp_path, run, xp_exports):
    lib, _, variant = run.partition("-")
    if lib != "numpy":
        pytest.importorskip(lib)
    blocked = ("symgrad", "array_api_compat") if variant else ("symgrad",)
    if not variant:
        pytest.importorskip("array_api_compat")
    elif lib == "numpy" and not hasattr(np.ndarray, "__array_namespace__"):
        pytest.skip("NumPy < 2 has no array-API namespace of its own")
    fs, sources, net = xp_exports
    for key, source in sources.items():
        (tmp_path / ("xp_%s.py" % key)).write_text(source, encoding="utf-8")
    values, tangents = network_point(net)
    data = {"X": X, "Y": Y, "W": W, "B0": B0, "V": V, "net": {k: v.tolist() for k, v in values.items()},
            "tangents": {k: v.tolist() for k, v in tangents.items()}}
    (tmp_path / "data.json").write_text(json.dumps(data))
    got = fresh_json(tmp_path, XP_BODY.format(lib=lib), blocked)

    root = {"numpy": "numpy", "array_api_strict": "array_api_strict", "torch": "torch", "jax": "jax"}[lib]
    for key, entry in got.items():
        if isinstance(entry, dict):  # every result is an array of the library (0-d for one number)
            for module, shape, dtype in entry["kinds"]:
                assert module in (root, "jaxlib"), (key, module)
                assert shape != ["no shape"]
                assert dtype.endswith("float32" if key == "float32" else "float64"), (key, dtype)
    assert [k[1] for k in got["value_and_grad"]["kinds"]] == [[], [], []]  # (value, {b, w}): 0-d arrays
    ref = sympy_reference(PLAIN if lib == "array_api_strict" else LOGISTIC)
    close(got["value"]["result"], ref["value"], 1e-12)
    value, grads = got["value_and_grad"]["result"]
    close(value, sum(ref["value"]), 1e-12)
    for p in ("w", "b"):
        close(grads[p], ref["grad"][p], 1e-12)
        close(got["grad"]["result"][p], ref["grad"][p], 1e-12)
        close(got["mixed"]["result"][p], ref["grad"][p], 1e-12)
        close(got["float32"]["result"][1][p], ref["grad"][p], 1e-5)
    close(got["jvp"]["result"][0], ref["value"], 1e-12)
    close(got["jvp"]["result"][1], ref["jvp"], 1e-11)
    loss, net_grads, fd = network_reference(values, tangents)
    close(got["net_value"]["result"], loss, 1e-12)
    close(got["net_vg"]["result"][0], loss, 1e-12)
    close(got["net_jvp"]["result"][0], loss, 1e-12)
    close(got["net_jvp"]["result"][1], fd, 1e-7)
    for k in net_grads:
        close(got["net_vg"]["result"][1][k], net_grads[k], 1e-11)
        close(got["net_grad"]["result"][k], net_grads[k], 1e-11)
    if lib == "jax":  # jax.jit traced the same functions: the same numbers
        for key in ("value_and_grad", "jvp", "net_vg", "net_jvp"):
            close(flat(got["jit_" + key]["result"]), flat(got[key]["result"]), 1e-13)
        close(got["jit_grad"]["result"]["w"], ref["grad"]["w"], 1e-12)
        assert np.isnan(got["jit_nan"]["result"][1]) and np.isfinite(got["jit_nan"]["result"][0])
    assert got["nan"] == "value of 'x' contains nan or inf; symgrad needs finite inputs"
    if lib == "array_api_strict":
        assert got["special"] == ("array_api_strict has no erf (scipy.special's erf); pass NumPy arrays for this "
                                  "expression, or rewrite it with elementary functions")
    else:
        assert "special" not in got
    others = {"torch", "jax", "array_api_strict"} - {lib}
    assert not others & set(got["modules"]), got["modules"]  # only the library the caller uses
    assert ("array_api_compat" in got["modules"]) == (not variant)


def flat(v):
    """The numbers of a JSON result (dicts in key order) in one list."""
    if isinstance(v, dict):
        return [x for k in sorted(v) for x in flat(v[k])]
    if isinstance(v, (tuple, list)):
        return [x for e in v for x in flat(e)]
    return [v]


def leaves(v):
    """The arrays of a result ((value, {name: gradient}), ...), dicts in key order."""
    if isinstance(v, dict):
        return [x for k in sorted(v) for x in leaves(v[k])]
    if isinstance(v, (tuple, list)):
        return [x for e in v for x in leaves(e)]
    return [v]


def test_array_api_export_imports_and_header(xp_exports):
    _, sources, _ = xp_exports
    source = sources["scalar"]
    tree = ast.parse(source)
    imports = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert imports == {"difflib", "importlib", "math", "numbers", "types", "numpy"}
    (optional,) = [n for n in tree.body if isinstance(n, ast.Try)]
    assert [a.name for n in optional.body for a in n.names] == ["array_api_compat"]
    assert not any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))
    assert "def _value_and_grad(x, y, w, b):" in source and "xsp.erf(xi1)" in source and "ξ" in source
    assert "np." not in source[source.index("def _shape("):source.index("# ---- binding")]  # the xp programs
    m = load(source)
    assert m["__all__"] == ["value", "grad", "value_and_grad", "jvp", "selfcheck", "InputError", "UnsupportedError"]
    assert "hvp" not in m and m["_SPECIAL"] == ("erf",)
    assert "(array-API flavour)" in source.splitlines()[0]


def test_array_api_export_on_numpy_has_the_compiled_semantics(xp_exports):
    fs, sources, net = xp_exports
    f, m = fs["scalar"], load(sources["scalar"])
    Xa, Ya = np.array(X), np.array(Y)
    calls = [((), dict(x=Xa, y=Ya, w=W, b=B0)), ((Xa, Ya, W, B0), {}), ((Xa, Ya), dict(w=W, b=B0)),
             ((), dict(x=3.0, y=1.0, w=W, b=B0)), ((), dict(x=Xa, y=1.0, w=np.array([W]), b=B0)),
             ((), dict(x=[[1.0], [2.0]], y=Ya, w=W, b=1))]
    for args, values in calls:
        for name in ("value", "grad", "value_and_grad"):
            a, e = m[name](*args, **values), getattr(f, name if name != "value" else "__call__")(*args, **values)
            if isinstance(a, tuple):
                assert type(a[0]) is np.ndarray and a[0].shape == ()
                close(a[0], e[0], 1e-13)
                a, e = a[1], e[1]
            if isinstance(a, dict):
                assert list(a) == list(e)
                for k in a:
                    assert type(a[k]) is np.ndarray and a[k].shape == np.shape(e[k])
                    close(a[k], e[k], 1e-13)
            else:
                assert type(a) is np.ndarray
                close(a, e, 1e-13)
        value, dot = m["jvp"](V, *args, **values)
        close(value, f(*args, **values), 1e-13)
        close(dot, f.jvp(V, *args, **values)[1], 1e-12)
    # the same messages as the compiled function (NumPy's checks of numbers, lists and NumPy arrays)
    for key, args, values in eval(ERROR_CALLS, {"np": np, "X": X, "Y": Y, "W": W, "B0": B0}):  # noqa: S307
        with pytest.raises(m["InputError"]) as info:
            m["grad"](*args, **values)
        assert str(info.value) == compiled_error(f.grad, *args, **values).replace("symgrad computes",
                                                                                   "this module computes"), key
    bad_tangent = ({"w": np.ones(7)}, dict(x=np.ones(4), y=np.ones(4), w=0.5, b=0.0))
    with pytest.raises(m["InputError"]) as info:
        m["jvp"](bad_tangent[0], **bad_tangent[1])
    assert str(info.value) == compiled_error(f.jvp, bad_tangent[0], **bad_tangent[1])
    # a network: its shape errors, word for word
    g, n = fs["net"], load(sources["net"])
    good = {"X": np.ones((5, 3)), "Y": np.ones((5, 4)), **net_params(net)}
    for values in (dict(good, W1=np.ones((4, 5))), dict(good, Y=np.ones((6, 4))), dict(good, X=np.ones(3)),
                   dict(good, b1=2.0), dict(good, W2=np.full((5, 4), np.nan))):
        with pytest.raises(n["InputError"]) as info:
            n["value_and_grad"](**values)
        assert str(info.value) == compiled_error(g.value_and_grad, **values)


def test_array_api_export_reductions_and_matrix_outputs():
    values = dict(x=np.array(X), y=np.array(Y), w=W, b=B0)
    ref = sympy_reference(LOGISTIC)
    mean = load(sg.compile(LOGISTIC, wrt=[w, b], args=[x, y], reduce="mean").export(flavour="array-api"))
    mean["selfcheck"]()
    close(mean["grad"](**values)["w"], ref["grad"]["w"] / len(X), 1e-12)
    close(mean["value_and_grad"](**values)[0], sum(ref["value"]) / len(X), 1e-12)
    with pytest.raises(mean["InputError"], match="the batch is empty"):
        mean["grad"](x=np.array([]), y=np.array([]), w=W, b=B0)
    per = load(sg.compile(LOGISTIC, wrt=[w, b], args=[x, y], reduce=None).export(flavour="array-api"))
    per["selfcheck"]()
    close(per["value"](**values), ref["value"], 1e-12)
    for fn in ("grad", "value_and_grad"):
        with pytest.raises(per["InputError"], match=r"per-sample gradients \(reduce=None\) are not in the array-API"):
            per[fn](**values)
    loose = load(sg.compile(LOGISTIC, wrt=[w, b], args=[x, y], check_finite=False).export(flavour="array-api"))
    assert np.isnan(loose["value"](x=np.array([1.0, np.nan]), y=1.0, w=W, b=B0)[1])

    n = sp.Symbol("n", integer=True, positive=True)
    Xm, Wm = sp.MatrixSymbol("X", n, 3), sp.MatrixSymbol("W", 3, 2)
    rng = np.random.default_rng(2)
    mv = {"X": rng.normal(size=(5, 3)), "W": rng.normal(size=(3, 2))}
    tangent = {"W": rng.normal(size=(3, 2))}
    T = np.tanh(mv["X"] @ mv["W"])
    m = load(sg.compile((Xm * Wm).applyfunc(sp.tanh), wrt=[Wm], args=[Xm]).export(flavour="array-api"))
    m["selfcheck"]()
    close(m["value"](**mv), T, 1e-14)
    close(m["jvp"](tangent, **mv)[1], (1 - T ** 2) * (mv["X"] @ tangent["W"]), 1e-13)
    close(m["jvp"]({}, **mv)[1], np.zeros_like(T), 0)
    with pytest.raises(m["InputError"], match="grad needs one number to differentiate"):
        m["grad"](**mv)
    for reduce, scale in (("sum", 1), ("mean", T.size)):
        s = load(sg.compile((Xm * Wm).applyfunc(sp.tanh), wrt=[Wm], args=[Xm], reduce=reduce).export(
            flavour="array-api"))
        s["selfcheck"]()
        loss, grads = s["value_and_grad"](**mv)
        close(loss, T.sum() / scale, 1e-13)
        close(grads["W"], mv["X"].T @ (1 - T ** 2) / scale, 1e-13)
        close(s["grad"](**mv)["W"], mv["X"].T @ (1 - T ** 2) / scale, 1e-13)


def test_array_api_export_agrees_with_symgrad_portable(xp_exports):
    """The exported runtime binds as symgrad.portable does: the same arrays, dtypes and messages."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    fs, sources, net = xp_exports
    f, m = fs["scalar"], load(sources["scalar"])
    t = {"x": torch.asarray(X, dtype=torch.float64), "y": torch.asarray(Y, dtype=torch.float64), "w": W, "b": B0}
    for name in ("__call__", "value_and_grad", "grad"):
        a = m[name if name != "__call__" else "value"](**t)
        e = getattr(f, name)(**t)
        for u, v in zip(leaves(a), leaves(e)):
            assert isinstance(u, torch.Tensor) and u.dtype == v.dtype and u.shape == v.shape
            assert torch.allclose(u, v, rtol=1e-15, atol=0)
    a, e = m["jvp"]({"w": torch.asarray(0.5, dtype=torch.float64)}, **t), f.jvp({"w": torch.asarray(0.5,
                                                                                   dtype=torch.float64)}, **t)
    assert all(torch.allclose(u, v, rtol=1e-15, atol=0) for u, v in zip(a, e))
    f32 = dict(t, x=t["x"].float(), y=torch.asarray([1, 0, 1, 0]))  # an int tensor becomes the call's dtype
    assert m["grad"](**f32)["w"].dtype == f.grad(**f32)["w"].dtype == torch.float32
    g, n = fs["net"], load(sources["net"])
    values, _ = network_point(net)
    tv = {k: torch.asarray(v) for k, v in values.items()}
    for u, v in zip(leaves(n["value_and_grad"](**tv)), leaves(g.value_and_grad(**tv))):
        assert torch.allclose(u, v, rtol=1e-14, atol=0)
    bad = [dict(t, x=torch.asarray([1.0, 2.0j])), dict(t, x=torch.asarray([1.0, float("nan")], dtype=torch.float64)),
           dict(t, y=torch.asarray([1.0, 0.0], dtype=torch.float64))]
    for values in bad:
        with pytest.raises(InputError) as want:
            f.grad(**values)
        with pytest.raises(m["InputError"]) as info:
            m["grad"](**values)
        # the same words; shapes as tuples (symgrad.portable prints a PyTorch shape as torch.Size([4]))
        assert str(info.value) == re.sub(r"torch\.Size\(\[(\d+)\]\)", r"(\1,)", str(want.value))
    xps = pytest.importorskip("array_api_strict")
    strict = dict(t, x=xps.asarray(X), y=xps.asarray(Y))
    with pytest.raises(UnsupportedError) as want:
        f.grad(**strict)
    with pytest.raises(m["UnsupportedError"]) as info:
        m["grad"](**strict)
    assert str(info.value) == str(want.value)
    with pytest.raises(InputError) as want:
        f.grad(**dict(strict, y=t["y"]))
    with pytest.raises(m["InputError"]) as info:
        m["grad"](**dict(strict, y=t["y"]))
    assert str(info.value) == str(want.value) and "mix arrays of array_api_strict and torch" in str(info.value)


# ---------------------------------------------------------------------------- command line

LECTURE = "-y*log(1/(1+exp(-w*x)))"


def test_cli_code_module_writes_the_exported_module(tmp_path, capsys):
    path = tmp_path / "lecture.py"
    assert main(["code", LECTURE, "--wrt", "w", "--args", "x,y", "--module", "-o", str(path)]) == 0
    assert capsys.readouterr().out == ""
    f = sg.compile(sg.parse_expr(LECTURE), wrt=["w"], args=["x", "y"])
    assert path.read_text(encoding="utf-8") == f.export()
    got = fresh_json(tmp_path, """
        import lecture
        lecture.selfcheck()
        done(lecture.value_and_grad(x=3.0, y=1.0, w=3.0))
    """)
    assert got[0] == pytest.approx(0.00012340218972325883, rel=1e-14)
    assert got[1]["w"] == pytest.approx(-3 / (1 + np.exp(9)), rel=1e-13)
    assert main(["code", LECTURE, "--wrt", "w", "--module"]) == 0
    assert capsys.readouterr().out == f.export()  # the same module on standard output
    assert main(["code", LECTURE, "--wrt", "w", "--module", "--mode", "reverse"]) == 2
    assert "--module writes the whole standalone module" in capsys.readouterr().err


def test_cli_code_module_array_api_flavour(tmp_path, capsys):
    path = tmp_path / "lecture_xp.py"
    argv = ["code", LECTURE, "--wrt", "w", "--args", "x,y", "--module", "--flavour", "array-api"]
    assert main(argv + ["-o", str(path)]) == 0
    assert capsys.readouterr().out == ""
    f = sg.compile(sg.parse_expr(LECTURE), wrt=["w"], args=["x", "y"])
    assert path.read_text(encoding="utf-8") == f.export(flavour="array-api")
    assert main(argv) == 0
    assert capsys.readouterr().out == f.export(flavour="array-api")
    assert main(["code", LECTURE, "--wrt", "w", "--module", "--flavour", "numpy"]) == 0
    assert capsys.readouterr().out == f.export()
    got = fresh_json(tmp_path, """
        import lecture_xp
        lecture_xp.selfcheck()
        value, grads = lecture_xp.value_and_grad(x=np.array([3.0]), y=1.0, w=3.0)
        done([type(value).__name__, value.shape, float(value), float(grads["w"])])
    """)
    assert got[:2] == ["ndarray", []]
    assert got[2] == pytest.approx(0.00012340218972325883, rel=1e-14)
    assert got[3] == pytest.approx(-3 / (1 + np.exp(9)), rel=1e-13)
    assert main(["code", LECTURE, "--wrt", "w", "--flavour", "array-api"]) == 2
    assert "--flavour array-api is for --module" in capsys.readouterr().err
    assert main(["code", LECTURE, "--wrt", "w", "--module", "--flavour", "torch"]) == 2
    capsys.readouterr()


def test_cli_code_without_module_is_a_whole_runnable_fragment(tmp_path, capsys):
    for mode in ("all", "reverse", "forward"):
        path = tmp_path / ("plain_%s.py" % mode)
        assert main(["code", LECTURE, "--wrt", "w", "--args", "x,y", "--mode", mode, "-o", str(path)]) == 0
        ns = load(path.read_text(encoding="utf-8"))  # _sum_to and every helper it calls are defined
        if mode != "forward":
            value, (g,) = ns["value_and_grad"](3.0, 1.0, 3.0)
            assert g == pytest.approx(-3 / (1 + np.exp(9)), rel=1e-13)
        else:
            assert ns["jvp"](3.0, 1.0, 3.0, 1.0)[1] == pytest.approx(-3 / (1 + np.exp(9)), rel=1e-13)
